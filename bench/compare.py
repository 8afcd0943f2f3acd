"""A benchmark side by side with another revision of this project, in one run: the machines here are noisy, so a
figure is only compared with one measured beside it.

    python -m bench.compare REV [--rounds 2] -- bench.floor --n 40 --classes realistic

REV (a commit, a tag, `main~3`) is checked out into a temporary git worktree; the benchmark module then runs
alternately in that tree and in this checkout (this one first in odd rounds, the other first in even ones), each
time in a fresh interpreter of this environment with its tree first on the path, and both outputs are printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder.paths import PROJECT_ROOT


def run(tree: Path, module: str, args: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]).rstrip(":")}
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return f"(exit {done.returncode})\n{done.stdout}{done.stderr[-3000:]}"
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the revision to compare with (a commit, a tag, main~3)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each, alternated (default 2)")
    args = parser.parse_args(argv[:split])
    bench = argv[split + 1 :]
    if not bench:
        parser.error("name the benchmark after --: python -m bench.compare REV -- bench.floor --n 40")
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        other = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "add", "--detach", "-q", str(other),
                        args.revision], check=True)  # fmt: skip
        try:
            here = f"this checkout ({_describe(PROJECT_ROOT)})"
            there = f"{args.revision} ({_describe(other)})"
            for round_ in range(1, args.rounds + 1):
                order = [(here, PROJECT_ROOT), (there, other)]
                for name, tree in order if round_ % 2 else order[::-1]:
                    print(f"=== round {round_}: {name}: {' '.join(bench)}", flush=True)
                    print(run(tree, bench[0], bench[1:]), flush=True)
        finally:
            subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "remove", "--force", str(other)], check=False)
    return 0


def _describe(tree: Path) -> str:
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain"], capture_output=True, text=True).stdout
    return done.stdout.strip() + ("+changes" if dirty.strip() else "")


if __name__ == "__main__":
    raise SystemExit(main())
