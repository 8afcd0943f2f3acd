"""The same N generated `mlp` submissions graded by `otter run` (with the project's own autograder zip from
`autograder build`, one process per submission, --jobs of them in parallel) and by `autograder grade --jobs`,
timed side by side in one run, for each class of bench.generate.

    python -m bench.vs_otter [--n 20] [--jobs N] [--no-trusted-scores] [--classes synthetic realistic]

The synthetic notebooks hold only definitions, which favours otter; the realistic ones (bench/realistic.py) also
install, import, download, plot and train at top level, as course notebooks do: otter runs every cell (but the
`!pip` lines, which would install packages here), the native grader only the definitions.
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

import nbformat

from autograder.grader import grade
from autograder.options import GradingOptions, add_jobs_option
from autograder.otterkit.build import build
from bench.generate import STYLES, make_class


def without_shell_escapes(notebook: Path, out: Path) -> Path:
    """A copy for otter without `!pip install ...` lines: otter runs every cell, and those would download packages
    into this machine's Python. Otter's real cost on such notebooks is higher than measured here."""
    nb = nbformat.read(str(notebook), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = "\n".join(line for line in cell.source.split("\n") if not line.lstrip().startswith("!"))
    copy = out / notebook.name
    nbformat.write(nb, str(copy))
    return copy


def otter_run(bundle: Path, notebook: Path, out: Path) -> dict[str, float]:
    out.mkdir(parents=True)
    notebook = without_shell_escapes(notebook, out)
    command = [sys.executable, "-m", "otter", "run", "-a", str(bundle), "-o", str(out), str(notebook)]
    subprocess.run(command, cwd=out, capture_output=True, timeout=900)
    results = out / "results.json"
    if not results.exists():
        return {}
    return {t["name"]: t["score"] for t in json.loads(results.read_text())["tests"] if "score" in t}


def compare(root: Path, bundle: Path, n: int, jobs: int, style: str) -> dict[str, float]:
    """Seconds of otter and of the native grader on one class, and how many submissions they score alike."""
    paths = make_class(root / style, n, seed=2, style=style)
    started = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        otter = list(pool.map(lambda p: otter_run(bundle, p, root / f"otter-{style}" / p.stem), paths))
    otter_s = time.perf_counter() - started

    started = time.perf_counter()
    batch = grade("mlp", [root / style], out_dir=root / f"native-{style}", options=GradingOptions(), jobs=jobs)
    native_s = time.perf_counter() - started

    native = {r.submission.removesuffix(".ipynb"): {e.id: e.score for e in r.exercises} for r in batch.results}
    agree = sum(
        all(abs(scores.get(k, -1) - v) < 1e-6 for k, v in native[p.stem].items())
        for p, scores in zip(paths, otter, strict=True)
    )
    return {"otter": otter_s, "native": native_s, "agree": agree}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="submissions per class (default 20)")
    add_jobs_option(parser, os.cpu_count() or 1)
    parser.add_argument("--no-trusted-scores", action="store_true", help="build the zip without NativeScores")
    parser.add_argument(
        "--classes", nargs="+", choices=STYLES, default=list(STYLES), help="generated classes (default: both)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-vs-otter-") as tmp:
        root = Path(tmp)
        [(_, bundle)] = build(["mlp"], root / "build", trusted_scores=not args.no_trusted_scores).values()
        runs = {style: compare(root, bundle, args.n, args.jobs, style) for style in args.classes}
    print(f"bench.vs_otter: {args.n} generated mlp submissions per class, --jobs {args.jobs}, "
          f"{os.cpu_count()} cores, plugin {'off' if args.no_trusted_scores else 'on'}")  # fmt: skip
    for style, run in runs.items():
        print(f"{style}:")
        print(f"  otter run:        {run['otter']:8.1f} s  {run['otter'] / args.n:.2f} s/submission")
        print(f"  autograder grade: {run['native']:8.1f} s  {run['native'] / args.n:.2f} s/submission")
        print(f"  ratio (otter / native): {run['otter'] / run['native']:.1f}x")
        print(f"  per-question scores equal: {run['agree']:g} of {args.n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
