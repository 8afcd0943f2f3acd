"""Grades and feedback into a live course: `autograder push canvas|moodle RESULTS ...`.

A platform module provides `connect(Connection) -> Gradebook`: the assignment it grades, the course's students,
their current grades, and a way to post. Everything else is here and the same for every platform:
- **matching**: each result's student (from intake's identities, a roster) must be exactly one person of the
  course, by user id, SIS id, login or e-mail; one who matches no one, or two people, is listed and never posted;
- **the plan**, read from the gradebook before any write: new, changed (old -> new), unchanged, left alone (a
  person changed the grade in the LMS after our last push; kept unless --overwrite-changed);
- **the journal** `push-<platform>-<course>-<assignment>.jsonl` in the results folder: one line per post the LMS
  acknowledged, written as it is; with the marker each comment carries, a rerun after any fault posts only the
  rest and nothing twice;
- **retries**: throttling, 5xx and dropped connections are retried a bounded number of times, then the push stops
  with what is left to do (rerun the same command);
- **the token** comes from the environment or a prompt, never an argument, and is scrubbed from every message;
  only HTTPS, or loopback for tests.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from autograder.lms.export import GradeRow, num
from autograder.lms.identity import Identity, LmsError
from autograder.results import SubmissionResult

T = TypeVar("T")
TOKEN_ENV = {"canvas": "AUTOGRADER_CANVAS_TOKEN", "moodle": "AUTOGRADER_MOODLE_TOKEN"}
MARKER = re.compile(r"\[autograder ([0-9a-f]{12})\]")
ATTEMPTS = 6  # tries of one request before the push stops (the journal keeps what was done)


@dataclass(frozen=True)
class Connection:
    url: str
    token: str = field(repr=False)
    course: str
    assignment: str
    retry_wait: float = 1.0  # seconds before the first retry, doubled at each
    bulk_from: int = 50  # Canvas: from this many posts on, scores and comments go in bulk updates


@dataclass(frozen=True)
class Person:
    user_id: str
    name: str = ""
    sis_id: str = ""
    login: str = ""
    email: str = ""


@dataclass(frozen=True)
class Current:
    score: float | None  # None: not graded in the LMS
    markers: frozenset[str] = frozenset()  # the markers of our comments it already holds (Canvas)


@dataclass(frozen=True)
class Target:
    title: str
    points_possible: float
    kind: str = "points"  # Moodle: "scale" or "none" (not gradable in points)


@dataclass(frozen=True)
class Post:
    key: str
    user_id: str
    name: str
    score: float
    comment: str
    marker: str
    page: Path | None = None  # the feedback page to attach (Canvas), if asked


class Gradebook(Protocol):
    def target(self) -> Target: ...

    def people(self) -> list[Person]: ...

    def current(self) -> dict[str, Current]: ...

    def post(self, posts: Sequence[Post], acknowledged: Callable[[Post], None]) -> None:
        """Post each; call `acknowledged` with each once the LMS has it."""
        ...


class Transient(Exception):
    """A failure worth retrying: throttling, a 5xx, a dropped connection. `wait`: what the LMS asked for."""

    def __init__(self, why: str, wait: float | None = None):
        super().__init__(why)
        self.wait = wait


def retrying(
    call: Callable[[], T], what: str, connection: Connection, sleep: Callable[[float], None] = time.sleep
) -> T:
    """call(), retried on Transient with growing waits; after ATTEMPTS, an LmsError saying what failed."""
    for attempt in range(ATTEMPTS):
        try:
            return call()
        except Transient as failure:
            if attempt == ATTEMPTS - 1:
                raise LmsError(f"{what}: {failure} ({ATTEMPTS} tries); nothing after it was posted") from None
            sleep(failure.wait if failure.wait is not None else connection.retry_wait * 2**attempt)
    raise AssertionError("unreachable")


# -- safety -------------------------------------------------------------------------------------------------------
def checked_url(url: str) -> str:
    """The LMS's base URL: HTTPS, or HTTP on loopback only (a test's stand-in server)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url.rstrip("/")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme == "http" and loopback:
        return url.rstrip("/")
    raise LmsError(f"{url}: the LMS's address must start with https:// (grades and a token travel over it)")


def read_token(platform: str, prompt: Callable[[str], str] | None) -> str:
    """The API token from AUTOGRADER_<PLATFORM>_TOKEN, else asked for without echo (on a terminal)."""
    variable = TOKEN_ENV[platform]
    token = os.environ.get(variable, "").strip()
    if not token and prompt is not None:
        token = prompt(f"{platform.capitalize()} API token (not shown): ").strip()
    if not token:
        raise LmsError(f"no API token: set {variable} (a token is never taken from the command line)")
    return token


def scrub(text: str, token: str) -> str:
    return text.replace(token, "[token]") if token else text


# -- matching and the plan ------------------------------------------------------------------------------------------
IDS = (("user_id", "user_id"), ("sis_id", "sis_id"), ("login", "login"), ("email", "email"))


def match(identity: Identity, people: Sequence[Person]) -> list[Person]:
    """The people of the course that the identity names by any id it has (e-mail without case)."""
    found = {}
    for mine, theirs in IDS:
        value = getattr(identity, mine).strip()
        if not value:
            continue
        for person in people:
            other = getattr(person, theirs)
            if other and (other.lower() == value.lower() if mine == "email" else other == value):
                found[person.user_id] = person
    return list(found.values())


def feedback_comment(result: SubmissionResult, title: str) -> str:
    """Plain text: the score, each exercise's points, and for each exercise that lost points the first failed
    check's message (what the feedback page shows first)."""
    lines = [f"{title}: {num(result.score)}/{num(result.max_score)} (graded by the autograder)"]
    for exercise in result.exercises:
        lines.append(f"- {exercise.id}: {num(exercise.score)}/{num(exercise.max_score)}")
        if exercise.score < exercise.max_score:
            failed = next((t for t in exercise.tests if not t.passed and t.counts and t.message), None)
            if failed:
                lines.extend("    " + line for line in failed.message.strip().splitlines())
    return "\n".join(lines)


def marker_of(assignment: str, user_id: str, score: float, comment: str) -> str:
    return hashlib.sha256(f"{assignment}\0{user_id}\0{score!r}\0{comment}".encode()).hexdigest()[:12]


ACTIONS = ("new", "changed", "unchanged", "left alone", "not matched", "matches two people")


@dataclass(frozen=True)
class Line:
    key: str
    name: str
    action: str  # one of ACTIONS
    old: float | None = None
    new: float | None = None
    why: str = ""
    post: Post | None = None


def plan(rows: Iterable[GradeRow], people: Sequence[Person], current: dict[str, Current], journal: dict[str, dict],
         title: str, pages: Path | None = None, overwrite: bool = False) -> list[Line]:  # fmt: skip
    lines = []
    for row in rows:
        identity, result = row.identity, row.result
        who = identity.name or identity.key
        if result is None:
            continue  # no submission: the LMS's own "missing" stays as it is
        found = match(identity, people)
        if not found:
            lines.append(Line(identity.key, who, "not matched", why="no student of the course has its ids"))
            continue
        if len(found) > 1:
            names = ", ".join(f"{p.name or p.user_id} ({p.user_id})" for p in found)
            lines.append(Line(identity.key, who, "matches two people", why=names))
            continue
        person = found[0]
        comment = feedback_comment(result, title)
        marker = marker_of(result.assignment, person.user_id, result.score, comment)
        page = pages / f"{identity.key}.html" if pages else None
        post = Post(identity.key, person.user_id, person.name or who, result.score,
                    f"{comment}\n[autograder {marker}]", marker, page)  # fmt: skip
        now = current.get(person.user_id, Current(None))
        last = journal.get(person.user_id)
        ours = marker in now.markers or (last is not None and last["marker"] == marker)
        if ours and now.score is not None and abs(now.score - result.score) < 1e-9:
            lines.append(Line(identity.key, post.name, "unchanged", now.score, result.score))
        elif last is not None and now.score is not None and abs(now.score - last["score"]) > 1e-9 and not overwrite:
            why = f"changed in the LMS after the last push ({num(last['score'])} -> {num(now.score)})"
            lines.append(Line(identity.key, post.name, "left alone", now.score, result.score, why))
        elif now.score is None:
            lines.append(Line(identity.key, post.name, "new", None, result.score, post=post))
        else:
            lines.append(Line(identity.key, post.name, "changed", now.score, result.score, post=post))
    return lines


# -- the journal ----------------------------------------------------------------------------------------------------
class Journal:
    """Posts the LMS acknowledged, one JSON line each, appended and flushed to disk as they come."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> dict[str, dict]:
        last: dict[str, dict] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    last[str(entry["user_id"])] = entry
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a killed push: that post is re-checked against the LMS
        return last

    def record(self, post: Post) -> None:
        entry = {"user_id": post.user_id, "key": post.key, "score": post.score, "marker": post.marker,
                 "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(entry) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)


def journal_path(results: Path, platform: str, connection: Connection) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{connection.course}-{connection.assignment}")
    return results / f"push-{platform}-{safe}.jsonl"


# -- the push -------------------------------------------------------------------------------------------------------
def prepare(gradebook: Gradebook, lms: str, rows: Sequence[GradeRow], journal: Journal, pages: Path | None = None,
            overwrite_changed: bool = False) -> tuple[Target, list[Line]]:  # fmt: skip
    """Read the assignment and the gradebook; the plan. Everything that can refuse the push does so here, before
    any write."""
    from autograder import messages

    target = gradebook.target()
    max_score = max(r.result.max_score for r in rows if r.result is not None)
    if target.kind != "points":
        raise LmsError(messages.PUSH_MOODLE_SCALE.format(name=target.title, max_score=max_score))
    if abs(target.points_possible - max_score) > 1e-9:
        raise LmsError(messages.PUSH_POINTS_MISMATCH.format(lms=lms, name=target.title, points=target.points_possible,
                                                            max_score=max_score))  # fmt: skip
    if pages is not None:
        absent = [r.identity.key for r in rows if not (pages / f"{r.identity.key}.html").is_file()]
        if absent:
            names = ", ".join(absent[:5])
            raise LmsError(f"{pages}: no feedback page for {names} (write them with `autograder feedback`)")
    lines = plan(rows, gradebook.people(), gradebook.current(), journal.read(), target.title, pages, overwrite_changed)
    return target, lines


def execute(gradebook: Gradebook, lines: Sequence[Line], journal: Journal, advance: Callable[[Post], None]) -> int:
    """Post what the plan says; each acknowledged post is journalled before the next. Returns how many."""
    posts = [line.post for line in lines if line.post is not None]
    done = 0

    def acknowledged(post: Post) -> None:
        nonlocal done
        journal.record(post)
        done += 1
        advance(post)

    gradebook.post(posts, acknowledged)
    return done


def summary(lines: Sequence[Line], posted: int) -> str:
    counts = {action: sum(line.action == action for line in lines) for action in ACTIONS[2:]}
    return ", ".join([f"{posted} posted"] + [f"{n} {action}" for action, n in counts.items() if n])
