"""The same N generated `mlp` submissions graded by `otter run` (with the project's own autograder zip from
`autograder build`, one process per submission, --jobs of them in parallel) and by `autograder grade --jobs`,
timed side by side in one run.

    python -m bench.vs_otter [--n 20] [--jobs N] [--no-trusted-scores]

The generated notebooks hold only definitions, which favours otter: real notebooks also train and plot, and
otter runs every cell while the native grader skips them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from autograder.grader import grade
from autograder.options import GradingOptions
from autograder.otterkit.build import build
from bench.generate import make_class


def otter_run(bundle: Path, notebook: Path, out: Path) -> dict[str, float]:
    out.mkdir(parents=True)
    command = [sys.executable, "-m", "otter", "run", "-a", str(bundle), "-o", str(out), str(notebook)]
    subprocess.run(command, cwd=out, capture_output=True, timeout=900)
    results = out / "results.json"
    if not results.exists():
        return {}
    return {t["name"]: t["score"] for t in json.loads(results.read_text())["tests"] if "score" in t}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-trusted-scores", action="store_true", help="build the zip without NativeScores")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-vs-otter-") as tmp:
        root = Path(tmp)
        paths = make_class(root / "class", args.n, seed=2)
        [(_, bundle)] = build(["mlp"], root / "build", trusted_scores=not args.no_trusted_scores).values()

        started = time.perf_counter()
        with ThreadPoolExecutor(args.jobs) as pool:
            otter = list(pool.map(lambda p: otter_run(bundle, p, root / "otter" / p.stem), paths))
        otter_s = time.perf_counter() - started

        started = time.perf_counter()
        batch = grade("mlp", [root / "class"], out_dir=root / "native", options=GradingOptions(), jobs=args.jobs)
        native_s = time.perf_counter() - started

    native = {r.submission.removesuffix(".ipynb"): {e.id: e.score for e in r.exercises} for r in batch.results}
    agree = sum(
        all(abs(scores.get(k, -1) - v) < 1e-6 for k, v in native[p.stem].items())
        for p, scores in zip(paths, otter, strict=True)
    )
    print(f"bench.vs_otter: {args.n} generated mlp submissions, --jobs {args.jobs}, {os.cpu_count()} cores, "
          f"plugin {'off' if args.no_trusted_scores else 'on'}")  # fmt: skip
    print(f"  otter run:        {otter_s:8.1f} s  {otter_s / args.n:.2f} s/submission")
    print(f"  autograder grade: {native_s:8.1f} s  {native_s / args.n:.2f} s/submission")
    print(f"  ratio (otter / native): {otter_s / native_s:.1f}x")
    print(f"  per-question scores equal: {agree} of {args.n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
