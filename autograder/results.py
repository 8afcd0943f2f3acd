"""Results as frozen data, and the files they are written to (`<name>.json`, `grades.csv`)."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
    isolation: str = ""  # the sandbox the code ran in: "namespaces" or "audit-hook" (see sandbox.py)
    worker_peak_mb: float = 0.0  # peak resident memory of the worker that finished the submission

    def exercise(self, exercise_id: str) -> ExerciseResult:
        return next(e for e in self.exercises if e.id == exercise_id)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["errors"] = list(self.errors)
        data["exercises"] = [{**asdict(e), "tests": [asdict(t) for t in e.tests]} for e in self.exercises]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubmissionResult:
        exercises = tuple(
            ExerciseResult(**{**e, "tests": tuple(CheckResult(**t) for t in e["tests"])}) for e in data["exercises"]
        )
        return cls(**{**data, "errors": tuple(data["errors"]), "exercises": exercises})


def exercise_result(
    exercise: ExerciseSpec, checks: Sequence[CheckResult], missing: Sequence[str], load_errors: Sequence[str]
) -> ExerciseResult:
    """Score and status of one exercise from its checks and what the submission defined."""
    score = round(sum(c.score for c in checks if c.counts), 6)
    graded = [c for c in checks if c.counts]
    if missing:
        status = "error" if load_errors else "missing"
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


def write_json(out_dir: Path, stem: str, result: SubmissionResult) -> Path:
    """Write `<stem>.json` atomically: a reader sees the old file or the new one, never half of one."""
    return atomic_write(out_dir / f"{stem}.json", json.dumps(result.to_dict(), indent=2) + "\n")


def atomic_write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def grades_csv(spec: AssignmentSpec, results: Iterable[SubmissionResult]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["submission", *spec.exercise_ids, "total", "max_total"])
    for result in results:
        scores = {e.id: e.score for e in result.exercises}
        writer.writerow(
            [
                result.submission,
                *(_num(scores.get(i, 0.0)) for i in spec.exercise_ids),
                _num(result.score),
                _num(result.max_score),
            ]
        )
    return buffer.getvalue()


def _num(value: float) -> str:
    return f"{value:g}"
