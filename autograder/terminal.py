"""Text renderings of results for the terminal: feedback lines, self-check lines, class aggregates."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from autograder import messages
from autograder.paths import builtin_names
from autograder.results import NOT_GRADED, ExerciseResult, SubmissionResult, ordered
from autograder.spec import AssignmentSpec, load_assignment
from autograder.submission import SUFFIXES, Submission, load_path, parse_cell
from autograder.text import shown

STATUS_STYLE = {
    "passed": "green",
    "partial": "yellow",
    "failed": "red",
    "missing": "magenta",
    "error": "red",
    "timeout": "red",
    NOT_GRADED: "dim",
}
MAX_TABLE_ROWS = 60  # more submissions than this: one aggregate row per exercise instead
_QUOTED = re.compile(r"'([^']+)'")  # the symbol names in messages.MISSING_ONE / MISSING_MANY
PLAIN_WIDTH = 1000  # a log or a pipe: no wrapping at Rich's default 80 columns


def make_console(stderr: bool = False) -> Console:
    """A console for the terminal, or for plain output (a pipe, a log file) as wide as its lines are long."""
    # No markup: what is printed holds names of files and students' text, which are data ("x[/]y.ipynb" is a file
    # name, not a closing tag). Colour is given explicitly, as Text, where the tool itself wants it.
    console = Console(highlight=False, stderr=stderr, markup=False)
    if console.is_terminal or "COLUMNS" in os.environ:
        return console
    return Console(highlight=False, stderr=stderr, width=PLAIN_WIDTH, markup=False)


def is_plain(console: Console) -> bool:
    """Whether colour is unavailable (a pipe, a log, NO_COLOR): then the text itself must carry every status."""
    return console.color_system is None or console.no_color


def summary_table(
    exercise_ids: Sequence[str], results: Sequence[SubmissionResult], title: str, plain: bool = False
) -> Table:
    """One row per submission, in name order: each exercise's score coloured by its status, or with the status
    named after it in plain output; for a big batch, aggregates instead (`aggregate_table`)."""
    legend = messages.LEGEND_PLAIN if plain else Text.from_markup(messages.LEGEND_COLOUR)
    table = Table(title=Text(title), title_justify="left", caption=legend, caption_justify="left")
    if plain:
        table.box = box.ASCII2
    table.add_column("submission", no_wrap=True)
    maxima = {e.id: e.max_score for e in results[0].exercises} if results else {}
    for exercise_id in exercise_ids:
        table.add_column(f"{exercise_id}\n/{maxima.get(exercise_id, 0):g}", justify="right", overflow="fold")
    table.add_column(f"total\n/{results[0].max_score:g}" if results else "total", justify="right")
    if len(results) > MAX_TABLE_ROWS:
        return aggregate_table(table, exercise_ids, results)
    for result in ordered(results):
        name = Text(shown(result.submission))  # a file name is the student's text, and never markup
        total = f"{result.score:.4g}" if result.graded else "-"
        table.add_row(name, *(_cell(e.score, e.status, plain) for e in result.exercises), total)
    return table


def _cell(score: float, status: str, plain: bool) -> str | Text:
    if status == NOT_GRADED:  # no score: the grader's fault, not a zero
        return "- not graded" if plain else Text("- not graded", style=STATUS_STYLE[status])
    if plain:
        return f"{score:.4g}" if status == "passed" else f"{score:.4g} {status}"
    note = "" if status in ("passed", "partial", "failed") else f" {status}"
    return Text(f"{score:.4g}{note}", style=STATUS_STYLE.get(status, ""))


def print_table(console: Console, table: Table) -> None:
    """Print a table. In plain output its title and caption are lines of their own, unwrapped (Rich wraps them to
    the table's width), and no line ends in the spaces Rich pads them with."""
    if not is_plain(console):
        console.print(table)
        return
    title, caption = table.title, table.caption
    table.title = table.caption = None
    with console.capture() as captured:
        console.print(table)
    table.title, table.caption = title, caption
    lines = [str(title or ""), *captured.get().splitlines(), str(caption or "")]
    console.print("\n".join(line.rstrip() for line in lines if line.strip()), markup=False, soft_wrap=True)


def feedback_lines(results: Sequence[SubmissionResult]) -> list[str]:
    """For each submission, the first failed check of each exercise that lost points, in the student's words;
    exercises whose symbols are all missing share one line (an empty notebook: one line, not one per exercise)."""
    lines: list[str] = []
    for result in ordered(results):
        name = shown(result.submission)
        lines.extend(f"{name}: {error}" for error in result.errors[:3])
        missing: list[tuple[ExerciseResult, list[str]]] = []  # exercises lost only to undefined symbols
        for exercise in result.exercises:
            failed = [t for t in exercise.tests if not t.passed and t.counts]
            if exercise.status == "passed" or not failed or failed[0].message in result.errors:
                continue  # nothing lost, or the submission-level error above already says it
            if failed[0].outcome == "missing" and (names := _QUOTED.findall(failed[0].message.split("\n")[0])):
                missing.append((exercise, names))
                continue
            first = failed[0].message.splitlines()[0] if failed[0].message else "failed"
            lines.append(f"{name} / {exercise.id} ({exercise.status}): {first}")
        if missing:
            statuses = "/".join(sorted({e.status for e, _ in missing}))
            names = [n for _, found in missing for n in found]
            lines.append(f"{name} ({statuses}): {messages.missing_symbols(names)}")
    return lines


_WHERE = re.compile(r"^Cell \d+, line [\d?]+: ")


def note_counts(results: Sequence[SubmissionResult], limit: int = 5) -> str:
    """The instructor's notes of a batch (load problems no lost point depended on), each with how many
    submissions had it: "ModuleNotFoundError: No module named 'vibecheck' (22); ..."; "" where there are none."""
    counts = Counter(note for r in results for note in dict.fromkeys(_WHERE.sub("", n) for n in r.notes))
    shown_notes = [f"{shown(text)} ({n})" for text, n in counts.most_common(limit)]
    more = len(counts) - limit
    return "; ".join(shown_notes) + (f"; and {more} more (in each result's notes)" if more > 0 else "")


def lacking_modules(results: Sequence[SubmissionResult]) -> str:
    """The modules submissions imported that this environment lacks, with how many notebooks import each."""
    counts = Counter(m for r in results for m in dict.fromkeys(r.missing_modules))
    lacking = [(m, n) for m, n in counts.most_common() if importlib.util.find_spec(m) is None]
    return ", ".join(f"{m} ({n} notebook{'s' if n > 1 else ''})" for m, n in lacking)


def aggregate_table(table: Table, exercise_ids: Sequence[str], results: Sequence[SubmissionResult]) -> Table:
    """For big batches: mean score and status counts per exercise instead of one row per submission."""
    means, counts = [], []
    graded = [r for r in results if r.graded] or list(results)  # means of the graded only
    for exercise_id in exercise_ids:
        exercises = [r.exercise(exercise_id) for r in graded]
        means.append(f"{sum(e.score for e in exercises) / len(exercises):.2f}")
        tally = Counter(r.exercise(exercise_id).status for r in results)
        counts.append(", ".join(f"{n} {s}" for s, n in tally.most_common()))
    total = sum(r.score for r in graded) / len(graded)
    table.add_row(f"mean of {len(graded)}", *means, f"{total:.2f}")
    table.add_row("statuses", *counts, "")
    return table


def likeliest_builtin(submission: Submission) -> str | None:
    """The built-in assignment whose exercise symbols the notebook defines most of; None when it defines none."""
    defined: set[str] = set()
    for cell in submission.cells:
        tree = parse_cell(cell.source)
        if tree is None:
            continue
        defined.update(n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
    best, best_hits = None, 0
    for name in builtin_names():
        symbols = {s for e in load_assignment(name).exercises for s in e.symbol_names}
        hits = len(symbols & defined)
        if hits > best_hits:
            best, best_hits = name, hits
    return best


def self_check_submission(path: Path) -> Submission:
    """The one notebook (or .py) a student self-checks, read; a ValueError with one clear message when `path` is
    missing, a folder, not a notebook, or unreadable (checking it could only repeat that for every exercise)."""
    if not path.exists():
        raise ValueError(messages.NO_SUCH_FILE.format(path=path))
    if path.is_dir():
        raise ValueError(messages.CHECK_FOLDER.format(path=path))
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(messages.CHECK_SUFFIX.format(path=path))
    submission = load_path(path)
    if submission.error:
        raise ValueError(submission.error)
    return submission


def self_check_exercise(spec: AssignmentSpec, exercise: str) -> str:
    """An exercise id of `spec`; a ValueError naming the real ones otherwise."""
    if exercise not in spec.exercise_ids:
        known = ", ".join(spec.exercise_ids)
        raise ValueError(messages.UNKNOWN_EXERCISE.format(assignment=spec.name, exercise=exercise, known=known))
    return exercise


def self_check_assignment(submission: Submission, assignment: str | None) -> str:
    """The assignment named, else the built-in the notebook matches best; a ValueError when none matches."""
    if assignment:
        return assignment
    guessed = likeliest_builtin(submission)
    if guessed is None:
        builtins = ", ".join(builtin_names())
        raise ValueError(messages.CHECK_NO_GUESS.format(path=submission.path, builtins=builtins))
    return guessed
