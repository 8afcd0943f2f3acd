"""The student's side of a bundle: what the student notebook's otter test cases call, and `check_notebook`, which
runs a bundle's public checks on a notebook file (`autograder check`).

A bundle is the wheel `autograder build` writes into `dist/<a>/student/`. Installed, its assignment folder is
`autograder_bundles/<a>/` on the Python path (public checks, the recording stub as reference, the recording);
`check_notebook` also takes the wheel itself, or the folder that holds it, without installing anything.
"""

from __future__ import annotations

import importlib.util
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autograder.options import GradingOptions
from autograder.results import NOT_GRADED_BEFORE, SubmissionResult
from autograder.spec import AssignmentSpec, load_assignment

BUNDLES_PACKAGE = "autograder_bundles"
NOTEBOOK_IMPORT = "from autograder.student.runtime import check"

NOT_INSTALLED = (
    "No student bundle for '{assignment}' is installed in this Python ({python}). Install the wheel that came with "
    "the notebook, from the notebook's folder: %pip install autograder_student_{assignment}-*.whl"
)
NO_BUNDLE_HERE = "{path}: no student bundle here (expected a file autograder_student_<assignment>-*.whl)"
SEVERAL_BUNDLES = "{path}: holds bundles of several assignments ({names}); pass the wheel itself"
SELF_CHECK_SUMMARY = "{passed} of {total} public checks passed. Hidden checks are run when you submit."
SELF_CHECK_NOT_RUN = (
    "No check was run: the grader could not run code on this machine (the reason is above). This says nothing "
    "about your notebook: try again, and if it happens again, show this message to your course's staff."
)
UNKNOWN_EXERCISE = "The bundle of '{assignment}' has no public checks for an exercise '{exercise}' (it has: {known})"


class BundleNotFound(LookupError):
    pass


def wheel_stem(assignment: str, version: str) -> str:
    """`autograder_student_<a>-<version>`: the wheel's name less its tags (a glob when version is '*')."""
    return f"autograder_student_{assignment}-{version}"


def installed_bundle(assignment: str) -> Path:
    """The installed bundle folder of an assignment."""
    import sys

    found = importlib.util.find_spec(BUNDLES_PACKAGE)
    for location in (found.submodule_search_locations or []) if found else []:
        folder = Path(location) / assignment
        if (folder / "assignment.toml").is_file():
            return folder
    raise BundleNotFound(NOT_INSTALLED.format(assignment=assignment, python=sys.executable))


def check(env: dict[str, Any], assignment: str, exercise: str, name: str, hidden: bool = False) -> None:
    """An otter test case in a student notebook: pass, or raise with the native grader's message for one public
    check of the kernel's code, graded with the installed bundle (student code in isolated workers)."""
    from autograder.otterkit.bridge import check as check_with

    check_with(env, str(installed_bundle(assignment)), exercise, name, hidden=False)


def _unpack(wheel: Path, into: Path) -> Path:
    """The bundle folder inside a student wheel, unpacked into `into`."""
    with zipfile.ZipFile(wheel) as archive:
        members = [n for n in archive.namelist() if n.startswith(BUNDLES_PACKAGE + "/")]
        archive.extractall(into, members)
    folders = sorted(p.parent for p in (into / BUNDLES_PACKAGE).glob("*/assignment.toml"))
    if len(folders) != 1:
        raise BundleNotFound(NO_BUNDLE_HERE.format(path=wheel))
    return folders[0]


def _wheel_in(folder: Path) -> Path:
    wheels = sorted(folder.glob("autograder_student_*.whl"))
    if not wheels:
        raise BundleNotFound(NO_BUNDLE_HERE.format(path=folder))
    names = {w.name.split("-")[0] for w in wheels}
    if len(names) > 1:
        raise BundleNotFound(SEVERAL_BUNDLES.format(path=folder, names=", ".join(sorted(names))))
    return wheels[-1]


def _bundle_spec(bundle: str | Path, scratch: Path) -> AssignmentSpec:
    """The assignment spec of a bundle given as an installed assignment's name, a wheel, or a folder."""
    path = Path(bundle)
    if path.is_file() and path.suffix == ".whl":
        return load_assignment(_unpack(path, scratch))
    if path.is_dir() and (path / "assignment.toml").is_file():
        return load_assignment(path)
    if path.is_dir():
        return load_assignment(_unpack(_wheel_in(path), scratch))
    return load_assignment(installed_bundle(str(bundle)))


def bundle_beside(notebook: str | Path) -> Path | None:
    """The student bundle in a notebook's folder (as `autograder build` hands them out together), if one is."""
    folder = Path(notebook).resolve().parent
    return folder if any(folder.glob("autograder_student_*.whl")) else None


def check_notebook(
    notebook: str | Path,
    bundle: str | Path,
    exercise: str | None = None,
    options: GradingOptions | None = None,
) -> SubmissionResult:
    """The public checks of a student bundle run on a notebook (or .py): what `autograder check` reports.

    `bundle` is the folder `dist/<a>/student/`, the student wheel in it, an unpacked bundle folder, or the name
    of an installed bundle's assignment; `exercise` limits the checks to one exercise."""
    from autograder.grader import grade_chunk
    from autograder.submission import load_submissions

    submissions = load_submissions([notebook])
    with tempfile.TemporaryDirectory(prefix="autograder-bundle-") as tmp:
        spec = _bundle_spec(bundle, Path(tmp))
        exercises = _exercises(spec, exercise)
        [result] = grade_chunk(spec, submissions[:1], options or GradingOptions(), public_only=True,
                               exercises=exercises)  # fmt: skip
    return result


def _exercises(spec: AssignmentSpec, exercise: str | None) -> Sequence[str] | None:
    if exercise is None:
        return None
    known = sorted(p.stem.removeprefix("test_") for p in spec.checks_dir.glob("test_*.py"))
    if exercise not in known:
        raise ValueError(UNKNOWN_EXERCISE.format(assignment=spec.name, exercise=exercise, known=", ".join(known)))
    return [exercise]


def check_lines(result: SubmissionResult) -> list[str]:
    """A student's self-check as text (`autograder check`, `python -m autograder.student`): every public check,
    with its full message when it failed; advice is marked TIP and counts nothing. A notebook the grader could
    not check (a fault of the machine's, not of the notebook's) is said so, with no check marked failed."""
    if not result.graded:
        return [f"  {result.not_graded or NOT_GRADED_BEFORE}", SELF_CHECK_NOT_RUN]
    lines = [f"  note: {error}" for error in result.errors]
    passed = total = 0
    for exercise in result.exercises:
        for test in exercise.tests:
            if test.counts:
                total += 1
                passed += test.passed
                mark = "PASS" if test.passed else "FAIL"
            else:
                mark = "OK  " if test.passed else "TIP "
            lines.append(f"  [{mark}] {exercise.id}: {test.name}")
            if not test.passed:
                lines.extend("         " + line for line in test.message.splitlines())
    return [*lines, SELF_CHECK_SUMMARY.format(passed=passed, total=total)]
