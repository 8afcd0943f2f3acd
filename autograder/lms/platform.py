"""What a learning-management system provides to the grader, and the registry of those it knows.

A platform is a module of this package that has what `Platform` names: intake reads its download with
`students`, `autograder export` writes its grades with `export`. Adding one (Blackboard, Brightspace) is a module
beside canvas.py and one line in `PLATFORMS`; the command line takes its choices from there.
"""

from __future__ import annotations

import importlib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:  # the modules below import the results (and with them the grader's runner): only when used
    from autograder.lms.identity import Identity
    from autograder.lms.intake import Limits, Student
    from autograder.results import SubmissionResult

# name on the command line -> the module that implements `Platform` (imported when used, not by `--help`)
PLATFORMS = {
    "canvas": "autograder.lms.canvas",
    "moodle": "autograder.lms.moodle",
    "gradescope": "autograder.lms.gradescope",
}
# those whose module also has `connect(push.Connection) -> push.Gradebook`: `autograder push` posts to them
# (Gradescope takes scores only from its own autograder runs)
PUSHABLE = ("canvas", "moodle")


@dataclass(frozen=True)
class ExportRequest:
    """What `autograder export` asks of a platform: graded results by stem, who they belong to, and where to write."""

    results: dict[str, SubmissionResult]
    out: Path
    identities: Sequence[Identity] = ()
    roster: Sequence[Identity] = ()
    column: str = ""  # the gradebook column; empty: the assignment's name
    key: str = ""  # which identity matches students (a platform's choice, e.g. Moodle's email or username)
    missing: str | None = None  # the grade of students without a submission; None: the platform's default


class Platform(Protocol):
    title: str  # as its users write it: "Canvas"
    download: str  # what its submissions download is called there, for messages

    def students(self, archive: zipfile.ZipFile, limits: Limits) -> list[Student]:
        """Every submitter in a download, with their files, preferred first."""
        ...

    def export(self, request: ExportRequest) -> list[str]:
        """Write the grades as the platform imports them; the lines to tell the instructor."""
        ...


def platform(name: str) -> Platform:
    if name not in PLATFORMS:
        from autograder.lms.identity import LmsError

        raise LmsError(f"unknown LMS {name!r}: use one of {', '.join(PLATFORMS)}")
    return cast(Platform, importlib.import_module(PLATFORMS[name]))
