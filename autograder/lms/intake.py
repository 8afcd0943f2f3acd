"""Intake: an LMS's submissions download to a folder of one gradable file per student and `identities.json`.

The downloads, as the LMSs write them:
- Canvas "Download Submissions": a flat zip of `<name>[_LATE]_<user id>_<attachment id>_<file>` (name: the
  sortable name, lower case, punctuation removed), `[LATE_]anon_<anonymous id>_<attachment id>_<file>` under
  anonymous grading; only the current submission's files; a group assignment's one submission under the name of
  the student who submitted it.
- Moodle "Download all submissions": a folder per student `<Full Name>_<participant id>_assignsubmission_file`
  (a trailing `_` before Moodle 4.1), `Participant_<id>` under blind marking, `<group>_<group id>` (or
  `<group>-<Full Name>_<participant id>` before 4.1) for team submissions; or, with "download as folders" off,
  flat files `<prefix>_assignsubmission_file_<file>`.
- Gradescope "Export Submissions": `submission_<id>/` folders and `submission_metadata.yml`.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from autograder import messages
from autograder.lms.identity import Identity, LmsError, choose_file, safe_key, with_person, write_identities
from autograder.lms.roster import RosterIndex, load_roster

CANVAS_FILE = re.compile(
    r"^(?:(?P<slug>\w+?)_)??(?P<late>LATE_|late_)?(?:anon_(?P<anon>[A-Za-z0-9]+)|(?P<user_id>\d+))"
    r"_(?P<attachment_id>\d+)_(?P<file>.+)$"
)
CANVAS_TEXT = re.compile(r"^(?:\w+?_)??(?:LATE_|late_)?(?:anon_[A-Za-z0-9]+|\d+)_(?:text|link)\.html$")
MOODLE_FOLDER = re.compile(r"^(?P<who>.+?)(?:_(?P<id>\d+))?_assignsubmission_(?P<plugin>[a-z]+)_?$")
MOODLE_FLAT = re.compile(r"^(?P<who>.+?)(?:_(?P<id>\d+))?_assignsubmission_(?P<plugin>[a-z]+)_(?P<file>.+)$")
MOODLE_BLIND = "participant"


@dataclass
class Student:
    """One submitter in a download: who, and their files as (name the student gave it, member in the zip),
    preferred first."""

    identity: Identity
    files: list[tuple[str, str]] = field(default_factory=list)
    order: tuple[int, ...] = ()  # Gradescope: the later of two submissions by one student counts
    file_ids: dict[str, str] = field(default_factory=dict)  # Canvas: file name -> attachment id


def intake(kind: str, download: Path, out: Path, roster: Path | None = None, prefer: str = "") -> list[Identity]:
    """Unpack `download` into `out/` (one file per student, named by `Identity.key`) and write identities.json.
    `prefer`: the assignment's name, to choose `mlp.ipynb` over another notebook."""
    parse = PARSERS.get(kind)
    if parse is None:
        raise LmsError(f"unknown LMS {kind!r}: use one of {', '.join(PARSERS)}")
    archive = _open(download)
    index = RosterIndex(load_roster(roster)) if roster else None
    identities = []
    out.mkdir(parents=True, exist_ok=True)
    with archive:
        for student in parse(archive, download):
            identities.append(_unpack(archive, student, out, index, prefer))
    write_identities(out, identities)
    return identities


def _open(download: Path) -> zipfile.ZipFile:
    if not download.is_file():
        raise LmsError(f"{download}: no such file")
    try:
        return zipfile.ZipFile(download)
    except (zipfile.BadZipFile, OSError) as exc:
        raise LmsError(f"{download}: not a readable zip archive ({exc})") from None


def _unpack(archive: zipfile.ZipFile, student: Student, out: Path, index: RosterIndex | None, prefer: str) -> Identity:
    members = dict(student.files)
    chosen, skipped = choose_file([name for name, _ in student.files], prefer)
    identity = replace(student.identity, file=chosen or "", skipped=skipped)
    identity = replace(identity, attachment_id=student.file_ids.get(chosen or "", ""))
    if chosen is not None:
        info = archive.getinfo(members[chosen])
        identity = replace(identity, submitted_at=identity.submitted_at or _iso(info.date_time))
        (out / f"{identity.key}{PurePosixPath(chosen).suffix.lower()}").write_bytes(archive.read(info))
    people = index.find(identity) if index else []
    return with_person(identity, people[0]) if len(people) == 1 else identity


def _iso(date_time: tuple[int, ...]) -> str:
    return "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}".format(*date_time)


def _files(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    return [i for i in archive.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]


# -- Canvas -------------------------------------------------------------------------------------------------------
def canvas_students(archive: zipfile.ZipFile, download: Path) -> list[Student]:
    students: dict[str, Student] = {}
    for info in _files(archive):
        name = PurePosixPath(info.filename).name
        match = CANVAS_FILE.match(name)
        if match is None:
            if CANVAS_TEXT.match(name) or name.startswith("."):
                continue  # a text-entry or URL submission: nothing to grade
            shape = "<name>[_LATE]_<user id>_<file id>_<file>, or anon_<id>_<file id>_<file>"
            raise _not_a_download(download, info, "Canvas", shape, "'Download Submissions' zip")
        anon, user_id, slug = match["anon"] or "", match["user_id"] or "", match["slug"] or ""
        key = f"anon_{anon}" if anon else f"{slug}_{user_id}" if slug else user_id
        identity = Identity(
            key=safe_key(key),
            user_id=user_id,
            anonymous_id=anon,
            name_slug=slug,
            late=match["late"] is not None,
        )
        student = students.setdefault(identity.key, Student(identity))
        student.files.append((match["file"], info.filename))
        student.file_ids[match["file"]] = match["attachment_id"]
    for student in students.values():  # the latest upload first: a re-uploaded notebook has the larger file id
        student.files.sort(key=lambda f, ids=student.file_ids: -int(ids[f[0]]))  # type: ignore[misc]
    return sorted(students.values(), key=lambda s: s.identity.key)


def _not_a_download(download: Path, info: zipfile.ZipInfo, lms: str, shape: str, what: str) -> LmsError:
    """A member named as no download of `lms` names its files: the file and the shape expected."""
    return LmsError(messages.NOT_A_DOWNLOAD.format(download=download, member=info.filename, lms=lms, shape=shape,
                                                   what=what))  # fmt: skip


# -- Moodle -------------------------------------------------------------------------------------------------------
def moodle_students(archive: zipfile.ZipFile, download: Path) -> list[Student]:
    students: dict[str, Student] = {}
    for info in _files(archive):
        parts = PurePosixPath(info.filename).parts
        folder = MOODLE_FOLDER.match(parts[0]) if len(parts) > 1 else None
        flat = MOODLE_FLAT.match(parts[0]) if len(parts) == 1 else None
        match = folder or flat
        if match is None:
            shape = "<Full Name>_<participant id>_assignsubmission_file/<file>"
            raise _not_a_download(download, info, "Moodle", shape, "'Download all submissions' zip")
        who, number = match["who"], match["id"] or ""
        blind = who.casefold() == MOODLE_BLIND
        identity = Identity(
            key=safe_key(f"{who}_{number}" if number else who),
            name="" if blind else who,
            participant_id=number,
        )
        student = students.setdefault(identity.key, Student(identity))
        student.files.append(("/".join(parts[1:]) if folder else match["file"], info.filename))
    return sorted(students.values(), key=lambda s: s.identity.key)


# -- Gradescope ---------------------------------------------------------------------------------------------------
def gradescope_students(archive: zipfile.ZipFile, download: Path) -> list[Student]:
    import yaml  # type: ignore[import-untyped]

    names = archive.namelist()
    meta_name = next((n for n in names if PurePosixPath(n).name == "submission_metadata.yml"), None)
    if meta_name is None:
        raise LmsError(f"{download}: no submission_metadata.yml; is this a Gradescope 'Export Submissions' zip?")
    try:
        metadata = yaml.safe_load(archive.read(meta_name)) or {}
    except yaml.YAMLError as exc:
        raise LmsError(f"{download}: {meta_name} is not valid YAML ({str(exc).splitlines()[0]})") from None
    root = str(PurePosixPath(meta_name).parent).removeprefix(".")
    latest: dict[str, Student] = {}
    for folder, info in metadata.items():
        prefix = f"{root}/{folder}/".lstrip("/")
        files = [(n[len(prefix) :], n) for n in names if n.startswith(prefix) and not n.endswith("/")]
        created = str(_field(info, "created_at"))
        for person in _submitters(info):  # a group submission counts for every member
            sid, email = str(_field(person, "sid")), str(_field(person, "email"))
            identity = Identity(
                key=safe_key(sid or email.split("@")[0] or str(folder)),
                name=str(_field(person, "name")),
                sis_id=sid,
                email=email,
                submitted_at=created,
                submission_id=str(folder).removeprefix("submission_"),
            )
            student = Student(identity, files, tuple(int(v) for v in re.findall(r"\d+", created)[:6]))
            if identity.key not in latest or student.order > latest[identity.key].order:
                latest[identity.key] = student
    return sorted(latest.values(), key=lambda s: s.identity.key)


def _submitters(info: object) -> list[object]:
    people = _field(info, "submitters")
    return list(people) if isinstance(people, list) and people else [{}]


def _field(info: object, name: str) -> object:
    # Gradescope writes Ruby-style symbol keys (":sid"); accept plain ones too
    if not isinstance(info, dict):
        return ""
    return info.get(f":{name}") or info.get(name) or ""


PARSERS: dict[str, Callable[[zipfile.ZipFile, Path], list[Student]]] = {
    "canvas": canvas_students,
    "moodle": moodle_students,
    "gradescope": gradescope_students,
}
