"""`python -m autograder.student NOTEBOOK [--exercise ID] [--bundle WHEEL_OR_FOLDER]`: a student's self-check from a
terminal, with only the student bundle installed (the full `autograder check` needs the whole project)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.results import SubmissionResult
from autograder.student.runtime import BundleNotFound, check_notebook

SUMMARY = "{passed} of {total} public checks passed. Hidden checks are run when you submit."


def lines(result: SubmissionResult) -> list[str]:
    out = [f"  note: {error}" for error in result.errors]
    passed = total = 0
    for exercise in result.exercises:
        for test in exercise.tests:
            total += test.counts
            passed += test.counts and test.passed
            mark = ("PASS" if test.passed else "FAIL") if test.counts else ("OK  " if test.passed else "TIP ")
            out.append(f"  [{mark}] {exercise.id}: {test.name}")
            if not test.passed:
                out.extend("         " + line for line in test.message.splitlines())
    return [*out, SUMMARY.format(passed=passed, total=total)]


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
    print("\n".join(lines(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
