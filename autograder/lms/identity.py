"""Who a submission belongs to, and which of a student's files is the one to grade."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath

from autograder.results import atomic_write

IDENTITIES_FILE = "identities.json"
GRADABLE_SUFFIXES = (".ipynb", ".py")


class LmsError(ValueError):
    """A download, roster or results folder that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Identity:
    """Who a submission belongs to. Fields an LMS does not provide are empty."""

    key: str  # the notebook's file stem after intake, and its results' stem
    name: str = ""
    user_id: str = ""  # Canvas user id
    sis_id: str = ""  # Canvas SIS user id, Moodle ID number, Gradescope SID
    login: str = ""  # Canvas SIS login id, Moodle username
    email: str = ""
    section: str = ""
    group: str = ""  # the group whose one submission counts for this student
    late: bool = False
    submitted_at: str = ""
    submission_id: str = ""  # Gradescope's submission id
    attachment_id: str = ""  # Canvas: the id of the file graded (its downloads carry no submission id)
    anonymous_id: str = ""  # Canvas anonymous grading: the only id its download gives
    participant_id: str = ""  # Moodle: the assignment's participant number (not the user id)
    name_slug: str = ""  # Canvas: the name as its file names spell it ("jonesbob")
    file: str = ""  # the file graded, as the student named it; empty: nothing gradable was submitted
    skipped: tuple[str, ...] = ()  # the student's other files, not graded


PERSON_FIELDS = ("name", "user_id", "sis_id", "login", "email", "section", "group", "participant_id")


def with_person(identity: Identity, person: Identity) -> Identity:
    """`identity` completed with what a roster knows about the same student (the roster's name wins)."""
    known = {f: getattr(person, f) for f in PERSON_FIELDS if getattr(person, f)}
    return Identity(**{**asdict(identity), **known, "skipped": identity.skipped})


def choose_file(names: Sequence[str], prefer: str = "") -> tuple[str | None, tuple[str, ...]]:
    """The one file to grade among a student's files, given in the LMS's order (latest first where it has one):
    a notebook before a .py file, then one named after the assignment (`prefer`); editor copies
    (`.ipynb_checkpoints/`, `__MACOSX/`, dot-files) never. Returns it, or None, and the files left out."""
    usable = [n for n in names if _gradable(n)]
    ranked = sorted(usable, key=lambda n: (_suffix(n) != ".ipynb", bool(prefer) and _base(n) != prefer.lower()))
    chosen = ranked[0] if ranked else None
    return chosen, tuple(n for n in names if n != chosen)


def _gradable(name: str) -> bool:
    path = PurePosixPath(name)
    leftover = any(part.startswith((".", "__MACOSX")) for part in path.parts)
    return _suffix(name) in GRADABLE_SUFFIXES and not leftover and not path.stem.endswith("-checkpoint")


def _suffix(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


def _base(name: str) -> str:
    # Canvas and browsers number a re-uploaded file: mlp-1.ipynb, "mlp (1).ipynb"
    return re.sub(r"(-\d+| \(\d+\))$", "", PurePosixPath(name).stem).lower()


def safe_key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", text).strip("._") or "student"


def write_identities(out: Path, identities: Sequence[Identity]) -> Path:
    return atomic_write(out / IDENTITIES_FILE, json.dumps([asdict(i) for i in identities], indent=2) + "\n")


def load_identities(path: Path) -> list[Identity]:
    known = {f.name for f in fields(Identity)}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return [
            Identity(**{k: v for k, v in e.items() if k in known - {"skipped"}}, skipped=tuple(e.get("skipped", ())))
            for e in entries
        ]
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise LmsError(f"{path}: not an identities file written by `autograder intake` ({exc})") from None
