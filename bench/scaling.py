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
import time
from pathlib import Path

from autograder.grader import grade
from autograder.pytest_plugin import GradingOptions
from bench.generate import make_class


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
    rows = run(args.sizes, args.jobs)
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
    scoring_peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    print(f"peak memory of a scoring process: {scoring_peak / 1024:.0f} MiB (worker RSS includes pages shared "
          "with the fork server)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
