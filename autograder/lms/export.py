"""Grades out: results matched to students (identities from intake, a roster), rendered as a Canvas gradebook
import, a Moodle grade import or grading worksheet, or Gradescope's results.json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from autograder import messages
from autograder.csvfile import csv_text, text_cell
from autograder.lms.identity import Identity, LmsError, with_person
from autograder.lms.roster import RosterIndex
from autograder.results import SubmissionResult
from autograder.runner import missing_walls

# --key of `export moodle`: the Moodle column header and the identity field it is filled from
MOODLE_KEYS = {
    "email": ("Email address", "email"),
    "username": ("Username", "login"),
    "idnumber": ("ID number", "sis_id"),
}
# Moodle's "Upload grading worksheet" (the assignment's offline grading): it matches "Participant <n>" in
# Identifier, so it works under blind marking; it needs these three headers exactly.
WORKSHEET_HEADER = ("Identifier", "Full name", "Grade", "Last modified (grade)", "Feedback comments")


def load_results(results_dir: Path) -> dict[str, SubmissionResult]:
    """Every `<stem>.json` in a results folder, by stem."""
    if not results_dir.is_dir():
        raise LmsError(f"{results_dir}: no such results folder")
    found = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            found[path.stem] = SubmissionResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError, KeyError) as exc:
            raise LmsError(f"{path}: not a result written by `autograder grade` ({exc})") from None
    if not found:
        raise LmsError(f"{results_dir}: no results (<submission>.json) in this folder")
    return found


@dataclass(frozen=True)
class GradeRow:
    identity: Identity
    result: SubmissionResult | None  # None: no gradable submission


def grade_rows(
    results: dict[str, SubmissionResult], identities: Sequence[Identity], roster: Sequence[Identity] = ()
) -> list[GradeRow]:
    """One row per student: graded ones (a group submission counts for each member the roster names), then
    students who submitted nothing gradable, then roster students without a submission."""
    by_key = {i.key: i for i in identities}
    index = RosterIndex(roster)
    submitted: list[tuple[Identity, SubmissionResult | None]] = [
        (by_key.get(stem) or Identity(key=stem, login=stem), result) for stem, result in results.items()
    ]
    submitted += [(i, None) for i in identities if i.key not in results]
    rows: list[GradeRow] = []
    owner: dict[int, str] = {}  # roster entry -> the submission that counts for it
    for identity, result in submitted:
        people = index.find(identity) if roster else []
        for person in people:
            if id(person) in owner:
                raise LmsError(
                    messages.TWO_SUBMISSIONS.format(
                        person=person.name or person.key, first=owner[id(person)], second=identity.key
                    )
                )
            owner[id(person)] = identity.key
            group = identity.name if len(people) > 1 else identity.group
            rows.append(GradeRow(replace(with_person(identity, person), group=group or person.group), result))
        if not people:
            rows.append(GradeRow(identity, result))
    rows += [GradeRow(person, None) for person in index.people if id(person) not in owner]
    return rows


def canvas_csv(rows: Sequence[GradeRow], column: str, max_score: float, missing: str = "") -> str:
    """A Canvas gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, then the assignment column
    (named as Canvas exports it, e.g. "Lab 3 (12345)"), with the "Points Possible" row Canvas writes."""
    anonymous = [r.identity.key for r in rows if r.identity.anonymous_id and not r.identity.user_id]
    if anonymous:
        raise LmsError(messages.CANVAS_ANONYMOUS.format(keys=", ".join(anonymous)))
    table = [["    Points Possible", "", "", "", "", num(max_score)]]
    for row in rows:
        i = row.identity
        if not (i.user_id or i.sis_id or i.login):
            raise LmsError(messages.CANVAS_NO_ID.format(key=i.key))
        score = num(row.result.score) if row.result else missing
        people = (i.name or i.name_slug or i.login, i.user_id, i.sis_id, i.login, i.section)
        table.append([*map(text_cell, people), score])
    return csv_text(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column], table)


def moodle_csv(rows: Sequence[GradeRow], column: str, key: str = "email", missing: str | None = None) -> str:
    """A Moodle grade import (Grades > Import > CSV file): the identifying column, the grade column and a
    feedback column. Students without a submission are left out unless `missing` is given: Moodle's import
    clears a grade whose cell is blank."""
    if key == "participant":
        return moodle_worksheet(rows, missing)
    if key not in MOODLE_KEYS:
        raise LmsError(f"moodle: key {key!r} must be one of {', '.join([*MOODLE_KEYS, 'participant'])}")
    header, attribute = MOODLE_KEYS[key]
    table = []
    for row in rows:
        if row.result is None and missing is None:
            continue
        ident = getattr(row.identity, attribute)
        if not ident:
            raise LmsError(messages.MOODLE_NO_KEY.format(key=row.identity.key, field=key, header=header))
        grade, feedback = _grade_and_feedback(row, missing)
        table.append([text_cell(ident), grade, text_cell(feedback)])
    return csv_text([header, column, "Feedback"], table)


def moodle_worksheet(rows: Sequence[GradeRow], missing: str | None = None, now: datetime | None = None) -> str:
    """The assignment's grading worksheet, filled in: upload it on the assignment's grading page. Its
    "Last modified (grade)" is the export's time, so Moodle keeps only grades edited after the export."""
    stamp = (now or datetime.now()).strftime("%Y-%m-%d %H:%M:%S")
    table = []
    for row in rows:
        if row.result is None and missing is None:
            continue
        if not row.identity.participant_id:
            raise LmsError(
                messages.MOODLE_NO_KEY.format(key=row.identity.key, field="participant", header="Identifier")
            )
        grade, feedback = _grade_and_feedback(row, missing)
        identifier = f"Participant {row.identity.participant_id}"
        table.append([identifier, text_cell(row.identity.name), grade, stamp, text_cell(feedback)])
    return csv_text(WORKSHEET_HEADER, table)


def _grade_and_feedback(row: GradeRow, missing: str | None) -> tuple[str, str]:
    if row.result is None:
        return missing or "", "No submission." if missing else ""
    return num(row.result.score), summary_line(row.result)


def left_out(rows: Sequence[GradeRow], missing: str | None) -> int:
    """How many students a Moodle file leaves out (no submission, no --missing)."""
    return 0 if missing is not None else sum(row.result is None for row in rows)


def gradescope_results(result: SubmissionResult, note: str = "") -> dict[str, Any]:
    """Gradescope's autograder `results.json` for one submission: one test per check, public checks visible,
    hidden ones after the grades are published; messages only, never check code."""
    tests = []
    for exercise in result.exercises:
        for check in exercise.tests:
            tests.append(
                {
                    "name": f"{exercise.id}: {check.name}",
                    "score": check.score,
                    "max_score": check.max_score,
                    "visibility": "after_published" if check.hidden else "visible",
                    "output": check.message,
                }
            )
    output = "\n".join([*([note] if note else []), *result.errors]) or summary_line(result)
    return {
        "score": result.score,
        "output": output,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        # For the instructor (Gradescope keeps extra_data from students): the walls the code ran behind.
        "extra_data": {"walls": result.walls, "missing_walls": list(missing_walls(result.walls))},
    }


def gradescope_failure(message: str) -> dict[str, Any]:
    """results.json for a submission that could not be graded: score 0 and what the student should do."""
    return {"score": 0, "output": message, "visibility": "visible", "stdout_visibility": "hidden", "tests": []}


def summary_line(result: SubmissionResult) -> str:
    parts = [f"{e.id} {num(e.score)}/{num(e.max_score)}" for e in result.exercises]
    return f"{num(result.score)}/{num(result.max_score)}: " + ", ".join(parts)


def num(value: float) -> str:
    return f"{value:g}"
