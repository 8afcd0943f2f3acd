"""The floor: the checks run on the same submissions with the student code in the scoring process itself (no
worker process, no pipe, no sandbox), against the real grader, side by side in one run.

    python -m bench.floor [--n 40]

The submissions are generated (bench.generate) and trusted; never grade real submissions this way. The
difference between the two is what isolation costs per submission.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from autograder.grader import LocalExecutor, grade
from autograder.options import GradingOptions
from autograder.runner.worker import WorkerConfig, WorkerState, describe_exception
from bench.generate import make_class


class InProcessWorker:
    """The worker's operations, run in this process: the cost of the checks and the student code alone. A
    `session.StudentRunner`, made by the grader in place of `proxy.Worker` (its config is not needed here)."""

    def __init__(self, config: WorkerConfig) -> None:
        self.state = WorkerState()
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


def measure(folder: Path, in_process: bool) -> tuple[float, list[float]]:
    executor = LocalExecutor(1, worker_factory=InProcessWorker) if in_process else LocalExecutor(1)
    started = time.perf_counter()
    batch = grade("mlp", [folder], out_dir=None, options=GradingOptions(), executor=executor, jobs=1)
    return time.perf_counter() - started, [r.score for r in batch.results]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="submissions (default 40)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        folder = Path(tmp) / "class"
        make_class(folder, args.n, seed=1)
        measure(folder, in_process=False)  # warm both paths: imports, fork server, references
        measure(folder, in_process=True)
        grader, scores = measure(folder, in_process=False)
        floor, floor_scores = measure(folder, in_process=True)
    print(f"bench.floor: {args.n} generated mlp submissions, --jobs 1")
    print(f"  grader (isolated workers): {grader:8.2f} s  {grader / args.n:.3f} s/submission")
    print(f"  floor (checks in-process): {floor:8.2f} s  {floor / args.n:.3f} s/submission")
    print(f"  grader / floor: {grader / floor:.2f}x; isolation costs {(grader - floor) / args.n * 1000:.0f} ms "
          "per submission")  # fmt: skip
    print(f"  same scores: {scores == floor_scores}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
