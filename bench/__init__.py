"""Benchmarks, rerunnable by anyone: `python -m bench.scaling`, `python -m bench.floor`, `python -m bench.vs_otter`."""
