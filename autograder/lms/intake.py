"""Intake: an LMS's submissions download to a folder of one gradable file per student and `identities.json`.

Which files belong to whom is each platform's (see platform.py: canvas.py, moodle.py, gradescope.py); taking
them in safely is this module's.

What a class hands in can be a zip bomb (a member that expands a thousandfold): sizes are checked as the zip
declares them before anything is extracted, and again while reading, a chunk at a time, as a zip can lie.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
import zlib
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import IO

from autograder import messages
from autograder.lms.identity import Identity, LmsError, choose_file, with_person, write_identities
from autograder.lms.platform import platform
from autograder.lms.roster import RosterIndex, load_roster
from autograder.results import temporary_beside

MIB = 2**20
DEFAULT_MAX_FILE_MB = 100  # one student's file, expanded: as large as the grader reads a notebook
# (submission.MAX_SUBMISSION_BYTES): a larger one taken in would only be refused when graded
DEFAULT_MAX_TOTAL_MB = 2048  # all the files one intake writes: a class of 400 at 5 MiB each, four times over
CHUNK = 256 * 1024  # a member is read and written this much at a time: memory stays small whatever it expands to
# No limit on the compression ratio: the limits above already bound what a member can cost, and an honest
# notebook can compress a thousandfold too (the printed outputs of a loop, a tensor of zeros).
# Reading a member can fail on a damaged or crafted zip: a bad CRC or header, a truncated or invalid stream
# (bz2 says OSError), encryption (RuntimeError), a compression zipfile lacks (NotImplementedError).
UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError)


@dataclass
class Student:
    """One submitter in a download: who, and their files as (name the student gave it, member in the zip),
    preferred first."""

    identity: Identity
    files: list[tuple[str, str]] = field(default_factory=list)
    order: tuple[int, ...] = ()  # Gradescope: the later of two submissions by one student counts
    file_ids: dict[str, str] = field(default_factory=dict)  # Canvas: file name -> attachment id


@dataclass(frozen=True)
class Limits:
    """What intake takes out of `download`, in bytes: any one file (`file`), and all it writes (`total`)."""

    download: Path
    file: int = DEFAULT_MAX_FILE_MB * MIB
    total: int = DEFAULT_MAX_TOTAL_MB * MIB


class _TooBig(Exception):
    """A member expanded past the bytes it was allowed, whatever the zip declares."""


class _Unreadable(Exception):
    """A member zipfile cannot read: the problem, in words."""


def intake(
    kind: str,
    download: Path,
    out: Path,
    roster: Path | None = None,
    prefer: str = "",
    *,
    max_file_mb: int = DEFAULT_MAX_FILE_MB,
    max_total_mb: int = DEFAULT_MAX_TOTAL_MB,
    report: Callable[[str, str], None] | None = None,
) -> list[Identity]:
    """Unpack `download` into `out/` (one file per student, named by `Identity.key`) and write identities.json.
    `prefer`: the assignment's name, to choose `mlp.ipynb` over another notebook. A student whose file expands
    past `max_file_mb` (or cannot be read) is not taken in, counted as not submitted, and told to `report` (key,
    line); files that together expand past `max_total_mb` stop intake with nothing written to `out`."""
    parse = platform(kind).students
    archive = _open(download)
    index = RosterIndex(load_roster(roster)) if roster else None
    limits = Limits(download, max_file_mb * MIB, max_total_mb * MIB)
    say = report or (lambda key, line: None)
    with archive:
        picked = [_pick(archive, student, prefer, limits, say) for student in parse(archive, limits)]
        declared = sum(info.file_size for _, info in picked if info is not None)
        if declared > limits.total:  # before anything is extracted
            raise LmsError(messages.INTAKE_TOTAL_TOO_BIG.format(download=download, size=_size(declared),
                           limit=_size(limits.total), out=out, need=_need_mb(declared)))  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        identities = _unpack(archive, picked, out, limits, say)
    identities = [_with_roster(identity, index) for identity in identities]
    write_identities(out, identities)
    return identities


def _open(download: Path) -> zipfile.ZipFile:
    if not download.is_file():
        raise LmsError(f"{download}: no such file")
    try:
        return zipfile.ZipFile(download)
    except (zipfile.BadZipFile, OSError) as exc:
        raise LmsError(f"{download}: not a readable zip archive ({exc})") from None


def _pick(
    archive: zipfile.ZipFile, student: Student, prefer: str, limits: Limits, say: Callable[[str, str], None]
) -> tuple[Identity, zipfile.ZipInfo | None]:
    """The student's identity and the member to take in: None where there is none, or it declares itself too big."""
    members = dict(student.files)
    chosen, skipped = choose_file([name for name, _ in student.files], prefer)
    identity = replace(student.identity, file=chosen or "", skipped=skipped)
    identity = replace(identity, attachment_id=student.file_ids.get(chosen or "", ""))
    if chosen is None:
        return identity, None
    info = archive.getinfo(members[chosen])
    identity = replace(identity, submitted_at=identity.submitted_at or _iso(info.date_time))
    if info.file_size > limits.file:
        return _not_taken(identity, _too_big(info, limits), say), None
    return identity, info


def _not_taken(identity: Identity, problem: str, say: Callable[[str, str], None]) -> Identity:
    """A student whose file intake refused: said why, and counted as not submitted, the file among the skipped."""
    say(identity.key, messages.INTAKE_NOT_TAKEN.format(key=identity.key, problem=problem))
    return replace(identity, file="", skipped=(identity.file, *identity.skipped), attachment_id="")


def _unpack(
    archive: zipfile.ZipFile,
    picked: list[tuple[Identity, zipfile.ZipInfo | None]],
    out: Path,
    limits: Limits,
    say: Callable[[str, str], None],
) -> list[Identity]:
    """Write each student's file under a temporary name, and rename them all once every one is written: intake
    stopped halfway (the total limit, a full disk, ^C) leaves no file in `out`, whole or truncated."""
    identities, staged, written = [], [], 0
    try:
        for identity, info in picked:
            if info is None:
                identities.append(identity)
                continue
            path = out / f"{identity.key}{PurePosixPath(identity.file).suffix.lower()}"
            try:
                tmp, size = _stage(archive, info, path, min(limits.file, limits.total - written))
            except _TooBig:
                if limits.total - written < limits.file:  # the download's total, not this file, ran out
                    raise LmsError(messages.INTAKE_TOTAL_LIES.format(download=limits.download,
                                   limit=_size(limits.total), out=out)) from None  # fmt: skip
                identities.append(_not_taken(identity, _lies(info, limits), say))
                continue
            except _Unreadable as exc:
                problem = messages.INTAKE_UNREADABLE.format(download=limits.download, member=info.filename,
                                                            problem=exc)  # fmt: skip
                identities.append(_not_taken(identity, problem, say))
                continue
            staged.append((tmp, path))
            written += size
            identities.append(identity)
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    return identities


def _too_big(info: zipfile.ZipInfo, limits: Limits) -> str:
    size, limit, need = _size(info.file_size), _size(limits.file), _need_mb(info.file_size)
    return messages.INTAKE_TOO_BIG.format(download=limits.download, member=info.filename, size=size, limit=limit,
                                          need=need)  # fmt: skip


def _lies(info: zipfile.ZipInfo, limits: Limits) -> str:
    return messages.INTAKE_LIES.format(download=limits.download, member=info.filename, limit=_size(limits.file),
                                       declared=_size(info.file_size))  # fmt: skip


def _stage(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, limit: int) -> tuple[Path, int]:
    """`info` copied to a temporary file beside `path` (with the mode a plain write of `path` would give it),
    and its size; removed again if the copy fails."""
    fd, tmp = temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as target:
            size = _copy(archive, info, target, limit)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp), size


def _copy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: IO[bytes], limit: int) -> int:
    """Copy a member a chunk at a time, never more than `limit` bytes (raises _TooBig): a zip can declare a
    small size and hold a large one. Returns the bytes copied."""
    copied = 0
    with contextlib.closing(_chunks(archive, info)) as chunks:
        for chunk in chunks:
            copied += len(chunk)
            if copied > limit:
                raise _TooBig
            target.write(chunk)  # outside _chunks: a full disk is the grader's error, not a damaged member
    return copied


def _chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Generator[bytes, None, None]:
    try:
        with archive.open(info) as member:
            while chunk := member.read(CHUNK):
                yield chunk
    except UNREADABLE as exc:
        raise _Unreadable(f"{type(exc).__name__}: {exc}") from None


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits) -> bytes:
    """A member the parser itself needs (Gradescope's metadata), under the same limit as a student's file; a
    download without it cannot be taken in at all, so a problem stops intake."""
    if info.file_size > limits.file:
        raise LmsError(_too_big(info, limits))
    data = bytearray()
    try:
        with contextlib.closing(_chunks(archive, info)) as chunks:
            for chunk in chunks:
                data += chunk
                if len(data) > limits.file:
                    raise LmsError(_lies(info, limits))
    except _Unreadable as exc:
        raise LmsError(messages.INTAKE_UNREADABLE.format(download=limits.download, member=info.filename,
                                                         problem=exc)) from None  # fmt: skip
    return bytes(data)


def _size(n: int) -> str:
    return f"{n / MIB:,.1f} MiB" if n >= MIB else f"{n / 1024:,.1f} KiB"


def _need_mb(n: int) -> int:
    """The whole MiB a limit needs to take `n` bytes in."""
    return -(-n // MIB)


def _with_roster(identity: Identity, index: RosterIndex | None) -> Identity:
    people = index.find(identity) if index else []
    return with_person(identity, people[0]) if len(people) == 1 else identity


def _iso(date_time: tuple[int, ...]) -> str:
    return "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}".format(*date_time)


def files_of(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """A download's files, less folders and macOS's resource forks."""
    return [i for i in archive.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]


def not_a_download(download: Path, info: zipfile.ZipInfo, lms: str, shape: str, what: str) -> LmsError:
    """A member named as no download of `lms` names its files: the file and the shape expected."""
    return LmsError(messages.NOT_A_DOWNLOAD.format(download=download, member=info.filename, lms=lms, shape=shape,
                                                   what=what))  # fmt: skip
