"""Results as frozen data, and the files they are written to (`<name>.json`, `grades.csv`)."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder import messages
from autograder.csvfile import csv_text, text_cell
from autograder.spec import AssignmentSpec, ExerciseSpec


@dataclass(frozen=True)
class CheckResult:
    name: str
    score: float
    max_score: float
    passed: bool
    hidden: bool
    message: str = ""  # what the student sees
    outcome: str = "passed"  # passed, failed, error, missing, timeout
    detail: str = ""  # instructor-only: the grader-side traceback of an internal error
    advisory: bool = False  # advice only: reported, worth 0 points, never costs any

    @property
    def counts(self) -> bool:
        """Whether this check's outcome bears on the exercise's score and status."""
        return not self.advisory


@dataclass(frozen=True)
class ExerciseResult:
    id: str
    score: float
    max_score: float
    status: str
    tests: tuple[CheckResult, ...] = ()


@dataclass(frozen=True)
class SubmissionResult:
    submission: str
    assignment: str
    score: float
    max_score: float
    device: str
    duration_s: float
    errors: tuple[str, ...] = ()
    exercises: tuple[ExerciseResult, ...] = ()
    path: str = ""
    output: str = field(default="", repr=False)  # the tail of what the student's code printed
    output_truncated: bool = False  # it printed more than the 16 MiB kept; the rest was dropped
    isolation: str = ""  # the namespace layer the code ran behind, or "audit-hook" (see runner/sandbox.py)
    worker_peak_mb: float = 0.0  # peak resident memory of the worker that finished the submission
    walls: dict[str, Any] = field(default_factory=dict)  # every wall it ran behind (runner/sandbox.Walls)
    # Why the grader could not grade it, by a fault of its own (a worker that could not start, a batch stopped
    # before it): never the student's zero. Tables, grade sheets, exports and --resume treat it as not graded.
    not_graded: str = ""
    # Load problems no lost point depends on (a course's install cell, a widget's layout): for the instructor,
    # never shown to the student; and the modules the notebook imported that this environment lacks.
    notes: tuple[str, ...] = ()
    missing_modules: tuple[str, ...] = ()

    @property
    def graded(self) -> bool:
        return not self.not_graded and NOT_GRADED_BEFORE not in self.errors

    def exercise(self, exercise_id: str) -> ExerciseResult:
        return next(e for e in self.exercises if e.id == exercise_id)

    def to_dict(self) -> dict[str, Any]:
        """As written to `<name>.json`. Field by field: `dataclasses.asdict` deep-copies every value, ~1 ms a
        result of a whole notebook (its ~30 checks), paid once per submission by the process writing results."""
        data = _fields(self)
        data["errors"] = list(self.errors)
        data["walls"] = dict(self.walls)  # flat: names of walls to strings, numbers and booleans
        data["exercises"] = [{**_fields(e), "tests": [_fields(t) for t in e.tests]} for e in self.exercises]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubmissionResult:
        exercises = tuple(
            ExerciseResult(**{**e, "tests": tuple(CheckResult(**t) for t in e["tests"])}) for e in data["exercises"]
        )
        lists = {k: tuple(data.get(k, ())) for k in ("errors", "notes", "missing_modules")}
        return cls(**{**data, **lists, "exercises": exercises})


def _fields(result: CheckResult | ExerciseResult | SubmissionResult) -> dict[str, Any]:
    """A result's fields, shallow: their values are immutable (strings, numbers, tuples of them) but for
    those `to_dict` converts itself."""
    return {name: getattr(result, name) for name in result.__dataclass_fields__}


def exercise_result(
    exercise: ExerciseSpec, checks: Sequence[CheckResult], missing: Sequence[str], definition_failed: bool
) -> ExerciseResult:
    """Score and status of one exercise from its checks and what the submission defined. A missing symbol is
    `error` when the code meant to define it raised (`definition_failed`), `missing` when there is none."""
    score = round(sum(c.score for c in checks if c.counts), 6)
    graded = [c for c in checks if c.counts]
    if missing:
        status = "error" if definition_failed else "missing"
    elif any(c.outcome == "timeout" for c in graded):
        status = "timeout"
    elif graded and score >= exercise.points:
        status = "passed"
    elif score > 0:
        status = "partial"
    else:
        status = "failed"
    return ExerciseResult(exercise.id, score, exercise.points, status, tuple(checks))


def error_result(spec: AssignmentSpec, submission: str, path: str, error: str, device: str) -> SubmissionResult:
    """The result of a submission that could not be graded at all: every exercise an error."""
    check = CheckResult("submission", 0.0, 0.0, False, False, error, "error")
    exercises = tuple(ExerciseResult(e.id, 0.0, e.points, "error", (check,)) for e in spec.exercises)
    return SubmissionResult(submission, spec.name, 0.0, spec.max_score, device, 0.0, (error,), exercises, path)


NOT_GRADED = "not graded"  # the status of every exercise of a result the grader could not grade
NOT_GRADED_BEFORE = messages.NOT_GRADED  # how results of earlier versions said so (in `errors`)


def not_graded_result(spec: AssignmentSpec, submission: str, path: str, reason: str, device: str) -> SubmissionResult:
    """The result of a submission the grader could not grade by its own fault: no score is given."""
    check = CheckResult("submission", 0.0, 0.0, False, False, reason, "error")
    exercises = tuple(ExerciseResult(e.id, 0.0, e.points, NOT_GRADED, (check,)) for e in spec.exercises)
    return SubmissionResult(
        submission, spec.name, 0.0, spec.max_score, device, 0.0, (reason,), exercises, path, not_graded=reason
    )


def write_json(out_dir: Path, stem: str, result: SubmissionResult) -> Path:
    """Write `<stem>.json` atomically: a reader sees the old file or the new one, never half of one."""
    return atomic_write(out_dir / f"{stem}.json", json.dumps(result.to_dict(), indent=2) + "\n")


def temporary_beside(path: Path) -> tuple[int, str]:
    """(descriptor, path) of a new temporary file in `path`'s folder, to be renamed onto `path`, with the mode a
    plain `open(path, "w")` would give it (an existing file's own mode, else 0o666 less the umask)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = 0o666 & ~current_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, mode)
    return fd, tmp


def atomic_write(path: Path, text: str) -> Path:
    """Write `path` through a temporary file and a rename. The file gets the mode a plain `open(path, "w")` would
    give it (an existing file's own mode, else 0o666 less the umask), not mkstemp's 0600: teaching assistants and
    web servers must be able to read results, grade sheets and pages."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # no stray .tmp file beside the results
        raise
    return path


def current_umask() -> int:
    """The process's umask. Read from /proc where it can be: setting it to read it back (the only portable way)
    would, for that instant, let files other threads create (a progress display's) get mode 0666."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_result(path: Path) -> SubmissionResult | None:
    """The result a `<stem>.json` holds; None for a file that is not one (unreadable, or another tool's JSON)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SubmissionResult.from_dict(data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError, KeyError):
        return None


def results_in(folder: Path) -> dict[str, SubmissionResult]:
    """Every result in a results folder, by file stem; other JSON files there (identities.json) are left out."""
    found = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        result = read_result(path)
        if result is not None:
            found[path.stem] = result
    return found


def one_assignment(folder: Path, results: dict[str, SubmissionResult] | None = None) -> str | None:
    """The one assignment a results folder's results are of (None when it has none); a ValueError naming both
    assignments and a file of each when they are of several: grades, reports and exports must never mix them."""
    results = results_in(folder) if results is None else results
    example: dict[str, str] = {}
    for stem, result in sorted(results.items()):
        example.setdefault(result.assignment, f"{stem}.json")
    if len(example) > 1:
        found = ", ".join(f"{name!r} ({file})" for name, file in sorted(example.items()))
        raise ValueError(messages.MIXED_RESULTS.format(folder=folder, found=found))
    return next(iter(example), None)


def ordered(results: Iterable[SubmissionResult]) -> list[SubmissionResult]:
    """Results in the order every output lists them (grades.csv, the terminal table): by submission name."""
    return sorted(results, key=lambda r: r.submission)


def grades_csv(spec: AssignmentSpec, results: Iterable[SubmissionResult]) -> str:
    return csv_text(["submission", *spec.exercise_ids, "total", "max_total"], (_grades_row(spec, r) for r in results))


def _grades_row(spec: AssignmentSpec, result: SubmissionResult) -> list[str]:
    if not result.graded:  # no score at all, rather than a zero the student did not earn
        return [text_cell(result.submission), *("" for _ in spec.exercise_ids), "", _num(result.max_score)]
    scores = {e.id: e.score for e in result.exercises}
    return [
        text_cell(result.submission),
        *(_num(scores.get(i, 0.0)) for i in spec.exercise_ids),
        _num(result.score),
        _num(result.max_score),
    ]


def _num(value: float) -> str:
    return f"{value:g}"
