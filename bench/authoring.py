"""Authoring from tutorials: the time `autograder new --from` and `autograder validate --mutants` take, and the
mutation score per exercise of the built-in assignments and of the two generated from the seeds' tutorials.

    python -m bench.authoring [--max-mutants 24] [-j 2]

The tutorials are tests/fixtures/tutorials/ (W1D3 T1 and W2D1 T1 as the course hands them out). A mutation
score is caught / (caught + survived); equivalent mutants (the same answers on every call the checks made) are
counted apart. Each figure is one run's wall-clock time on this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

from autograder.mutants import mutation_scores
from autograder.paths import builtin_names
from autograder.tutorial import generate
from tests.conftest import percent_notebook

TUTORIALS = Path(__file__).parents[1] / "tests" / "fixtures" / "tutorials"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-mutants", type=int, default=24)
    parser.add_argument("-j", "--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    rows: list[tuple[str, str, str, str]] = []
    timings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-authoring-") as tmp:
        assignments: list[tuple[str, str | Path]] = [(name, name) for name in builtin_names()]
        for tutorial in ("W1D3_T1", "W2D1_T1"):
            notebook = percent_notebook(TUTORIALS / f"{tutorial}.txt", Path(tmp) / f"{tutorial}.ipynb")
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                made = generate(tutorial.lower(), notebook, Path(tmp) / "course")
            timings.append(f"new --from {tutorial}: {time.perf_counter() - started:.1f} s")
            assignments.append((f"{tutorial} (generated)", made.folder))
        for label, assignment in assignments:
            started = time.perf_counter()
            scores = mutation_scores(assignment, args.max_mutants, jobs=args.jobs)
            timings.append(f"validate --mutants {label}: {time.perf_counter() - started:.1f} s")
            for score in scores:
                real = len(score.caught) + len(score.survived)
                rows.append((label, score.exercise, f"{len(score.caught)}/{real} ({score.score:.0%})",
                             str(len(score.equivalent))))  # fmt: skip
                for mutant in score.survived:
                    rows.append(("", "  survived", mutant.diff, ""))
    print(f"{'assignment':<22} {'exercise':<24} {'caught':>14} {'equivalent':>10}")
    for label, exercise, caught, equivalent in rows:
        if exercise == "  survived":
            print(f"{'':<22}   survived: {caught}")
        else:
            print(f"{label:<22} {exercise:<24} {caught:>14} {equivalent:>10}")
    print("\n".join(timings))


if __name__ == "__main__":
    main()
