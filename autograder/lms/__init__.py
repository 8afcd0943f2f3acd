"""Learning-management systems: submissions in (Canvas, Moodle and Gradescope downloads), grades out (Canvas and
Moodle imports, Gradescope's results.json).

Intake turns a download into a folder of one gradable file per student and `identities.json`, which maps each
file's stem to the student: grade that folder as usual, then export the results folder with the identities and
a roster, which names each student, maps group submissions to their members and supplies the students who did
not submit. What is particular to one LMS is in its own module (canvas.py, moodle.py, gradescope.py), behind the
interface in platform.py; this package's other modules are shared by all of them.
"""

from __future__ import annotations

from autograder.lms.export import GradeRow, grade_rows, load_results, summary_line
from autograder.lms.identity import IDENTITIES_FILE, Identity, LmsError, choose_file, load_identities
from autograder.lms.intake import intake
from autograder.lms.platform import PLATFORMS, ExportRequest, Platform, platform
from autograder.lms.roster import RosterIndex, load_roster

__all__ = [
    "IDENTITIES_FILE",
    "PLATFORMS",
    "ExportRequest",
    "GradeRow",
    "Identity",
    "LmsError",
    "Platform",
    "RosterIndex",
    "choose_file",
    "grade_rows",
    "intake",
    "load_identities",
    "load_results",
    "load_roster",
    "platform",
    "summary_line",
]
