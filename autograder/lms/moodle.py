"""Moodle: its "Download all submissions" zip in; a grade import CSV, or the assignment's grading worksheet, out.

The download holds a folder per student `<Full Name>_<participant id>_assignsubmission_file` (a trailing `_`
before Moodle 4.1), `Participant_<id>` under blind marking, `<group>_<group id>` (or `<group>-<Full Name>_<participant
id>` before 4.1) for team submissions; or, with "download as folders" off, flat files
`<prefix>_assignsubmission_file_<file>`.
"""

from __future__ import annotations

import re
import time
import zipfile
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from autograder import messages
from autograder.csvfile import csv_text, text_cell
from autograder.lms.export import GradeRow, grade_rows, num, summary_line
from autograder.lms.identity import Identity, LmsError, safe_key
from autograder.lms.intake import Limits, Student, files_of, not_a_download
from autograder.lms.platform import ExportRequest
from autograder.lms.push import TOKEN_ENV, Connection, Current, Person, Post, Target, Transient, retrying, scrub
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


# -- push: scores and feedback comments into a live course, through Moodle's REST web services ---------------------
SAVE_CHUNK = 50  # students per mod_assign_save_grades call
FORMAT_PLAIN = 2  # Moodle's text format number for plain text
REFUSED = {"invalidtoken", "accessexception", "invalidlogin", "usernotfullysetup", "servicerequireslogin"}


def connect(connection: Connection) -> MoodleGradebook:
    return MoodleGradebook(connection)


def flatten(name: str, value: Any) -> list[tuple[str, str]]:
    """Moodle's form encoding of nested parameters: grades[0][plugindata][...][text]=..."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in flatten(f"{name}[{k}]", v)]
    if isinstance(value, list):
        return [pair for i, v in enumerate(value) for pair in flatten(f"{name}[{i}]", v)]
    return [(name, str(int(value)) if isinstance(value, bool) else str(value))]


class MoodleGradebook:
    """One assignment's grades in a Moodle course (push.Gradebook), through its REST web services."""

    def __init__(self, connection: Connection, sleep: Callable[[float], None] = time.sleep):
        import requests

        self.connection, self.sleep = connection, sleep
        self.session = requests.Session()
        self._assignment: dict[str, Any] | None = None

    def request(self, function: str, **params: Any) -> Any:
        """One web-service call (the token in the POST body, never in the address); Moodle's error envelope becomes
        an LmsError, a 5xx or a lost connection a retry."""
        import requests

        data = [("wstoken", self.connection.token), ("wsfunction", function), ("moodlewsrestformat", "json")]
        data += [pair for k, v in params.items() for pair in flatten(k, v)]
        try:
            response = self.session.post(f"{self.connection.url}/webservice/rest/server.php", data=data, timeout=120)
        except (requests.ConnectionError, requests.Timeout) as failure:
            raise Transient(f"the connection to Moodle was lost ({type(failure).__name__})") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise Transient(f"Moodle answered {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            status = response.status_code
            raise LmsError(f"{self.connection.url}: not a Moodle web service (HTTP {status}, not JSON)") from None
        if isinstance(answer, dict) and "exception" in answer:
            code = str(answer.get("errorcode", ""))
            if code in REFUSED:
                raise LmsError(messages.PUSH_BAD_TOKEN.format(lms="Moodle", variable=TOKEN_ENV["moodle"]))
            if code in ("nopermissions", "requireloginerror"):
                raise LmsError(messages.PUSH_FORBIDDEN.format(lms="Moodle"))
            detail = scrub(str(answer.get("message", "")), self.connection.token)[:300]
            raise LmsError(f"Moodle refused {function}: {code}: {detail}")
        return answer

    def call(self, function: str, **params: Any) -> Any:
        return retrying(lambda: self.request(function, **params), function, self.connection, self.sleep)

    def assignment(self) -> dict[str, Any]:
        if self._assignment is None:
            c = self.connection
            answer = self.call("mod_assign_get_assignments", courseids=[c.course])
            found = [a for course in answer.get("courses", []) for a in course.get("assignments", [])
                     if str(a.get("id")) == c.assignment or str(a.get("cmid")) == c.assignment]  # fmt: skip
            if not found:
                raise LmsError(messages.PUSH_MOODLE_MISSING.format(url=c.url, course=c.course, assignment=c.assignment))
            self._assignment = found[0]
        return self._assignment

    def target(self) -> Target:
        assignment = self.assignment()
        points = float(assignment.get("grade") or 0)  # negative: a scale's id; 0: no grade
        return Target(str(assignment.get("name", "")), points, "points" if points > 0 else "scale")

    def people(self) -> list[Person]:
        users = self.call("core_enrol_get_enrolled_users", courseid=self.connection.course)
        students = [u for u in users if not u.get("roles") or any(r.get("shortname") == "student" for r in u["roles"])]
        return [Person(str(u["id"]), u.get("fullname", ""), u.get("idnumber") or "", u.get("username") or "",
                       u.get("email") or "") for u in students]  # fmt: skip

    def current(self) -> dict[str, Current]:
        answer = self.call("mod_assign_get_grades", assignmentids=[self.assignment()["id"]])
        found = {}
        for assignment in answer.get("assignments", []):
            for grade in assignment.get("grades", []):
                value = grade.get("grade")
                score = float(value) if value not in (None, "") else None
                found[str(grade["userid"])] = Current(score if score is not None and score >= 0 else None)
        return found

    def post(self, posts: Sequence[Post], acknowledged: Callable[[Post], None]) -> None:
        """mod_assign_save_grades in chunks. A save replaces the grade and the feedback comment (Moodle keeps one
        of each), so repeating a save whose answer was lost changes nothing."""
        assignment_id = self.assignment()["id"]
        for start in range(0, len(posts), SAVE_CHUNK):
            chunk = posts[start : start + SAVE_CHUNK]
            grades = [{"userid": p.user_id, "grade": num(p.score), "attemptnumber": -1, "addattempt": 0,
                       "workflowstate": "", "plugindata": {"assignfeedbackcomments_editor": {
                           "text": p.comment, "format": FORMAT_PLAIN}}} for p in chunk]  # fmt: skip
            self.call("mod_assign_save_grades", assignmentid=assignment_id, applytoall=0, grades=grades)
            for post in chunk:
                acknowledged(post)
