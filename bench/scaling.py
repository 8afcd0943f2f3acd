"""Seconds per submission and peak memory per worker for 10, 100 and 1000 generated `mlp` submissions.

    python -m bench.scaling [--sizes 10 100 1000] [--jobs N]

Every size is graded by the same warm fork server in one run; seconds per submission that stay flat as the
class grows show a cost linear in the number of submissions.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

from autograder.grader import grade
from autograder.pytest_plugin import GradingOptions
from bench.generate import make_class


class ScoringPeak(threading.Thread):
    """Peak resident memory (VmHWM) of this session's scoring processes (named "ag-scoring" when --jobs > 1:
    they are forks of the fork server, not children of this process, so getrusage cannot see them)."""

    def __init__(self, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak_mb = 0.0
        self.done = threading.Event()
        self.session = os.getsid(0)

    def run(self) -> None:
        while not self.done.wait(self.interval):
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    self.peak_mb = max(self.peak_mb, _scoring_hwm_mb(int(entry.name), self.session))

    def stop(self) -> float:
        self.done.set()
        self.join()
        return self.peak_mb


def _scoring_hwm_mb(pid: int, session: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        if os.getsid(pid) != session:
            return 0.0
    except OSError:
        return 0.0
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if fields.get("Name", "").strip() != "ag-scoring":
        return 0.0
    return int(fields.get("VmHWM", "0 kB").split()[0]) / 1024


def run(sizes: list[int], jobs: int) -> list[dict[str, float]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        make_class(Path(tmp) / "warmup", 2)
        grade("mlp", [Path(tmp) / "warmup"], out_dir=None, options=GradingOptions(), jobs=1)  # start the fork server
        for n in sizes:
            folder = Path(tmp) / f"class{n}"
            make_class(folder, n)
            started = time.perf_counter()
            report = grade("mlp", [folder], out_dir=Path(tmp) / f"results{n}", options=GradingOptions(), jobs=jobs)
            elapsed = time.perf_counter() - started
            peaks = [r.worker_peak_mb for r in report.results if r.worker_peak_mb]
            rows.append(
                {
                    "submissions": n,
                    "seconds": elapsed,
                    "per_submission": elapsed / n,
                    "worker_peak_mb": max(peaks) if peaks else 0.0,
                    "full_marks": sum(r.score == r.max_score for r in report.results),
                    "graded": len(report.results),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    watcher = ScoringPeak()
    watcher.start()
    rows = run(args.sizes, args.jobs)
    forked_peak = watcher.stop()
    print(f"bench.scaling: mlp, --jobs {args.jobs}, {os.cpu_count()} cores")
    print(f"{'submissions':>12} {'seconds':>9} {'s/submission':>13} {'worker peak MiB':>16} {'full marks':>11}")
    for row in rows:
        print(
            f"{row['submissions']:>12} {row['seconds']:>9.1f} {row['per_submission']:>13.3f} "
            f"{row['worker_peak_mb']:>16.0f} {row['full_marks']:>11}"
        )
    first, last = rows[0], rows[-1]
    print(f"cost per submission at {last['submissions']} / at {first['submissions']}: "
          f"{last['per_submission'] / first['per_submission']:.2f}x")  # fmt: skip
    # With --jobs 1 this process is the scoring process.
    scoring_peak = forked_peak if args.jobs > 1 else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of a scoring process: {scoring_peak:.0f} MiB (worker RSS includes pages shared "
          "with the fork server)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
