"""Canvas: its "Download Submissions" zip in, a gradebook import CSV out.

The download is a flat zip of `<name>[_LATE]_<user id>_<attachment id>_<file>` (name: the sortable name, lower
case, punctuation removed), `[LATE_]anon_<anonymous id>_<attachment id>_<file>` under anonymous grading; only the
current submission's files; a group assignment's one submission under the name of the student who submitted it.
"""

from __future__ import annotations

import functools
import re
import time
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath
from typing import Any, TypeVar

from autograder import messages
from autograder.csvfile import csv_text, text_cell
from autograder.lms.export import GradeRow, grade_rows, num
from autograder.lms.identity import Identity, LmsError, safe_key
from autograder.lms.intake import Limits, Student, files_of, not_a_download
from autograder.lms.platform import ExportRequest
from autograder.lms.push import (
    ATTEMPTS,
    MARKER,
    TOKEN_ENV,
    Connection,
    Current,
    Person,
    Post,
    Target,
    Transient,
    retrying,
    scrub,
)
from autograder.results import atomic_write

T = TypeVar("T")
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


# -- push: scores and feedback into a live course, through canvasapi ---------------------------------------------
BULK_CHUNK = 100  # students per bulk update
LOW_REMAINING = 100.0  # Canvas's request budget (X-Rate-Limit-Remaining, 700 when full) below which we slow down


def connect(connection: Connection) -> CanvasGradebook:
    return CanvasGradebook(connection)


class CanvasGradebook:
    """One assignment's gradebook in a Canvas course (push.Gradebook), through the canvasapi client."""

    def __init__(self, connection: Connection, sleep: Callable[[float], None] = time.sleep):
        from canvasapi import Canvas

        self.connection, self.sleep = connection, sleep
        with warnings.catch_warnings():  # canvasapi warns of http://, which push.checked_url allows on loopback only
            warnings.simplefilter("ignore", UserWarning)
            self.canvas = Canvas(connection.url, connection.token)
        self.canvas._Canvas__requester._session.hooks["response"].append(self.watch)  # type: ignore[attr-defined]
        self._course: Any = None
        self._assignment: Any = None

    def watch(self, response: Any, *args: object, **kwargs: object) -> None:
        """Slow down as Canvas's request budget runs low, before it starts refusing (403 Rate Limit Exceeded)."""
        try:
            remaining = float(response.headers.get("X-Rate-Limit-Remaining", "inf"))
        except ValueError:
            return
        if remaining < LOW_REMAINING:
            self.sleep(self.connection.retry_wait * (1 - remaining / LOW_REMAINING))

    def call(self, what: str, function: Callable[[], T]) -> T:
        return retrying(lambda: translated(function, self.connection), what, self.connection, self.sleep)

    @property
    def assignment(self) -> Any:
        if self._assignment is None:
            self._course = self.call("reading the course", lambda: self.canvas.get_course(self.connection.course))
            self._assignment = self.call("reading the assignment",
                                         lambda: self._course.get_assignment(self.connection.assignment))  # fmt: skip
        return self._assignment

    def target(self) -> Target:
        assignment = self.assignment
        kind = getattr(assignment, "grading_type", "points")
        if kind not in ("points", "percent"):
            raise LmsError(messages.PUSH_CANVAS_GRADING_TYPE.format(name=assignment.name, kind=kind))
        points = float(getattr(assignment, "points_possible", 0) or 0)
        return Target(assignment.name, points)

    def people(self) -> list[Person]:
        course = self.assignment and self._course  # read with the assignment
        users = self.call("reading the course's students", lambda: list(
            course.get_users(enrollment_type=["student"], include=["email"], per_page=100)))  # fmt: skip
        return [Person(str(u.id), getattr(u, "name", "") or "", getattr(u, "sis_user_id", None) or "",
                       getattr(u, "login_id", None) or "", getattr(u, "email", None) or "") for u in users]  # fmt: skip

    def current(self, only: set[str] | None = None) -> dict[str, Current]:
        submissions = self.call("reading the gradebook", lambda: list(
            self.assignment.get_submissions(include=["submission_comments"], per_page=100)))  # fmt: skip
        found = {}
        for s in submissions:
            comments = getattr(s, "submission_comments", None) or []
            markers = frozenset(m for c in comments for m in MARKER.findall(c.get("comment") or ""))
            score = getattr(s, "score", None)
            found[str(s.user_id)] = Current(None if score is None else float(score), markers)
        return found

    def post(self, posts: Sequence[Post], acknowledged: Callable[[Post], None]) -> None:
        if len(posts) >= self.connection.bulk_from:
            for start in range(0, len(posts), BULK_CHUNK):
                self.post_bulk(posts[start : start + BULK_CHUNK], acknowledged)
        else:
            for post in posts:
                self.post_one(post)
                acknowledged(post)
        for post in posts:
            if post.page is not None:
                self.attach(post)

    def not_yet_there(self, posts: Sequence[Post]) -> list[Post]:
        """After a write whose answer was lost: the posts whose comment Canvas does not hold (the rest arrived)."""
        now = self.current()
        return [p for p in posts if p.marker not in now.get(p.user_id, Current(None)).markers]

    def post_one(self, post: Post) -> None:
        from canvasapi.submission import Submission

        submission = Submission(self.assignment._requester, {"course_id": self.assignment.course_id,
                                "assignment_id": self.assignment.id, "user_id": post.user_id})  # fmt: skip
        grade, comment = {"posted_grade": num(post.score)}, {"text_comment": post.comment}
        for attempt in range(ATTEMPTS):
            try:
                translated(lambda: submission.edit(submission=grade, comment=comment), self.connection)
                return
            except Transient as failure:
                if attempt == ATTEMPTS - 1:
                    raise LmsError(f"posting {post.key}'s grade: {failure} ({ATTEMPTS} tries)") from None
                self.sleep(failure.wait if failure.wait is not None else self.connection.retry_wait * 2**attempt)
                if not self.not_yet_there([post]):
                    return  # the lost answer's write arrived

    def post_bulk(self, posts: Sequence[Post], acknowledged: Callable[[Post], None]) -> None:
        pending = list(posts)
        for attempt in range(ATTEMPTS):
            grade_data = {p.user_id: {"posted_grade": num(p.score), "text_comment": p.comment} for p in pending}
            try:
                update = functools.partial(self.assignment.submissions_bulk_update, grade_data=grade_data)
                progress = translated(update, self.connection)
                self.wait_for(progress)
                break
            except Transient as failure:
                if attempt == ATTEMPTS - 1:
                    raise LmsError(f"Canvas's bulk grade update: {failure} ({ATTEMPTS} tries)") from None
                self.sleep(failure.wait if failure.wait is not None else self.connection.retry_wait * 2**attempt)
                pending = self.not_yet_there(pending)
                if not pending:
                    break
        for post in posts:
            acknowledged(post)

    def wait_for(self, progress: Any) -> None:
        """Poll a bulk update's Progress until Canvas's job has run."""
        wait = 0.05
        while progress.workflow_state not in ("completed", "failed"):
            self.sleep(wait)
            wait = min(wait * 2, 2.0)
            progress = self.call("waiting for the bulk update", progress.query) or progress
        if progress.workflow_state == "failed":
            why = getattr(progress, "message", "") or "no reason given"
            raise LmsError(f"Canvas's bulk grade update failed: {why}")

    def attach(self, post: Post) -> None:
        from canvasapi.submission import Submission

        assert post.page is not None
        submission = Submission(self.assignment._requester, {"course_id": self.assignment.course_id,
                                "assignment_id": self.assignment.id, "user_id": post.user_id})  # fmt: skip
        self.call(f"attaching {post.page.name}", lambda: submission.upload_comment(str(post.page)))


def translated(function: Callable[[], T], connection: Connection) -> T:
    """function(), with canvasapi's and requests' failures turned into a retry (Transient) or a clear LmsError."""
    import requests
    from canvasapi import exceptions as canvas

    try:
        return function()
    except (canvas.InvalidAccessToken, canvas.Unauthorized):
        raise LmsError(messages.PUSH_BAD_TOKEN.format(lms="Canvas", variable=TOKEN_ENV["canvas"])) from None
    except canvas.ResourceDoesNotExist:
        raise LmsError(messages.PUSH_CANVAS_MISSING.format(url=connection.url, course=connection.course,
                                                           assignment=connection.assignment)) from None  # fmt: skip
    except canvas.Forbidden as refused:
        if "rate limit" in str(refused).lower():
            raise Transient("Canvas is throttling this token (403 Rate Limit Exceeded)") from None
        raise LmsError(messages.PUSH_FORBIDDEN.format(lms="Canvas")) from None
    except canvas.CanvasException as failure:
        if re.search(r"status code 5\d\d", str(failure)):
            raise Transient(f"Canvas answered {str(failure).rsplit(' ', 1)[-1]}") from None
        raise LmsError(f"Canvas refused a request: {scrub(str(failure), connection.token)[:300]}") from None
    except (requests.ConnectionError, requests.Timeout) as failure:
        raise Transient(f"the connection to Canvas was lost ({type(failure).__name__})") from None
