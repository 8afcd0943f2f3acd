"""Grades out: results matched to students (identities from intake, a roster); each platform's module renders
them as that platform imports grades (canvas.py, moodle.py, gradescope.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from autograder import messages
from autograder.lms.identity import Identity, LmsError, with_person
from autograder.lms.roster import RosterIndex
from autograder.results import SubmissionResult


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


def summary_line(result: SubmissionResult) -> str:
    parts = [f"{e.id} {num(e.score)}/{num(e.max_score)}" for e in result.exercises]
    return f"{num(result.score)}/{num(result.max_score)}: " + ", ".join(parts)


def num(value: float) -> str:
    return f"{value:g}"
