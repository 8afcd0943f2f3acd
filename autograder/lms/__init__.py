"""Learning-management systems: submissions in (Canvas and Gradescope downloads), grades out (Canvas, Moodle
and Gradescope formats).

Intake turns a download into a folder of one notebook per student (the latest submission counts) and
`identities.json`, which maps each notebook's file stem to the student: grade that folder as usual, then export
the results folder with the identities (and optionally a roster, which also supplies the students who did not
submit).
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from autograder.results import SubmissionResult, atomic_write

IDENTITIES_FILE = "identities.json"
NOTEBOOK_SUFFIXES = (".ipynb", ".py")
# Canvas "Download Submissions": <login>[_late]_<user id>_<submission id>_<original name>; a resubmitted file's
# original name may carry "-1", "-2".
CANVAS_NAME = re.compile(r"^(?P<login>.+?)(?P<late>_late|_LATE)?_(?P<user_id>\d+)_(?P<submission_id>\d+)_(?P<file>.+)$")


class LmsError(ValueError):
    """A download, roster or results folder that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Identity:
    """Who a submission belongs to. Fields an LMS does not provide are empty."""

    key: str  # the notebook's file stem after intake, and its results' stem
    name: str = ""
    user_id: str = ""  # Canvas user id / Gradescope user id
    sis_id: str = ""
    login: str = ""
    email: str = ""
    section: str = ""
    late: bool = False
    submitted_at: str = ""
    submission_id: str = ""


# -- intake ------------------------------------------------------------------------------------------------------
def intake(kind: str, download: Path, out: Path, roster: Path | None = None) -> list[Identity]:
    """Unpack `download` (a Canvas or Gradescope zip) into `out/` and write `out/identities.json`."""
    if not download.is_file():
        raise LmsError(f"{download}: no such file")
    try:
        archive = zipfile.ZipFile(download)
    except (zipfile.BadZipFile, OSError) as exc:
        raise LmsError(f"{download}: not a readable zip archive ({exc})") from None
    with archive:
        if kind == "canvas":
            found = _canvas_entries(archive, download)
        elif kind == "gradescope":
            found = _gradescope_entries(archive, download)
        else:
            raise LmsError(f"unknown LMS {kind!r}: use canvas or gradescope")
        people = _by_user(load_roster(roster)) if roster else {}
        identities = []
        out.mkdir(parents=True, exist_ok=True)
        for identity, member in _latest_per_student(found):
            keys = (identity.user_id, identity.email.lower(), identity.sis_id, identity.login)
            known = next((people[k] for k in keys if k and k in people), None)
            if known is not None:  # the roster has the better names, emails and SIS ids
                identity = replace(
                    identity, **{k: v for k, v in asdict(known).items() if v and k not in ("key", "late")}
                )
            suffix = Path(member).suffix.lower()
            (out / f"{identity.key}{suffix}").write_bytes(archive.read(member))
            identities.append(identity)
    atomic_write(out / IDENTITIES_FILE, json.dumps([asdict(i) for i in identities], indent=2) + "\n")
    return identities


def _canvas_entries(archive: zipfile.ZipFile, download: Path) -> list[tuple[Identity, str, tuple[int, ...]]]:
    found: list[tuple[Identity, str, tuple[int, ...]]] = []
    for info in archive.infolist():
        name = Path(info.filename).name
        if info.is_dir() or not name.lower().endswith(NOTEBOOK_SUFFIXES) or name.startswith("."):
            continue
        match = CANVAS_NAME.match(name)
        if match is None:
            raise LmsError(
                f"{download}: {info.filename!r} is not named as Canvas names submissions "
                "(<name>_<user id>_<submission id>_<file>); is this a Canvas 'Download Submissions' zip?"
            )
        identity = Identity(
            key=f"{match['login']}_{match['user_id']}",
            login=match["login"],
            user_id=match["user_id"],
            submission_id=match["submission_id"],
            late=match["late"] is not None,
            submitted_at="{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}".format(*info.date_time),
        )
        found.append((identity, info.filename, (int(match["submission_id"]), *info.date_time)))
    return found


def _gradescope_entries(archive: zipfile.ZipFile, download: Path) -> list[tuple[Identity, str, tuple[int, ...]]]:
    import yaml  # type: ignore[import-untyped]

    names = archive.namelist()
    meta_name = next((n for n in names if Path(n).name == "submission_metadata.yml"), None)
    if meta_name is None:
        raise LmsError(f"{download}: no submission_metadata.yml; is this a Gradescope 'Export Submissions' zip?")
    try:
        metadata = yaml.safe_load(archive.read(meta_name)) or {}
    except yaml.YAMLError as exc:
        raise LmsError(f"{download}: {meta_name} is not valid YAML ({str(exc).splitlines()[0]})") from None
    root = str(Path(meta_name).parent)
    found = []
    for folder, info in metadata.items():
        submitters = info.get(":submitters") or info.get("submitters") or [{}]
        member = next(
            (
                n
                for n in names
                if n.startswith(f"{root}/{folder}/".lstrip("./")) and n.lower().endswith(NOTEBOOK_SUFFIXES)
            ),
            None,
        )
        if member is None:
            continue  # a submission without a notebook: the student counts as not having submitted
        created = str(info.get(":created_at") or info.get("created_at") or "")
        for person in submitters:  # a group submission counts for every member
            sid = str(person.get(":sid") or person.get("sid") or "")
            email = str(person.get(":email") or person.get("email") or "")
            key = _safe_key(sid or email.split("@")[0] or str(folder))
            identity = Identity(
                key=key,
                name=str(person.get(":name") or person.get("name") or ""),
                sis_id=sid,
                email=email,
                submitted_at=created,
                submission_id=str(folder).removeprefix("submission_"),
            )
            found.append((identity, member, (0, *_date_tuple(created))))
    return found


def _date_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"\d+", text)[:6])


def _safe_key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", text).strip("._") or "student"


def _latest_per_student(found: Iterable[tuple[Identity, str, tuple[int, ...]]]) -> list[tuple[Identity, str]]:
    """One submission per student: the latest (highest submission id, then the latest date)."""
    best: dict[str, tuple[tuple[int, ...], Identity, str]] = {}
    for identity, member, order in found:
        if identity.key not in best or order > best[identity.key][0]:
            best[identity.key] = (order, identity, member)
    return [(identity, member) for _, identity, member in sorted(best.values(), key=lambda v: v[1].key)]


# -- rosters -----------------------------------------------------------------------------------------------------
_ROSTER_COLUMNS = {
    "name": ("name", "student", "full name", "student name"),
    "user_id": ("id", "user id", "canvas user id", "user_id"),
    "sis_id": ("sis user id", "sis id", "sid", "student id", "sis_user_id", "id number"),
    "login": ("sis login id", "login", "login id", "username", "user name"),
    "email": ("email", "email address", "e-mail"),
    "section": ("section", "group"),
}


def load_roster(path: Path) -> list[Identity]:
    """A roster CSV with any of: name, (Canvas) id, SIS user id, login/username, email, section."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LmsError(f"{path}: cannot read the roster ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    headers = {h.strip().lower(): h for h in reader.fieldnames or []}
    columns = {
        field: next((headers[a] for a in aliases if a in headers), None) for field, aliases in _ROSTER_COLUMNS.items()
    }
    if not any(columns[f] for f in ("user_id", "sis_id", "login", "email")):
        raise LmsError(
            f"{path}: the roster needs a column that identifies students: one of id, sis user id, login, email "
            f"(found: {', '.join(reader.fieldnames or []) or 'no header'})"
        )
    people = []
    for number, row in enumerate(reader, start=2):
        values = {f: (row.get(c) or "").strip() for f, c in columns.items() if c}
        if not any(values.values()) or values.get("name", "").lower() == "points possible":
            continue
        key = values.get("login") or values.get("sis_id") or values.get("user_id") or values.get("email", "")
        if not key:
            raise LmsError(f"{path}, line {number}: a student with no id, login or email")
        people.append(Identity(_safe_key(key), **values))  # type: ignore[arg-type]
    return people


def _by_user(people: Sequence[Identity]) -> dict[str, Identity]:
    index: dict[str, Identity] = {}
    for person in people:
        for value in (person.user_id, person.email.lower(), person.sis_id, person.login):
            if value:
                index[value] = person
    return index


def load_identities(path: Path) -> list[Identity]:
    try:
        return [Identity(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError) as exc:
        raise LmsError(f"{path}: not an identities file written by `autograder intake` ({exc})") from None


# -- results ----------------------------------------------------------------------------------------------------
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
    result: SubmissionResult | None  # None: on the roster, no submission


def grade_rows(
    results: dict[str, SubmissionResult], identities: Sequence[Identity], roster: Sequence[Identity] = ()
) -> list[GradeRow]:
    """Match results to students; roster students without a submission come last with no result."""
    by_key = {i.key: i for i in identities}
    rows = [GradeRow(by_key.get(stem) or Identity(key=stem, login=stem), result) for stem, result in results.items()]
    seen = {value for row in rows for value in _ids(row.identity)}
    for person in roster:
        if not seen.intersection(_ids(person)):
            rows.append(GradeRow(person, None))
    return rows


def _ids(identity: Identity) -> set[str]:
    return {v for v in (identity.user_id, identity.sis_id, identity.login, identity.email.lower()) if v}


# -- exports ----------------------------------------------------------------------------------------------------
def canvas_csv(rows: Sequence[GradeRow], column: str, max_score: float, missing: str = "") -> str:
    """A Canvas gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, then the assignment column
    (named as Canvas exports it, e.g. "Lab 3 (12345)"), with the "Points Possible" row Canvas writes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column])
    writer.writerow(["    Points Possible", "", "", "", "", _num(max_score)])
    for row in rows:
        i = row.identity
        if not (i.user_id or i.sis_id or i.login):
            raise LmsError(f"{i.key}: Canvas needs a user id, SIS user id or login for every student")
        score = _num(row.result.score) if row.result else missing
        writer.writerow([i.name or i.login, i.user_id, i.sis_id, i.login, i.section, score])
    return buffer.getvalue()


def moodle_csv(rows: Sequence[GradeRow], column: str, key: str = "email", missing: str = "") -> str:
    """A Moodle grade import (CSV): the identifying column (Email address or Username), the grade column and a
    feedback column, to be mapped on Moodle's import page."""
    header = {"email": "Email address", "username": "Username"}.get(key)
    if header is None:
        raise LmsError(f"moodle: key {key!r} must be email or username")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([header, column, "Feedback"])
    for row in rows:
        ident = row.identity.email if key == "email" else (row.identity.login or row.identity.sis_id)
        if not ident:
            raise LmsError(f"{row.identity.key}: no {key} for this student; pass a roster with a {key} column")
        if row.result is None:
            writer.writerow([ident, missing, "No submission." if missing else ""])
            continue
        writer.writerow([ident, _num(row.result.score), summary_line(row.result)])
    return buffer.getvalue()


def gradescope_results(result: SubmissionResult) -> dict[str, Any]:
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
    output = "\n".join(result.errors)
    return {
        "score": result.score,
        "output": output or f"{summary_line(result)}",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def summary_line(result: SubmissionResult) -> str:
    parts = [f"{e.id} {_num(e.score)}/{_num(e.max_score)}" for e in result.exercises]
    return f"{_num(result.score)}/{_num(result.max_score)}: " + ", ".join(parts)


def _num(value: float) -> str:
    return f"{value:g}"
