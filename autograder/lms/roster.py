"""Rosters (a Canvas gradebook or group-set export, Moodle's grade export, participants download or grading
worksheet, or any CSV like them) and matching a submitter to the roster's students."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from autograder import messages
from autograder.lms.identity import Identity, LmsError, safe_key

# Header aliases, first match wins. Canvas's group-set CSV calls the Canvas id canvas_user_id and the SIS id
# user_id; Moodle splits names into First name / Last name and calls the SIS id "ID number".
_ROSTER_COLUMNS = {
    "name": ("student", "name", "full name", "student name"),
    "first_name": ("first name", "firstname"),
    "last_name": ("last name", "surname", "lastname"),
    "user_id": ("canvas_user_id", "id", "user id", "canvas user id"),
    "sis_id": ("sis user id", "sis id", "sid", "student id", "id number", "idnumber", "user_id"),
    "login": ("sis login id", "login", "login id", "login_id", "username", "user name"),
    "email": ("email address", "email", "e-mail"),
    "section": ("section", "sections"),
    "group": ("group_name", "group name", "groups", "group"),
    "participant_id": ("identifier",),  # Moodle's grading worksheet: "Participant 123"
}
ID_KINDS = ("user_id", "sis_id", "login", "email", "participant_id")


def load_roster(path: Path) -> list[Identity]:
    """A roster CSV with any of: name (or first and last name), Canvas id, SIS id / ID number, login/username,
    email, section, group, Moodle worksheet identifier. Canvas's "Points Possible" row is skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LmsError(f"{path}: cannot read the roster ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    headers = {h.strip().lower(): h for h in reader.fieldnames or []}
    columns = {f: next((headers[a] for a in aliases if a in headers), None) for f, aliases in _ROSTER_COLUMNS.items()}
    if not any(columns[f] for f in ID_KINDS):
        raise LmsError(messages.ROSTER_NO_ID.format(path=path, found=", ".join(reader.fieldnames or []) or "none"))
    people = []
    for number, row in enumerate(reader, start=2):
        values = {f: (row.get(c) or "").strip() for f, c in columns.items() if c}
        first, last = values.pop("first_name", ""), values.pop("last_name", "")
        values["name"] = values.get("name") or f"{first} {last}".strip()
        values["participant_id"] = "".join(re.findall(r"\d+", values.get("participant_id", "")))
        if not any(values.values()) or values["name"].lower() == "points possible":
            continue
        key = next(
            (values.get(k) for k in ("login", "sis_id", "user_id", "email", "participant_id") if values.get(k)), ""
        )
        if not key:
            raise LmsError(f"{path}, line {number}: a student with no id, login or email")
        people.append(Identity(safe_key(key), **values))  # type: ignore[arg-type]
    return people


class RosterIndex:
    """Finds a submitter's roster entries by each kind of id on its own (a Canvas user id equal to another
    student's SIS id must not match), then by name, then as a group."""

    def __init__(self, people: Sequence[Identity]) -> None:
        self.people = list(people)
        self._by: dict[str, dict[str, list[Identity]]] = {kind: defaultdict(list) for kind in (*ID_KINDS, "name")}
        self._groups: dict[str, list[Identity]] = defaultdict(list)
        for person in self.people:
            for kind in self._by:
                if value := _norm(getattr(person, kind)):
                    self._by[kind][value].append(person)
            for group in _groups_of(person):
                self._groups[_norm(group)].append(person)

    def find(self, identity: Identity) -> list[Identity]:
        """The roster students a submission counts for: one, a group's members, or none."""
        for kind in ID_KINDS:
            hits: list[Identity] = (
                self._by[kind].get(_norm(getattr(identity, kind)), []) if getattr(identity, kind) else []
            )
            if kind == "participant_id" and identity.name:  # a team folder's group id is no participant id
                hits = [p for p in hits if not p.name or _norm(p.name) == _norm(identity.name)]
            if hits:
                return self._one(hits, identity, kind)
        if not identity.name:
            return []
        if named := self._by["name"].get(_norm(identity.name)) or self._by["name"].get(_swapped(identity.name)):
            return self._one(named, identity, "name")
        return self._group(identity.name)

    def _one(self, hits: list[Identity], identity: Identity, kind: str) -> list[Identity]:
        if len(hits) > 1:
            names = ", ".join(p.name or p.key for p in hits)
            raise LmsError(messages.ROSTER_AMBIGUOUS.format(key=identity.key, kind=kind, names=names))
        return hits

    def _group(self, name: str) -> list[Identity]:
        if members := self._groups.get(_norm(name)):
            return members
        # Moodle before 4.1 named a team's folder "<group>-<member's full name>"
        for cut in (m.start() for m in re.finditer("-", name)):
            if members := self._groups.get(_norm(name[:cut])):
                return members
        return []


def _groups_of(person: Identity) -> list[str]:
    # Moodle's participants download lists a student's groups as "Group A, Group B"
    return [g.strip() for g in person.group.split(",") if g.strip()] if person.group else []


def _norm(value: str) -> str:
    return " ".join(value.replace("_", " ").split()).casefold() if value else ""


def _swapped(name: str) -> str:
    # "Doe, Alice" (Canvas's sortable name) or a course whose full-name format is last name first
    if "," in name:
        last, _, first = name.partition(",")
        return _norm(f"{first} {last}")
    parts = name.split()
    return _norm(" ".join(parts[1:] + parts[:1])) if len(parts) > 1 else ""
