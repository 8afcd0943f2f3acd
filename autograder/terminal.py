"""Text renderings of results for the terminal: feedback lines, self-check lines, class aggregates."""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Sequence

from rich.table import Table

from autograder.paths import builtin_names
from autograder.results import SubmissionResult
from autograder.spec import load_assignment
from autograder.submission import Submission


def feedback_lines(results: Sequence[SubmissionResult]) -> list[str]:
    """For each submission, the first failed check of each exercise that lost points, in the student's words."""
    lines = []
    for result in results:
        for error in result.errors[:3]:
            lines.append(f"{result.submission}: {error}")
        for exercise in result.exercises:
            failed = [t for t in exercise.tests if not t.passed and t.counts]
            if exercise.status != "passed" and failed:
                if failed[0].message in result.errors:
                    continue  # the submission-level error above already says it
                first = failed[0].message.splitlines()[0] if failed[0].message else "failed"
                lines.append(f"{result.submission} / {exercise.id} ({exercise.status}): {first}")
    return lines


def check_lines(result: SubmissionResult) -> list[str]:
    """A student's self-check: every public check with its full message when it failed."""
    lines = []
    for error in result.errors:
        lines.append(f"  note: {error}")
    passed = total = 0
    for exercise in result.exercises:
        for test in exercise.tests:
            if test.counts:
                total += 1
                passed += test.passed
                mark = "PASS" if test.passed else "FAIL"
            else:
                mark = "OK  " if test.passed else "TIP "
            lines.append(f"  [{mark}] {exercise.id}: {test.name}")
            if not test.passed:
                lines.extend("         " + line for line in test.message.splitlines())
    lines.append(f"{passed} of {total} public checks passed. Hidden checks are run when you submit.")
    return lines


def aggregate_table(table: Table, exercise_ids: Sequence[str], results: Sequence[SubmissionResult]) -> Table:
    """For big batches: mean score and status counts per exercise instead of one row per submission."""
    means, counts = [], []
    for exercise_id in exercise_ids:
        exercises = [r.exercise(exercise_id) for r in results]
        means.append(f"{sum(e.score for e in exercises) / len(exercises):.2f}")
        tally = Counter(e.status for e in exercises)
        counts.append(", ".join(f"{n} {s}" for s, n in tally.most_common()))
    total = sum(r.score for r in results) / len(results)
    table.add_row(f"mean of {len(results)}", *means, f"{total:.2f}")
    table.add_row("statuses", *counts, "")
    return table


def guess_assignment(submission: Submission) -> str:
    """The built-in assignment whose exercise symbols the notebook defines most of."""
    defined: set[str] = set()
    for cell in submission.cells:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        defined.update(n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
    best, best_hits = builtin_names()[0], -1
    for name in builtin_names():
        symbols = {s for e in load_assignment(name).exercises for s in e.symbol_names}
        hits = len(symbols & defined)
        if hits > best_hits:
            best, best_hits = name, hits
    return best
