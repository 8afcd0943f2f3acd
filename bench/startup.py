"""Where each command's time goes, from the moment it is started: a timeline of the phases its processes reach.

    python -m bench.startup [--rounds 3] [--n 35] [--jobs 2]

Runs `--help`, `list`, `check -e` (one exercise), `check` (a whole notebook), `grade` of one notebook and of a
class of N realistic notebooks (bench.generate: magics, torchvision and plotting imports, training at top level),
each `--rounds` times in a fresh interpreter, with AUTOGRADER_PHASES set (autograder/phases.py). Printed per
command, as medians in seconds since the command was started: when the CLI module was imported ("cli"), when the
grading machinery was ("imported": torch, pytest, the grader), when submissions were listed, when the first
scoring process was ready (with --jobs 2: forked from the fork server, whose preload this includes), when the
first chunk reached it, when its checks were collected, when the first worker had loaded a notebook, the first
and last results, results written, and the end of the process. `python -X importtime -m autograder ...` says
which imports make up "cli" and "imported".
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.options import add_jobs_option
from autograder.paths import EXAMPLES_DIR
from autograder.phases import ENV
from bench.generate import make_class

PHASES = ("cli", "imported", "listed", "scoring process", "chunk", "collected", "worker loaded", "result")
COLUMNS = (*PHASES, "last result", "written", "end")


def timeline(arguments: list[str], cwd: Path, tree: Path | None = None) -> dict[str, float]:
    """One run of `python -m autograder ARGUMENTS`: each phase's first time (and the last result's), in seconds
    since the process was started."""
    log = cwd / "phases.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, ENV: str(log)}
    if tree is not None:  # another checkout's autograder, first on the path
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree), os.environ.get("PYTHONPATH", "")) if p)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "autograder", *arguments], cwd=cwd, env=env, capture_output=True,
                          text=True)  # fmt: skip
    ended = time.monotonic()
    if done.returncode not in (0, 3):
        raise RuntimeError(f"autograder {' '.join(arguments)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    found: dict[str, float] = {"end": ended - started}
    lines = log.read_text().splitlines() if log.exists() else []
    for line in lines:
        stamp, _, phase = line.split(" ", 2)
        at = float(stamp) - started
        found.setdefault(phase, at)
        if phase == "result":
            found["last result"] = at
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each command; medians are shown (default 3)")
    parser.add_argument("--n", type=int, default=35, help="realistic notebooks in the class graded (default 35)")
    add_jobs_option(parser, 2)
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (git worktree add /tmp/base REV): its commands run in turns with this one's; where "
        "it logs no phases, only its end is shown",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        root = Path(tmp)
        make_class(root / "class", args.n, seed=1, style="realistic")
        one = root / "one"
        one.mkdir()
        shutil.copy(EXAMPLES_DIR / "mlp" / "correct.ipynb", one / "correct.ipynb")
        notebook = str(one / "correct.ipynb")
        jobs = ["-j", str(args.jobs)]
        commands = {
            "--help": ["--help"],
            "list": ["list"],
            "check -e": ["check", "mlp", notebook, "-e", "cross_entropy_loss"],
            "check": ["check", "mlp", notebook],
            "grade 1": ["grade", "mlp", notebook, "-o", str(root / "out1"), *jobs],
            f"grade {args.n}": ["grade", "mlp", str(root / "class"), "-o", str(root / "outn"), *jobs],
        }
        trees: dict[str, Path | None] = {"": None}
        if args.baseline:
            trees = {"": None, "base ": args.baseline.resolve()}
        names = [f"{prefix}{name}" for name in commands for prefix in trees]
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for _ in range(args.rounds):  # commands in turns, so that a noisy minute spreads over all of them
            for name, arguments in commands.items():
                for prefix, tree in trees.items():
                    for out in ("out1", "outn"):
                        shutil.rmtree(root / out, ignore_errors=True)
                    runs[prefix + name].append(timeline(arguments, root, tree))
    print(f"bench.startup: seconds since the command started (median of {args.rounds}), --jobs {args.jobs}, "
          f"{os.cpu_count()} cores")  # fmt: skip
    width = max(len(c) for c in COLUMNS)
    cell = max(9, *(len(name) for name in names))
    print(f"{'phase':<{width}} " + " ".join(f"{name:>{cell}}" for name in names))
    for column in COLUMNS:
        cells = []
        for name in names:
            values = [run[column] for run in runs[name] if column in run]
            whole = len(values) == len(runs[name])
            cells.append(f"{statistics.median(values):{cell}.2f}" if whole else f"{'-':>{cell}}")
        print(f"{column:<{width}} " + " ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
