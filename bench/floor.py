"""The floor: the checks run on the same submissions with the student code in the scoring process itself (no
worker process, no pipe, no sandbox), against the real grader, side by side in one run.

    python -m bench.floor [--n 40] [--classes synthetic realistic]

The submissions are generated (bench.generate) and trusted; never grade real submissions this way. The
difference between the two is what isolation costs per submission. A third run grades with workers behind the
audit hook only: the difference to the grader is what the namespace layer (root's, or as another user the user
namespace or bubblewrap's) adds to a worker's start. Each class of bench.generate is measured (the same students'
code alone, or inside notebooks shaped like the course's), and the ratio of their costs is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autograder.grader import LocalExecutor, grade
from autograder.options import GradingOptions
from autograder.runner import NO_NAMESPACES_ENV, RequestHandler, Worker, WorkerConfig, describe_exception
from bench.generate import STYLES, make_class


class InProcessWorker:
    """The worker's operations, run in this process: the cost of the checks and the student code alone. A
    `session.StudentRunner`, made by the grader in place of `proxy.Worker` (its config is not needed here)."""

    def __init__(self, config: WorkerConfig) -> None:
        self.state = RequestHandler()
        self.alive = True
        self.stopped_at = None
        self.seq = 0

    def request(self, op: str, *args: Any, timeout: float) -> dict[str, Any]:
        self.seq += 1
        try:
            value = self.state.encode(getattr(self.state, f"op_{op}")(*args))
            return {"seq": self.seq, "ok": True, "value": value}
        except Exception as exc:
            return {"seq": self.seq, "ok": False, "error": describe_exception(exc)}

    def stop(self) -> None:
        self.alive = False

    def output_tail(self, limit: int = 2000) -> str:
        return ""

    def output_size(self) -> int:
        return 0  # its prints go to this process's own output


def audit_hook_worker(config: WorkerConfig) -> Worker:
    """A real worker that stops before the namespaces: the audit hook is its only wall."""
    return Worker(dataclasses.replace(config, env={**config.env, NO_NAMESPACES_ENV: "1"}))


def measure(folder: Path, worker: str = "isolated") -> tuple[float, list[float], str]:
    """Seconds, scores, and the layer the workers reached; `worker` is "isolated", "audit-hook" or "in-process"."""
    factory = {"isolated": Worker, "audit-hook": audit_hook_worker, "in-process": InProcessWorker}[worker]
    executor = LocalExecutor(1, worker_factory=factory)
    started = time.perf_counter()
    batch = grade("mlp", [folder], out_dir=None, options=GradingOptions(), executor=executor, jobs=1)
    layers = sorted({r.isolation for r in batch.results if r.isolation})
    return time.perf_counter() - started, [r.score for r in batch.results], ",".join(layers) or "none"


def worker_start_ms(factory: Callable[[WorkerConfig], Worker], repeats: int = 10) -> tuple[float, float]:
    """Median milliseconds from asking for a worker to its first answer, and from asking it to stop to its whole
    process tree's end: the part of a submission's cost that the walls change, measured alone."""
    starts, stops = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        worker = factory(WorkerConfig())
        worker.request("load", [(0, "x = 1")], "definitions", timeout=60)
        stopping = time.perf_counter()
        worker.stop()
        starts.append((stopping - started) * 1000)
        stops.append((time.perf_counter() - stopping) * 1000)
    return statistics.median(starts), statistics.median(stops)


def report(style: str, folder: Path, n: int) -> float:
    """Print the three ways of grading one class, side by side; returns the grader's seconds per submission."""
    measure(folder)  # warm every path: imports, fork server, references
    measure(folder, "audit-hook")
    measure(folder, "in-process")
    grader, scores, layer = measure(folder)
    hook_only, hook_scores, _ = measure(folder, "audit-hook")
    floor, floor_scores, _ = measure(folder, "in-process")
    print(f"{style}: {n} generated mlp submissions, --jobs 1")
    print(f"  grader (isolated workers): {grader:8.2f} s  {grader / n:.3f} s/submission  (workers: {layer})")
    print(f"  grader, audit hook only:   {hook_only:8.2f} s  {hook_only / n:.3f} s/submission")
    print(f"  floor (checks in-process): {floor:8.2f} s  {floor / n:.3f} s/submission")
    print(f"  grader / floor: {grader / floor:.2f}x; isolation costs {(grader - floor) / n * 1000:.0f} ms "
          "per submission")  # fmt: skip
    print(f"  the {layer} layer costs {(grader - hook_only) / n * 1000:.0f} ms per submission "
          f"(grader / audit hook only: {grader / hook_only:.2f}x)")  # fmt: skip
    print(f"  same scores: {scores == floor_scores == hook_scores}")
    return grader / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="submissions per class (default 40)")
    parser.add_argument(
        "--classes", nargs="+", choices=STYLES, default=list(STYLES), help="generated classes (default: both)"
    )
    args = parser.parse_args(argv)
    print("bench.floor")
    per_submission = {}
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        for style in args.classes:
            folder = Path(tmp) / style
            make_class(folder, args.n, seed=1, style=style)
            per_submission[style] = report(style, folder, args.n)
        start_isolated, start_hook_only = worker_start_ms(Worker), worker_start_ms(audit_hook_worker)
    print(f"worker start to first answer (median of 10): {start_isolated[0]:.0f} ms with the namespace layer, "
          f"{start_hook_only[0]:.0f} ms with the audit hook only")  # fmt: skip
    print(f"worker stop to its end (median of 10): {start_isolated[1]:.0f} ms with the namespace layer, "
          f"{start_hook_only[1]:.0f} ms with the audit hook only")  # fmt: skip
    if len(per_submission) == 2:
        ratio = per_submission["realistic"] / per_submission["synthetic"]
        print(f"realistic / synthetic s/submission (isolated workers): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
