"""Otter's side of the native checks: test cases in otter test files call `check`, and the `NativeScores` plugin
recomputes every score outside the student's kernel.

Each native check is one otter test case with the same points, so an otter question (named by the exercise id)
scores what the native grader gives the exercise. A test case runs in the student's kernel: `check` grades the
notebook's code (the cells the kernel has run, from IPython's `In`) with the native grader, whose workers run the
code in isolated processes; the first test case of an exercise grades it, the others read the cached verdicts.
"""

from __future__ import annotations

import ast
import atexit
import functools
import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autograder.results import SubmissionResult
from autograder.spec import AssignmentSpec

_cache: dict[tuple[str, bool, str, str], dict[str, tuple[bool, str, bool]]] = {}


class CheckFailed(AssertionError):
    """A native check failed; the message is the one the native grader gives the student."""


def notebook_cells(env: dict[str, Any]) -> list[str]:
    """The code the kernel has run, cell by cell (IPython keeps it in `In`)."""
    history = env.get("In") or env.get("_ih") or []
    return [str(source) for source in history if str(source).strip()]


def check(env: dict[str, Any], assignment: str, exercise: str, name: str, hidden: bool = False) -> None:
    """Pass or raise CheckFailed for one native check of the notebook in `env`. A public check grades only the
    public checks (what a student's `grader.check` may know); a hidden one grades them all."""
    verdicts = _verdicts(notebook_cells(env), assignment, exercise, public_only=not hidden)
    if name not in verdicts:
        raise CheckFailed(f"the grader has no check named {name!r} for {exercise}; is the autograder up to date?")
    passed, message, advisory = verdicts[name]
    if not passed and advisory:
        print(message)  # advice: shown, never a failed test
    elif not passed:
        raise CheckFailed(message or "This check did not pass.")


def _verdicts(
    cells: Sequence[str], assignment: str, exercise: str, public_only: bool
) -> dict[str, tuple[bool, str, bool]]:
    """{check: (passed, message, advisory)} of one exercise, graded alone (an endless loop in another exercise
    costs this one nothing), once per version of the notebook's definitions: a change to a cell that only
    calls, plots or trains does not grade it again (the worker runs definitions only)."""
    key = (assignment, public_only, exercise, definitions_digest(cells))
    if key not in _cache:
        result = grade_cells(cells, assignment, exercises=[exercise], public_only=public_only)
        for graded in result.exercises:
            _cache[key] = {t.name: (t.passed, t.message, t.advisory) for t in graded.tests}
        _cache.setdefault(key, {})
    return _cache[key]


def definitions_digest(cells: Sequence[str]) -> str:
    """A digest of what grading the cells runs by default: their imports, definitions and constant assignments
    (a cell that does not parse counts whole)."""
    from autograder.runner.definitions import kind_of
    from autograder.submission import parse_cell, strip_magics

    digest = hashlib.sha256()
    for source in cells:
        code = strip_magics(source) or ""
        tree = parse_cell(code)
        parts = [code] if tree is None else [ast.dump(n) for n in tree.body if kind_of(n) != "other"]
        for part in parts:
            digest.update(part.encode() + b"\x00")
    return digest.hexdigest()


def grade_cells(
    cells: Sequence[str],
    assignment: str | Path | AssignmentSpec,
    exercises: Sequence[str] | None = None,
    public_only: bool = False,
) -> SubmissionResult:
    """Grade notebook cells with the native grader (student code in isolated workers, as always)."""
    from autograder.runner.forkserver import HUGE_PAGES_ENV

    # One notebook's checks (a student's kernel, an otter run) start few workers: the fork server skips collapsing
    # its memory into huge pages (~4 s at its start, see forkserver.HUGE_PAGES_FROM), unless told otherwise.
    os.environ.setdefault(HUGE_PAGES_ENV, "off")
    from autograder.grader import grade_chunk
    from autograder.options import GradingOptions
    from autograder.spec import load_assignment
    from autograder.submission import Cell, Submission, strip_magics

    kept = [(i, strip_magics(source)) for i, source in enumerate(cells, start=1)]
    submission = Submission(
        name="notebook.ipynb",
        path="",
        cells=tuple(Cell(i, source) for i, source in kept if source),
    )
    spec = load_assignment(assignment)
    [result] = grade_chunk(spec, [submission], GradingOptions(), public_only=public_only, exercises=exercises)
    return result


# -- the plugin: trusted scores ---------------------------------------------------------------------------------
@functools.cache
def assignment_folder(name: str, places: tuple[Path, ...] | None = None) -> str | Path:
    """Where the grading host finds assignment `name`: a built-in, or an assignment installed with the project;
    else the folder the autograder zip ships inside its project wheel (`autograder/_data/assignments/<name>/`,
    see otterkit.build.add_to_wheel), unpacked once into a temporary folder. Under `otter run` the host's own
    installation does not have a course's assignment; the zip always does."""
    from autograder.spec import SpecError, load_assignment

    try:
        load_assignment(name)
        return name
    except SpecError:
        pass
    prefix = f"autograder/_data/assignments/{name}/"
    cwd = Path.cwd()
    for place in places or (cwd, cwd.parent / "source", cwd / "source", Path("/autograder/source")):
        for wheel in sorted(place.glob("*.whl")) + sorted(place.glob("files/*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                members = [m for m in archive.namelist() if m.startswith(prefix) and not m.endswith("/")]
                if not members:
                    continue
                holder = tempfile.mkdtemp(prefix="autograder-shipped-")
                atexit.register(shutil.rmtree, holder, ignore_errors=True)
                folder = Path(holder) / name
                for member in members:
                    target = folder / member[len(prefix) :]
                    if ".." in Path(member[len(prefix) :]).parts:
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(member))
                return folder
    return name  # load_assignment then says it is unknown, naming it


try:
    from otter.plugins import AbstractOtterPlugin
except ImportError:  # otter is a dependency, but keep the bridge importable without it
    AbstractOtterPlugin = object  # type: ignore[misc,assignment]


class NativeScores(AbstractOtterPlugin):  # type: ignore[misc,valid-type]
    """`after_grading` runs on the grading host, outside the student's kernel: it grades the executed notebook's
    code again with the native grader and replaces every test case's verdict and every question's score, so a
    submission that tampers with otter inside its kernel gains nothing. Configure it in the master notebook's
    ASSIGNMENT CONFIG: `plugins: [{autograder.otterkit.bridge.NativeScores: {assignment: mlp}}]`."""

    def after_grading(self, results: Any) -> None:
        from otter.test_files.abstract_test import TestCaseResult

        assignment = (self.plugin_config or {}).get("assignment")
        notebook = getattr(results, "notebook", None)
        if not assignment or notebook is None:
            return
        cells = [str(cell.source) for cell in notebook.cells if cell.cell_type == "code"]
        native = grade_cells(cells, assignment_folder(str(assignment)))
        by_exercise = {e.id: e for e in native.exercises}
        for question, test_file in results.results.items():
            exercise = by_exercise.get(question)
            if exercise is None:
                continue
            checks = list(exercise.tests)
            cases = list(test_file.test_cases)
            if len(cases) == len(checks):  # one test case per native check, in the same order
                test_file.test_case_results = [
                    TestCaseResult(case, None if check.passed else check.message, check.passed)
                    for case, check in zip(cases, checks, strict=True)
                ]
            test_file.update_score(exercise.score)
        results.set_plugin_data("NativeScores", {"score": native.score, "max_score": native.max_score})
