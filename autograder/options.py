"""Grading options: their defaults, options from the command line, and what a worker is set up with (derived here,
once, from the options). What a device means is devices.py's."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autograder import devices
from autograder.devices import CPU, Device

if TYPE_CHECKING:
    from autograder.runner import WorkerConfig

DEFAULT_THRESHOLD = 0.6  # `similarity`: how alike two submissions' code must be to be listed
DEFAULT_COMMON = 10  # `similarity`: code found in more submissions than this is common, not copied

DEFAULT_TIMEOUT = 30.0
DEFAULT_MEMORY_MB = 4096
DEFAULT_CPU_SECONDS = 900
DEFAULT_BUDGET = 600.0
DEFAULT_SCRATCH_MB = 256  # runner/policy.py's default, spelled here for the help text


@dataclass(frozen=True)
class GradingOptions:
    device: Device = CPU  # already resolved (devices.resolve); a str given is checked and made a Device
    timeout: float = DEFAULT_TIMEOUT  # seconds for loading the code, and for each call a check makes
    execute: str = "definitions"  # or "all"
    threads: int = 1  # torch threads inside each worker
    memory_mb: int | None = DEFAULT_MEMORY_MB  # resident memory a worker may use (None: no limit)
    cpu_seconds: int | None = DEFAULT_CPU_SECONDS  # CPU time of one worker (None: no limit)
    budget: float | None = DEFAULT_BUDGET  # wall-clock seconds for all of one submission's checks (None: no limit)
    scratch_mb: int = DEFAULT_SCRATCH_MB  # what a worker may store in its working folder (a tmpfs, in its memory)
    sealed: tuple[str, ...] = ()  # paths no worker may see: inputs, results, the assignment's checks and references
    jobs: int = 1  # scoring processes of one machine grading at once: they share its GPUs' memory
    gpu_memory_fraction: float | None = None  # each worker's share of its GPU: None, from `jobs` where the GPUs are

    def __post_init__(self) -> None:
        if not isinstance(self.device, Device):
            object.__setattr__(self, "device", Device(self.device))


# -- what a worker gets ---------------------------------------------------------------------------------------------
def worker_config(options: GradingOptions, helpers: tuple[tuple[str, str], ...] = ()) -> WorkerConfig:
    from autograder.runner import WorkerConfig

    """The set-up of every worker that runs a submission graded with `options`; `helpers` is the assignment's
    helpers module as (name, source). `Worker` completes it with its scratch folder."""
    return WorkerConfig(
        threads=options.threads,
        sealed=options.sealed,
        memory_mb=options.memory_mb,
        cap_address_space=not options.device.is_cuda,  # CUDA maps far more address space than it uses
        cpu_seconds=options.cpu_seconds,
        cuda_index=options.device.gpu,
        gpu_memory_fraction=options.gpu_memory_fraction,
        helpers=helpers,
        scratch_mb=options.scratch_mb,
    )


# -- from the command line ------------------------------------------------------------------------------------------
def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that runs student code (`grade`, `check`, `demo`, `gradescope`)."""
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds per call into student code ({DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        help=f"seconds for all the checks of one submission, 0 for no limit ({DEFAULT_BUDGET:g})",
    )
    parser.add_argument(
        "--memory",
        type=int,
        default=DEFAULT_MEMORY_MB,
        help=f"MiB of memory per worker, 0 for no limit ({DEFAULT_MEMORY_MB})",
    )
    parser.add_argument(
        "--cpu-time",
        type=int,
        default=DEFAULT_CPU_SECONDS,
        help=f"CPU seconds per worker, 0 for no limit ({DEFAULT_CPU_SECONDS})",
    )
    parser.add_argument(
        "--scratch",
        type=int,
        default=DEFAULT_SCRATCH_MB,
        help=f"MiB a worker may write to its working folder, counted in its --memory ({DEFAULT_SCRATCH_MB})",
    )
    parser.add_argument(
        "--execute",
        choices=("definitions", "all"),
        default="definitions",
        help="run only definitions (default) or every cell, as otter does",
    )


def options_from_args(args: argparse.Namespace) -> GradingOptions:
    """GradingOptions from the arguments `add_run_options` added; raises ValueError for a negative limit."""
    for name in ("timeout", "budget", "memory", "cpu_time", "scratch"):
        if getattr(args, name) < 0 or (name in ("timeout", "scratch") and getattr(args, name) == 0):
            raise ValueError(f"--{name.replace('_', '-')} must be a positive number")
    return GradingOptions(
        device=devices.resolve(args.device),
        timeout=args.timeout,
        execute=args.execute,
        budget=args.budget or None,
        memory_mb=args.memory or None,
        cpu_seconds=args.cpu_time or None,
        scratch_mb=args.scratch,
    )
