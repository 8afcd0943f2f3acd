"""Canvas: its "Download Submissions" zip in, a gradebook import CSV out.

The download is a flat zip of `<name>[_LATE]_<user id>_<attachment id>_<file>` (name: the sortable name, lower
case, punctuation removed), `[LATE_]anon_<anonymous id>_<attachment id>_<file>` under anonymous grading; only the
current submission's files; a group assignment's one submission under the name of the student who submitted it.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from pathlib import PurePosixPath

from autograder import messages
from autograder.csvfile import csv_text, text_cell
from autograder.lms.export import GradeRow, grade_rows, num
from autograder.lms.identity import Identity, LmsError, safe_key
from autograder.lms.intake import Limits, Student, files_of, not_a_download
from autograder.lms.platform import ExportRequest
from autograder.results import atomic_write

title = "Canvas"
download = "'Download Submissions' zip"

FILE = re.compile(
    r"^(?:(?P<slug>\w+?)_)??(?P<late>LATE_|late_)?(?:anon_(?P<anon>[A-Za-z0-9]+)|(?P<user_id>\d+))"
    r"_(?P<attachment_id>\d+)_(?P<file>.+)$"
)
TEXT_ENTRY = re.compile(r"^(?:\w+?_)??(?:LATE_|late_)?(?:anon_[A-Za-z0-9]+|\d+)_(?:text|link)\.html$")
SHAPE = "<name>[_LATE]_<user id>_<file id>_<file>, or anon_<id>_<file id>_<file>"


def students(archive: zipfile.ZipFile, limits: Limits) -> list[Student]:
    found: dict[str, Student] = {}
    for info in files_of(archive):
        name = PurePosixPath(info.filename).name
        match = FILE.match(name)
        if match is None:
            if TEXT_ENTRY.match(name) or name.startswith("."):
                continue  # a text-entry or URL submission: nothing to grade
            raise not_a_download(limits.download, info, title, SHAPE, download)
        anon, user_id, slug = match["anon"] or "", match["user_id"] or "", match["slug"] or ""
        key = f"anon_{anon}" if anon else f"{slug}_{user_id}" if slug else user_id
        identity = Identity(
            key=safe_key(key),
            user_id=user_id,
            anonymous_id=anon,
            name_slug=slug,
            late=match["late"] is not None,
        )
        student = found.setdefault(identity.key, Student(identity))
        student.files.append((match["file"], info.filename))
        student.file_ids[match["file"]] = match["attachment_id"]
    for student in found.values():  # the latest upload first: a re-uploaded notebook has the larger file id
        student.files.sort(key=lambda f, ids=student.file_ids: -int(ids[f[0]]))  # type: ignore[misc]
    return sorted(found.values(), key=lambda s: s.identity.key)


def gradebook_csv(rows: Sequence[GradeRow], column: str, max_score: float, missing: str = "") -> str:
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


def export(request: ExportRequest) -> list[str]:
    rows = grade_rows(request.results, request.identities, request.roster)
    first = next(iter(request.results.values()))
    atomic_write(request.out, gradebook_csv(rows, request.column or first.assignment, first.max_score,
                                            request.missing or ""))  # fmt: skip
    missing = sum(row.result is None for row in rows)
    return [f"canvas grades for {len(rows)} students ({missing} without a submission) in {request.out}."]
