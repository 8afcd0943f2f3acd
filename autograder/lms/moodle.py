"""Moodle: its "Download all submissions" zip in; a grade import CSV, or the assignment's grading worksheet, out.

The download holds a folder per student `<Full Name>_<participant id>_assignsubmission_file` (a trailing `_`
before Moodle 4.1), `Participant_<id>` under blind marking, `<group>_<group id>` (or `<group>-<Full Name>_<participant
id>` before 4.1) for team submissions; or, with "download as folders" off, flat files
`<prefix>_assignsubmission_file_<file>`.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import PurePosixPath

from autograder import messages
from autograder.csvfile import csv_text, text_cell
from autograder.lms.export import GradeRow, grade_rows, num, summary_line
from autograder.lms.identity import Identity, LmsError, safe_key
from autograder.lms.intake import Limits, Student, files_of, not_a_download
from autograder.lms.platform import ExportRequest
from autograder.results import atomic_write

title = "Moodle"
download = "'Download all submissions' zip"

FOLDER = re.compile(r"^(?P<who>.+?)(?:_(?P<id>\d+))?_assignsubmission_(?P<plugin>[a-z]+)_?$")
FLAT = re.compile(r"^(?P<who>.+?)(?:_(?P<id>\d+))?_assignsubmission_(?P<plugin>[a-z]+)_(?P<file>.+)$")
BLIND = "participant"
SHAPE = "<Full Name>_<participant id>_assignsubmission_file/<file>"

# `export moodle --key`: the Moodle column header and the identity field it is filled from
KEYS = {
    "email": ("Email address", "email"),
    "username": ("Username", "login"),
    "idnumber": ("ID number", "sis_id"),
}
# Moodle's "Upload grading worksheet" (the assignment's offline grading): it matches "Participant <n>" in
# Identifier, so it works under blind marking; it needs these three headers exactly.
WORKSHEET_HEADER = ("Identifier", "Full name", "Grade", "Last modified (grade)", "Feedback comments")


def students(archive: zipfile.ZipFile, limits: Limits) -> list[Student]:
    found: dict[str, Student] = {}
    for info in files_of(archive):
        parts = PurePosixPath(info.filename).parts
        folder = FOLDER.match(parts[0]) if len(parts) > 1 else None
        flat = FLAT.match(parts[0]) if len(parts) == 1 else None
        match = folder or flat
        if match is None:
            raise not_a_download(limits.download, info, title, SHAPE, download)
        who, number = match["who"], match["id"] or ""
        blind = who.casefold() == BLIND
        identity = Identity(
            key=safe_key(f"{who}_{number}" if number else who),
            name="" if blind else who,
            participant_id=number,
        )
        student = found.setdefault(identity.key, Student(identity))
        student.files.append(("/".join(parts[1:]) if folder else match["file"], info.filename))
    return sorted(found.values(), key=lambda s: s.identity.key)


def grades_csv(rows: Sequence[GradeRow], column: str, key: str = "email", missing: str | None = None) -> str:
    """A Moodle grade import (Grades > Import > CSV file): the identifying column, the grade column and a
    feedback column. Students without a submission are left out unless `missing` is given: Moodle's import
    clears a grade whose cell is blank."""
    if key == "participant":
        return worksheet(rows, missing)
    if key not in KEYS:
        raise LmsError(f"moodle: key {key!r} must be one of {', '.join([*KEYS, 'participant'])}")
    header, attribute = KEYS[key]
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


def worksheet(rows: Sequence[GradeRow], missing: str | None = None, now: datetime | None = None) -> str:
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


def export(request: ExportRequest) -> list[str]:
    rows = grade_rows(request.results, request.identities, request.roster)
    column = request.column or next(iter(request.results.values())).assignment
    atomic_write(request.out, grades_csv(rows, column, request.key or "email", request.missing))
    missing = sum(row.result is None for row in rows)
    lines = [f"moodle grades for {len(rows)} students ({missing} without a submission) in {request.out}."]
    if n := left_out(rows, request.missing):
        lines.append(messages.MOODLE_BLANK_LEFT_OUT.format(n=n))
    return lines
