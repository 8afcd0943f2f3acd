"""`autograder build`'s student bundle: a small wheel in `dist/<a>/student/` with the engine, the public checks and
the reference's recorded answers to them, so that `grader.check` works offline with no reference code and no
hidden check on the student's machine.

The public checks are graded twice while building, on the reference's own solutions, the unfilled student notebook
and (for a built-in) the bundled example submissions: first with the real reference behind a recorder, then from
the recording alone. The build fails, naming the check, when a check's reference calls vary with the submission
(then no recording can answer them) or when the two gradings give any check a different verdict or message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import nbformat
import torch

import autograder
from autograder.options import GradingOptions
from autograder.paths import EXAMPLES_DIR, is_builtin
from autograder.results import SubmissionResult
from autograder.solutions import solution_sources
from autograder.spec import AssignmentSpec, load_assignment
from autograder.student import recording
from autograder.student.public import helpers_subset, public_checks
from autograder.student.runtime import BUNDLES_PACKAGE, NOTEBOOK_IMPORT, wheel_stem
from autograder.submission import Cell, Submission, load_submissions

# Build tools and instructor commands stay out of the student's wheel: it needs only what grades public checks.
ENGINE_LEFT_OUT = (
    "otterkit/build.py",
    "solutions.py",  # the reference solutions as cells: a build tool
    "student/bundle.py",
    "student/public.py",
    "lms",
    "cli.py",
    "__main__.py",
    "authoring.py",
    "similarity.py",
    "pages.py",
    "terminal.py",
    "_data",
)
# What the engine imports to grade (torch and otter-grader the student has; pytest runs the checks).
REQUIRES = ("torch>=2.1", "numpy>=1.24", "pytest>=8.0", "nbformat>=5.9")
BRIDGE_IMPORT = "from autograder.otterkit.bridge import check"

UNRECORDABLE = (
    "{spec}: the public check {check} cannot be recorded for the student bundle: its reference call at {where} "
    "received different inputs for different submissions (it depends on the student's answers, or on random state "
    "earlier checks left behind). Make its reference inputs fixed (seeded), or make the check hidden."
)
NOT_RECORDED = "{spec}: the public checks could not be run on this machine, so nothing can be recorded: {problem}"
REFERENCE_FAILS = "{spec}: the reference solutions fail public checks, so nothing can be recorded: {failed}"
REPLAY_DIFFERS = (
    "{spec}: graded from the recording, the public check {check} gives {submission} a different verdict or message "
    "than the real reference does ({got!r} instead of {want!r})"
)
NOT_A_STUDENT_NOTEBOOK = "{notebook}: no otter test case calls {bridge}; is it a student notebook from otter assign?"


class BundleError(ValueError):
    pass


# -- the bundle's assignment folder ---------------------------------------------------------------------------------
def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # JSON's escapes are TOML basic-string escapes


def _toml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(_toml_string(i) for i in items) + "]"


def spec_toml(spec: AssignmentSpec, helpers: bool) -> str:
    """The bundle's assignment.toml: the original's fields, the reference being the recording stub."""
    lines = [f"{key} = {_toml_string(value)}" for key, value in
             (("name", spec.name), ("title", spec.title), ("source", spec.source), ("intro", spec.intro),
              ("reference", "reference.py"))]  # fmt: skip
    if not spec.intro:
        lines = [line for line in lines if not line.startswith("intro")]
    if helpers:
        lines.append('helpers = "helpers.py"')
    for exercise in spec.exercises:
        symbols = ", ".join(f"{s.name} = {_toml_string(s.kind)}" for s in exercise.symbols)
        lines += [
            "",
            "[[exercises]]",
            f"id = {_toml_string(exercise.id)}",
            f"title = {_toml_string(exercise.title)}",
            f"symbols = {{ {symbols} }}",
            f"points = {exercise.points!r}",
            f"reference = {_toml_list(exercise.reference)}",
            f"forbidden = {_toml_list(exercise.forbidden)}",
        ]
        if exercise.statement:
            lines.append(f"statement = {_toml_string(exercise.statement)}")
    return "\n".join(lines) + "\n"


def write_folder(spec: AssignmentSpec, folder: Path, stub: str) -> dict[str, list[str]]:
    """The public side of the assignment in `folder` (named as the assignment); {exercise: public test names}."""
    (folder / "checks").mkdir(parents=True)
    kept: dict[str, list[str]] = {}
    helpers_used: set[str] = set()
    for exercise in spec.exercises:
        path = spec.checks_dir / f"test_{exercise.id}.py"
        public = public_checks(path.read_text(encoding="utf-8"), exercise.id)
        if public.kept_tests:
            (folder / "checks" / path.name).write_text(public.source, encoding="utf-8")
            kept[exercise.id] = list(public.kept_tests)
            helpers_used |= public.helpers_used
    has_helpers = bool(helpers_used) and spec.helpers_path is not None
    if has_helpers:
        assert spec.helpers_path is not None
        subset = helpers_subset(spec.helpers_path.read_text(encoding="utf-8"), helpers_used)
        (folder / "helpers.py").write_text(subset.source, encoding="utf-8")
    (folder / "assignment.toml").write_text(spec_toml(spec, has_helpers), encoding="utf-8")
    names = list(dict.fromkeys(name for exercise in spec.exercises for name in exercise.reference))
    (folder / "reference.py").write_text(recording.stub_source(names, stub), encoding="utf-8")
    return kept


# -- recording and checking the recording ---------------------------------------------------------------------------
def recording_submissions(spec: AssignmentSpec, student_notebook: Path) -> list[Submission]:
    """Submissions to record with: the reference's solutions, the unfilled notebook, a built-in's wrong example."""
    sources = solution_sources(spec)
    solution = Submission(name="reference-solutions.ipynb", path="", cells=tuple(
        Cell(i, s) for i, s in enumerate(sources, start=1)))  # fmt: skip
    template = load_submissions([student_notebook])
    template = [Submission(name="unfilled-notebook.ipynb", path="", cells=t.cells, error=t.error) for t in template]
    # A built-in's realistic wrong submission reaches the checks' other branches; each one graded costs seconds.
    examples = sorted((EXAMPLES_DIR / spec.name).glob("partly_wrong*.ipynb")) if is_builtin(spec.folder) else []
    return [solution, *template, *(load_submissions(examples) if examples else [])]


def _verdicts(results: list[SubmissionResult]) -> dict[tuple[str, str], tuple[bool, float, str]]:
    return {
        (r.submission, f"{e.id}: {t.name}"): (t.passed, t.score, t.message)
        for r in results
        for e in r.exercises
        for t in e.tests
    }


def record(spec: AssignmentSpec, work: Path, submissions: list[Submission], options: GradingOptions) -> Path:
    """Grade the public checks with the real reference behind a recorder; the recording's file."""
    from autograder.grader import grade_chunk

    folder = work / "record" / spec.name
    write_folder(spec, folder, recording.record_line(spec.reference_path))
    recording.forget_recorder(str(spec.reference_path))
    try:
        results = grade_chunk(load_assignment(folder), submissions, options, public_only=True)
        recorder = recording.recorder_for(str(spec.reference_path))
    finally:
        recording.forget_recorder(str(spec.reference_path))
    unmade = [r for r in results if not r.graded]
    if unmade:  # the grader could not run them: say so, rather than blame the references
        raise BundleError(NOT_RECORDED.format(spec=spec.folder, problem=unmade[0].not_graded))
    failed = [f"{e.id}: {t.name}" for e in results[0].exercises for t in e.tests if not t.passed and t.counts]
    if failed:
        raise BundleError(REFERENCE_FAILS.format(spec=spec.folder, failed=failed))
    for site in recording.varying_sites(recorder):
        raise BundleError(UNRECORDABLE.format(spec=spec.folder, check=site.check, where=site.where))
    path = work / recording.RECORDING_FILE
    torch.save(recorder.recording(), path)
    (work / "recorded.json").write_text(json.dumps([r.to_dict() for r in results]), encoding="utf-8")
    return path


def verify_replay(spec: AssignmentSpec, folder: Path, work: Path, submissions: list[Submission],
                  options: GradingOptions) -> None:  # fmt: skip
    """Grade the same submissions from the recording alone: every public verdict and message must be the same."""
    from autograder.grader import grade_chunk

    recorded = [SubmissionResult.from_dict(d) for d in json.loads((work / "recorded.json").read_text())]
    want = _verdicts(recorded)
    got = _verdicts(grade_chunk(load_assignment(folder), submissions, options, public_only=True))
    for key in sorted(set(want) | set(got)):
        if want.get(key) != got.get(key):
            raise BundleError(REPLAY_DIFFERS.format(spec=spec.folder, check=key[1], submission=key[0],
                                                    got=got.get(key), want=want.get(key)))  # fmt: skip


# -- the wheel ------------------------------------------------------------------------------------------------------
def engine_files() -> dict[str, bytes]:
    """The engine package's files a student needs (no build tools, no assignment data)."""
    root = Path(autograder.__file__).resolve().parent
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if not path.is_file() or "__pycache__" in relative or path.suffix == ".pyc":
            continue
        if any(relative == left or relative.startswith(left + "/") for left in ENGINE_LEFT_OUT):
            continue
        files[f"autograder/{relative}"] = path.read_bytes()
    return files


def folder_files(folder: Path, prefix: str) -> dict[str, bytes]:
    return {
        f"{prefix}/{p.relative_to(folder).as_posix()}": p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def write_wheel(out: Path, assignment: str, files: dict[str, bytes]) -> Path:
    """A pure-Python wheel holding `files`, installable with pip; pytest finds the grading plugin in it."""
    version = autograder.__version__
    stem = wheel_stem(assignment, version)
    info = f"{stem}.dist-info"
    requires = "".join(f"Requires-Dist: {r}\n" for r in REQUIRES)
    meta = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {stem.split('-')[0].replace('_', '-')}\n"
        f"Version: {version}\nSummary: Public checks of {assignment} for grader.check (no reference code, no "
        f"hidden checks)\nRequires-Python: >=3.10\n{requires}",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: autograder build\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": "[pytest11]\nautograder = autograder.pytest_plugin\n",
        f"{info}/top_level.txt": f"autograder\n{BUNDLES_PACKAGE}\n",
    }
    everything = {**files, **{k: v.encode() for k, v in meta.items()}}
    record = []
    path = out / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in everything.items():
            wheel.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        record.append(f"{info}/RECORD,,")
        wheel.writestr(zipfile.ZipInfo(f"{info}/RECORD", date_time=(2020, 1, 1, 0, 0, 0)), "\n".join(record) + "\n")
    return path


# -- the student notebook -------------------------------------------------------------------------------------------
TEST_CASE_IMPORT = "from otter.test_files import test_case"
INSTALL_CELL_ID = "student-bundle-install"
# Each otter test case gets the checker through this, so that a kernel without the bundle says what to run.
CHECKER = """
def _checker():
    try:
        {notebook_import}
    except ModuleNotFoundError:
        raise AssertionError({message!r}) from None
    return check
"""
NOT_INSTALLED_CASE = (
    "The checking package is not installed in this notebook's Python: run the notebook's `%pip install -q {wheel}` "
    "cell (the second cell), then check again."
)
INSTALL_NOTE = (
    '**Checking your work.** `grader.check("<exercise>")` runs the public checks on your code, offline. It needs '
    "torch, otter-grader and the checking package that came with this notebook, installed once into the "
    "notebook's Python, from the notebook's folder: the next cell does it.\n\nIt holds the public "
    "checks and the expected answers for their inputs only; more checks are run when your work is graded."
)


def point_notebook_at_bundle(notebook: Path, wheel: Path) -> None:
    """The student notebook's test cases call the student runtime (the bundle), not the full grader."""
    nb = nbformat.read(str(notebook), as_version=4)
    tests = nb.metadata.get("otter", {}).get("tests", {})
    for question, source in tests.items():
        if BRIDGE_IMPORT not in source or TEST_CASE_IMPORT not in source:
            raise BundleError(NOT_A_STUDENT_NOTEBOOK.format(notebook=notebook, bridge=BRIDGE_IMPORT))
        helper = CHECKER.format(notebook_import=NOTEBOOK_IMPORT, message=NOT_INSTALLED_CASE.format(wheel=wheel.name))
        source = source.replace(TEST_CASE_IMPORT, TEST_CASE_IMPORT + "\n" + helper, 1)
        tests[question] = source.replace(BRIDGE_IMPORT, "check = _checker()")
    note = nbformat.v4.new_markdown_cell(INSTALL_NOTE.format(wheel=wheel.name))
    note.id = "student-bundle-note"
    install = nbformat.v4.new_code_cell(f"%pip install -q {wheel.name}")
    install.id = INSTALL_CELL_ID
    install.metadata["tags"] = ["otter_ignore"]  # never run where it is graded: no student wheel goes in there
    nb.cells[1:1] = [note, install]
    nbformat.write(nb, str(notebook))


def build_bundle(assignment: str | Path | AssignmentSpec, student_notebook: Path,
                 options: GradingOptions | None = None) -> Path:  # fmt: skip
    """Write the student wheel beside `student_notebook` (otter assign's output) and point the notebook at it."""
    spec = load_assignment(assignment)
    options = options or GradingOptions()
    with tempfile.TemporaryDirectory(prefix="autograder-bundle-") as tmp:
        work = Path(tmp)
        submissions = recording_submissions(spec, student_notebook)
        recorded = record(spec, work, submissions, options)
        folder = work / "bundle" / spec.name
        write_folder(spec, folder, recording.REPLAY_LINE)
        (folder / recording.RECORDING_FILE).write_bytes(recorded.read_bytes())
        verify_replay(spec, folder, work, submissions, options)
        files = {**engine_files(), **folder_files(folder, f"{BUNDLES_PACKAGE}/{spec.name}")}
        for old in student_notebook.parent.glob(f"{wheel_stem(spec.name, '*')}-*.whl"):
            old.unlink()
        wheel = write_wheel(student_notebook.parent, spec.name, files)
    point_notebook_at_bundle(student_notebook, wheel)
    return wheel
