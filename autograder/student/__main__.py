"""`python -m autograder.student NOTEBOOK [--exercise ID] [--bundle WHEEL_OR_FOLDER]`: a student's self-check from a
terminal, with only the student bundle installed (the full `autograder check` needs the whole project)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.student.runtime import BundleNotFound, check_lines, check_notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.student", description=__doc__)
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--exercise", help="only this exercise's public checks")
    parser.add_argument("--bundle", help="the student wheel or its folder (default: the notebook's folder)")
    args = parser.parse_args(argv)
    try:
        result = check_notebook(args.notebook, args.bundle or args.notebook.resolve().parent, args.exercise)
    except (BundleNotFound, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print("\n".join(check_lines(result)))
    return 0 if result.graded else 3  # as `autograder check`: the machine's fault, not the notebook's


if __name__ == "__main__":
    sys.exit(main())
