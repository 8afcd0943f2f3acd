"""A student's `grader.check` in a notebook kernel, cold and warm: the same process grades one exercise again and
again, each time with one more definition (so no answer comes from the cache of unchanged definitions).

    python -m bench.kernel_check [--checks 4] [--exercise cross_entropy_loss]

The first check starts the fork server (in the kernel's process, as `grader.check` does); later ones fork a
worker from it. Prints the seconds of each check.
"""

from __future__ import annotations

import argparse
import json
import time

from autograder.paths import EXAMPLES_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=4, help="checks in a row (default 4)")
    parser.add_argument("--exercise", default="cross_entropy_loss", help="an mlp exercise (cross_entropy_loss)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    from autograder.otterkit.bridge import grade_cells

    imported = time.monotonic() - started
    notebook = json.loads((EXAMPLES_DIR / "mlp" / "correct.ipynb").read_text(encoding="utf-8"))
    cells = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    print(f"bench.kernel_check: mlp {args.exercise}, correct notebook; grader imported in {imported:.2f} s")
    for i in range(args.checks):
        began = time.monotonic()
        result = grade_cells([*cells, f"EDITED_{i} = {i}"], "mlp", exercises=[args.exercise], public_only=True)
        passed = all(t.passed for e in result.exercises for t in e.tests)
        print(f"check {i + 1}: {time.monotonic() - began:.2f} s ({'passed' if passed else 'FAILED'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
