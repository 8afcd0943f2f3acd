"""Learning-management systems: submissions in (Canvas, Moodle and Gradescope downloads), grades out (Canvas and
Moodle imports, Gradescope's results.json).

Intake turns a download into a folder of one gradable file per student and `identities.json`, which maps each
file's stem to the student: grade that folder as usual, then export the results folder with the identities and
a roster, which names each student, maps group submissions to their members and supplies the students who did
not submit.
"""

from __future__ import annotations

from autograder.lms.export import (
    GradeRow,
    canvas_csv,
    grade_rows,
    gradescope_failure,
    gradescope_results,
    left_out,
    load_results,
    moodle_csv,
    moodle_worksheet,
    summary_line,
)
from autograder.lms.identity import IDENTITIES_FILE, Identity, LmsError, choose_file, load_identities
from autograder.lms.intake import intake
from autograder.lms.roster import RosterIndex, load_roster

__all__ = [
    "IDENTITIES_FILE",
    "GradeRow",
    "Identity",
    "LmsError",
    "RosterIndex",
    "canvas_csv",
    "choose_file",
    "grade_rows",
    "gradescope_failure",
    "gradescope_results",
    "intake",
    "left_out",
    "load_identities",
    "load_results",
    "load_roster",
    "moodle_csv",
    "moodle_worksheet",
    "summary_line",
]
