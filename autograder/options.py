"""Grading options: their defaults, options from the command line, and what a worker is set up with (derived here,
once, from the options). What a device means is devices.py's."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autograder import devices, messages
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
# Declared once: the CLI, the pytest plugin (`pytest --submission`) and the benches take them from here.
DEVICE_HELP = "auto, cpu or cuda (default: auto)"
TIMEOUT_HELP = f"seconds per call into student code ({DEFAULT_TIMEOUT:g})"
EXECUTE_CHOICES = ("definitions", "all")
EXECUTE_HELP = "run only definitions (default) or every cell, as otter does"


def positive_int(text: str) -> int:
    """argparse type of --jobs: 0 or a negative number of processes is a typo, not a request."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(messages.NOT_POSITIVE.format(value=text))
    return value


def add_jobs_option(parser: argparse.ArgumentParser, default: int) -> None:
    """`--jobs`: scoring processes on this machine (of `grade`, `demo` and the benches)."""
    parser.add_argument(
        "-j", "--jobs", type=positive_int, default=default, help=f"scoring processes, at least 1 (default: {default})"
    )


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that runs student code (`grade`, `check`, `demo`, `gradescope`)."""
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=TIMEOUT_HELP,
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
        choices=EXECUTE_CHOICES,
        default=EXECUTE_CHOICES[0],
        help=EXECUTE_HELP,
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
