"""Student bundles (`dist/<a>/student/`): what they hold (public checks, recorded answers, never reference code or a
hidden check) and what they do (grader.check in a kernel where this project is not importable gives the native
grader's public verdicts and messages; `check_notebook` too).

The recorder and the extraction of public checks are tested in this process; the built bundles once per module.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import nbformat
import pytest
import torch

from autograder.grader import grade_chunk
from autograder.options import GradingOptions
from autograder.otterkit.build import fill_in_solutions
from autograder.paths import builtin_names
from autograder.spec import load_assignment
from autograder.student import recording
from autograder.student.bundle import INSTALL_CELL_ID
from autograder.student.public import public_checks
from autograder.student.runtime import UNKNOWN_EXERCISE, check_notebook
from autograder.submission import Cell, Submission

from .conftest import solution_lines
from .mutants import mlp

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN QUESTION", "BEGIN TESTS", "hidden=True")  # otter's
# A realistic mistake per assignment, made in the reference's own code: (cell's first line, old, new).
MISTAKES = {
    "mlp": [("def cross_entropy_loss", "losses.mean()", "losses.sum()")],
    "decoding": [("def train", "optimizer.zero_grad()", "pass")],
    "spiking": [("def lif", "beta=1.0 / GAMMA", "beta=1.0"), ("class LIF(", "return lif(x)", "return torch.relu(x)")],
}


# -- unit: public checks ---------------------------------------------------------------------------------------
CHECKS = '''"""Module docstring naming test_secret_check."""
import pytest
import torch

SHARED = 3
ONLY_HIDDEN = 7


def make(n):
    return torch.arange(n) * SHARED


def hidden_helper():
    return ONLY_HIDDEN


@pytest.mark.public
@pytest.mark.points(1)
def test_visible(student, reference):
    # compares with the reference
    assert student.f(make(4)).equal(reference.f(make(4)))


@pytest.mark.points(2)
def test_secret_check(student):
    assert student.f(hidden_helper())
'''


def test_public_checks_keep_the_public_tests_and_only_what_they_use():
    public = public_checks(CHECKS, "f")
    assert public.kept_tests == ("test_visible",) and public.dropped_tests == ("test_secret_check",)
    assert "def make" in public.source and "SHARED = 3" in public.source and "# compares" in public.source
    for gone in ("test_secret_check", "hidden_helper", "ONLY_HIDDEN"):
        assert gone not in public.source
    compile(public.source, "public.py", "exec")


# -- unit: recording and replay --------------------------------------------------------------------------------
REFERENCE = """import torch
from torch import nn


def noisy(x):
    return x + torch.randn(x.shape)


def seeded(n, seed):
    torch.manual_seed(seed)
    return torch.randperm(n)


def fit(net, x):
    with torch.no_grad():
        net.weight.add_(x.mean())
    return float(net.weight.detach().sum())


class Net(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.layer = nn.Linear(n, 1)

    def forward(self, x):
        return self.layer(x)
"""


def _use_reference(ref):
    """What a check does with the reference: answers to compare, in a fixed order."""
    torch.manual_seed(1)
    x = torch.ones(3)
    net = nn_linear()
    answers = [ref.noisy(x), ref.seeded(5, seed=2), ref.fit(net, x), net.weight.clone(), torch.randn(1)]
    model = ref.Net(3)
    answers += [model(torch.ones(2, 3)).detach(), model.layer.weight, dict(model.state_dict())["layer.bias"]]
    return answers


def nn_linear():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 1)


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a == b


def test_a_replayed_reference_answers_as_the_real_one_did(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "checks/test_f.py::test_visible[submission0] (call)")
    (tmp_path / "ref.py").write_text(REFERENCE)
    recording.forget_recorder(str(tmp_path / "ref.py"))
    recorder = recording.recorder_for(str(tmp_path / "ref.py"))
    recorded = _use_reference(recording_module(recorder))
    torch.save(recorder.recording(), tmp_path / recording.RECORDING_FILE)
    recording.forget_recorder(str(tmp_path / "ref.py"))
    replayer = recording.Replayer.load(str(tmp_path / "reference.py"))
    replayed = _use_reference(recording_module(replayer))
    assert all(_same(a, b) for a, b in zip(recorded, replayed, strict=True))
    # The random state a call consumed, the argument it changed, the object it returned: all as the real reference.
    with pytest.raises(recording.NotRecorded, match=r"reference.noisy\(\.\.\.\), which the student bundle did not"):
        recording_module(replayer).noisy(torch.zeros(3))


def recording_module(book):
    class Module:
        noisy = book.function("noisy")
        seeded = book.function("seeded")
        fit = book.function("fit")
        Net = book.function("Net")

    return Module


def test_a_call_whose_inputs_vary_by_submission_is_found(tmp_path, monkeypatch):
    (tmp_path / "ref.py").write_text(REFERENCE)
    recording.forget_recorder(str(tmp_path / "ref.py"))
    recorder = recording.recorder_for(str(tmp_path / "ref.py"))
    seeded = recorder.function("seeded")
    for index, students_answer in enumerate([4, 6]):  # the check feeds the student's answer to the reference
        monkeypatch.setenv("PYTEST_CURRENT_TEST", f"checks/test_f.py::test_visible[submission{index}] (call)")
        seeded(students_answer, seed=1)
        seeded(3, seed=1)  # a fixed input: fine
    recording.forget_recorder(str(tmp_path / "ref.py"))
    [site] = recording.varying_sites(recorder)
    assert site.check == "checks/test_f.py::test_visible" and site.where.startswith("test_student_bundle.py:")


# -- built bundles ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built(built_dist):
    return built_dist


def _hidden_names(assignment: str) -> set[str]:
    names = set()
    for path in load_assignment(assignment).checks_dir.glob("test_*.py"):
        extracted = public_checks(path.read_text(), path.stem)
        for test in extracted.dropped_tests:
            names |= {f"def {test}", f"'{test[5:]}'", f'"{test[5:]}"', f"_{test[5:]}_"}
    return names


def _public_strings(assignment: str) -> list[str]:
    """The string constants of the public checks: messages and hints the instructor chose to show students."""
    found = []
    for path in load_assignment(assignment).checks_dir.glob("test_*.py"):
        tree = ast.parse(public_checks(path.read_text(), path.stem).source or "")
        found += [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return found


def _reference_lines(assignment: str) -> set[str]:
    """Lines of the reference's code (the solutions in the master notebook), long enough to be telling, less any
    that a public check's hint quotes (e.g. "return y_hat, relu_acts, x in this order.")."""
    hints = _public_strings(assignment)
    return {line for line in solution_lines(assignment) if not any(line in hint for hint in hints)}


def _texts(folder: Path) -> dict[str, str]:
    """Every file under `folder` as text, archives unpacked (a wheel, torch's zip inside it) recursively."""
    found: dict[str, str] = {}

    def visit(name: str, data: bytes) -> None:
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for member in archive.namelist():
                    visit(f"{name}/{member}", archive.read(member))
        else:
            found[name] = data.decode("utf-8", errors="replace")

    for path in sorted(folder.rglob("*")):
        if path.is_file():
            visit(str(path.relative_to(folder)), path.read_bytes())
    return found


def leaks(folder: Path, assignment: str) -> list[str]:
    forbidden = [*_hidden_names(assignment), *_reference_lines(assignment), *MARKERS]
    texts = _texts(folder)
    found = [f"{name}: {needle!r}" for name, text in texts.items() for needle in forbidden if needle in text]
    found += [f"{name}: a notebook other than the student's" for name in texts
              if name.endswith(".ipynb") and name != f"{assignment}.ipynb"]  # fmt: skip
    return found


@pytest.mark.slow
@pytest.mark.parametrize("assignment", builtin_names())
def test_the_student_folder_holds_no_reference_code_hidden_check_or_marker(built, assignment):
    folder = built / assignment / "student"
    assert [p.suffix for p in sorted(folder.iterdir())] == [".whl", ".ipynb"] or sorted(
        p.suffix for p in folder.iterdir()
    ) == [".ipynb", ".whl"]
    assert _hidden_names(assignment) and _reference_lines(assignment)  # something to look for
    assert leaks(folder, assignment) == []
    [zip_file] = (built / assignment / "autograder").iterdir()
    full = built / "full" / assignment
    full.mkdir(parents=True)
    shutil.copy(zip_file, full / zip_file.name)
    assert leaks(full, assignment)  # the test can fail: the autograder zip holds all of it


# -- a kernel where only torch, otter and the bundle are importable --------------------------------------------
def isolated_kernel(tmp: Path, wheel: Path, jupyter: Path, name: str) -> Path:
    """A Jupyter kernel spec `name` (in `jupyter`/kernels) whose Python sees the installed student wheel and the
    environment's other packages, but not this project (neither the checkout nor its editable install); the folder
    the wheel is installed in."""
    target = tmp / "target"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)  # fmt: skip
    site = Path(sysconfig.get_paths()["purelib"])
    filtered = tmp / "site"
    filtered.mkdir()
    for entry in site.iterdir():
        if entry.name == "autograder" or "pytorch_coursework_autograder" in entry.name or entry.suffix == ".pth":
            continue
        (filtered / entry.name).symlink_to(entry)
    boot = (f"import sys; sys.path[:0] = [{str(target)!r}, {str(filtered)!r}]; "
            "from ipykernel.kernelapp import launch_new_instance; launch_new_instance()")  # fmt: skip
    spec_dir = jupyter / "kernels" / name
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-S", "-c", boot, "-f", "{connection_file}"], "display_name": "student",
            "language": "python", "env": {"PYTHONPATH": "", "PYTHONNOUSERSITE": "1"}}  # fmt: skip
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return target


PROOF = """import importlib.util, json, autograder
from autograder.spec import SpecError, load_assignment
try:
    load_assignment({assignment!r})
    spec_error = ""
except SpecError as exc:
    spec_error = str(exc)
print("PROOF " + json.dumps({{"engine": autograder.__file__, "spec_error": spec_error,
      "references": importlib.util.find_spec("reference_solutions") is not None}}))
"""
CHECK_ALL = """import json
_results = grader.check_all()
print("VERDICTS " + json.dumps({q: [(r.test_case.name, bool(r.passed), r.message) for r in f.test_case_results]
                               for q, f in _results.results.items()}))
"""


def _printed(cell, prefix: str):
    text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
    [line] = [line for line in text.splitlines() if line.startswith(prefix)]
    return json.loads(line[len(prefix) :])


def student_run(built: Path, assignment: str, tmp: Path, jupyter: Path) -> tuple[nbformat.NotebookNode, Path]:
    """The student notebook, filled with correct code then a mistake, run in the isolated kernel."""
    from nbclient import NotebookClient

    folder = tmp / "student"
    shutil.copytree(built / assignment / "student", folder)
    [wheel] = folder.glob("*.whl")
    target = isolated_kernel(tmp, wheel, jupyter, f"student-{assignment}")
    nb = fill_in_solutions(nbformat.read(str(folder / f"{assignment}.ipynb"), 4), assignment)
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and c.source.startswith("grader.check("))]
    nb.cells = [c for c in nb.cells if c.get("id") != INSTALL_CELL_ID]  # installed above, into the kernel's venv
    nb.cells.insert(1, nbformat.v4.new_code_cell(PROOF.format(assignment=assignment)))
    nb.cells.append(nbformat.v4.new_code_cell(CHECK_ALL))
    mistaken: dict[str, str] = {}  # correct cell -> the cell with the mistakes made in it
    for first, old, new in MISTAKES[assignment]:
        [correct] = [c.source for c in nb.cells if c.cell_type == "code" and first in c.source]
        assert old in correct
        mistaken[correct] = mistaken.get(correct, correct).replace(old, new)
    nb.cells += [nbformat.v4.new_code_cell(source) for source in mistaken.values()]
    nb.cells.append(nbformat.v4.new_code_cell(CHECK_ALL))
    client = NotebookClient(nb, timeout=600, kernel_name=f"student-{assignment}",
                            resources={"metadata": {"path": str(folder)}})  # fmt: skip
    client.execute()
    return nb, target


def native_public(assignment: str, cells: list[str]) -> dict[str, tuple[bool, str]]:
    """{check: (passed, message)} of the public checks, graded by the full project with the real reference."""
    submission = Submission("notebook.ipynb", "", tuple(Cell(i, s) for i, s in enumerate(cells, start=1)))
    [result] = grade_chunk(load_assignment(assignment), [submission], GradingOptions(), public_only=True)
    return {f"{e.id}:{t.name}": (t.passed, t.message) for e in result.exercises for t in e.tests}


def kernel_verdicts(verdicts: dict[str, list], native: dict[str, tuple[bool, str]]) -> dict[str, tuple[bool, str]]:
    """{check: (passed, message)} from otter's results, whose cases ("LIF - 1") follow the native checks' order."""
    found = {}
    for question, cases in verdicts.items():
        names = [k for k in native if k.startswith(f"{question}:")]
        assert len(names) == len(cases), (question, names, cases)
        for check, (_, passed, message) in zip(names, cases, strict=True):
            found[check] = (passed, message)
    return found


@pytest.fixture(scope="module")
def student_runs(built, tmp_path_factory):
    jupyter = tmp_path_factory.mktemp("jupyter")
    before = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(jupyter)  # where jupyter_client finds the kernel specs
    try:
        # One after another, in this thread: nbclient's event loops in other threads outlive their test.
        return {a: student_run(built, a, tmp_path_factory.mktemp(a), jupyter) for a in builtin_names()}
    finally:
        if before is None:
            del os.environ["JUPYTER_PATH"]
        else:
            os.environ["JUPYTER_PATH"] = before


@pytest.mark.slow
@pytest.mark.parametrize("assignment", builtin_names())
def test_grader_check_in_a_kernel_without_the_project_gives_the_native_public_verdicts(student_runs, assignment):
    nb, target = student_runs[assignment]
    proof = _printed(nb.cells[1], "PROOF ")
    assert proof["engine"].startswith(str(target))  # the wheel's engine, not the checkout's
    assert "assignment.toml" in proof["spec_error"]  # no built-in assignment (no hidden checks, no references)
    assert proof["references"] is False
    checks = [i for i, c in enumerate(nb.cells) if c.source == CHECK_ALL]
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    for index, mistaken in zip(checks, (False, True), strict=True):
        cells = [c.source for c in nb.cells[:index] if c.cell_type == "code" and c.source not in (CHECK_ALL,)]
        want = native_public(assignment, cells[1:])  # without the proof cell
        got = kernel_verdicts(_printed(nb.cells[index], "VERDICTS "), want)
        assert set(got) == set(want) and want
        for check, (passed, message) in want.items():
            assert got[check][0] == passed, (check, got[check])
            assert passed or message in got[check][1], (check, message, got[check][1])
        assert all(p for p, _ in want.values()) != mistaken  # correct code passes all; the mistake fails some
    assert code


# -- autograder check from a bundle ----------------------------------------------------------------------------
@pytest.mark.slow
def test_check_notebook_from_the_student_folder_matches_the_native_public_checks(built, tmp_path):
    student = nbformat.read(str(built / "mlp" / "student" / "mlp.ipynb"), 4)
    filled = fill_in_solutions(student, "mlp")
    for cell in filled.cells:
        if cell.source.startswith("def cross_entropy_loss"):
            cell.source = cell.source.replace("losses.mean()", "losses.sum()")
    path = tmp_path / "alice.ipynb"
    nbformat.write(filled, str(path))
    result = check_notebook(path, built / "mlp" / "student")
    got = {f"{e.id}:{t.name}": (t.passed, t.message) for e in result.exercises for t in e.tests}
    code = [c.source for c in filled.cells if c.cell_type == "code"]
    assert got == native_public("mlp", code)
    hint = "Hint: the loss should be averaged over the batch, not summed."
    assert hint in got["cross_entropy_loss:tutorial_example"][1]
    only = check_notebook(path, next((built / "mlp" / "student").glob("*.whl")), exercise="Net")
    assert [e.id for e in only.exercises] == ["Net"]
    with pytest.raises(ValueError, match=re.escape(UNKNOWN_EXERCISE.split("{")[0])):
        check_notebook(path, built / "mlp" / "student", exercise="nope")


@pytest.mark.slow
def test_autograder_check_uses_the_bundle_beside_the_notebook(built, tmp_path):
    folder = tmp_path / "handed_out"
    shutil.copytree(built / "mlp" / "student", folder)
    filled = fill_in_solutions(nbformat.read(str(folder / "mlp.ipynb"), 4), "mlp")
    for cell in filled.cells:
        if cell.source.startswith("def cross_entropy_loss"):
            cell.source = cell.source.replace("losses.mean()", "losses.sum()")
    nbformat.write(filled, str(folder / "alice.ipynb"))
    command = [sys.executable, "-m", "autograder", "check", str(folder / "alice.ipynb"), "-e", "cross_entropy_loss"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"Public checks of the bundle {folder}" in done.stdout
    assert "[FAIL] cross_entropy_loss: tutorial_example" in done.stdout
    assert "Hint: the loss should be averaged over the batch, not summed." in done.stdout
    assert "Net" not in done.stdout  # only the exercise asked for
    wrong = subprocess.run([*command[:-1], "nope"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert wrong.returncode == 2 and "has no public checks for an exercise 'nope'" in wrong.stderr


@pytest.mark.slow
def test_the_student_notebook_installs_its_bundle_and_a_kernel_without_it_says_what_to_run(built, tmp_path):
    notebook = nbformat.read(str(built / "mlp" / "student" / "mlp.ipynb"), as_version=4)
    [wheel] = (built / "mlp" / "student").glob("*.whl")
    install = notebook.cells[2]
    assert install.cell_type == "code" and install.source == f"%pip install -q {wheel.name}"
    assert install.metadata["tags"] == ["otter_ignore"]  # otter never runs it where it grades
    source = notebook.metadata["otter"]["tests"]["Net"]
    assert "check = _checker()" in source and "from autograder.otterkit.bridge import check" not in source
    # a kernel where nothing of the project is installed: the test case fails with one line saying what to run
    probe = (
        "import sys\n"
        "class Blocked:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'autograder':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, Blocked())\n"
        "source = sys.stdin.read()\n"
        "namespace = {}\n"
        "exec(source[source.index('def _checker'):source.index('@test_case')], namespace)\n"
        "try:\n    namespace['_checker']()\nexcept AssertionError as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], input=source, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == (
        f"The checking package is not installed in this notebook's Python: run the notebook's `%pip install -q "
        f"{wheel.name}` cell (the second cell), then check again."
    ), done.stderr


def test_a_self_check_grades_its_exercise_alone_once_per_version_of_the_definitions(monkeypatch):
    from autograder.otterkit import bridge

    graded: list[tuple[str, ...]] = []
    real = bridge.grade_cells

    def counting(cells, assignment, exercises=None, public_only=False):
        graded.append(tuple(exercises or ()))
        return real(cells, assignment, exercises=exercises, public_only=public_only)

    monkeypatch.setattr(bridge, "grade_cells", counting)
    monkeypatch.setattr(bridge, "_cache", {})
    looping = "def approximate_function(x_train, y_train):\n    while True:\n        pass\n"
    env = {"In": [mlp.HEADER, looping, *(v for k, v in mlp.BASE.items() if k != "approximate_function")]}
    bridge.check(env, "mlp", "cross_entropy_loss", "tutorial_example")  # the loop in another exercise: not run
    assert graded == [("cross_entropy_loss",)]
    env["In"].append("plt.plot([1, 2, 3])\nprint(cross_entropy_loss)")  # a cell that only calls: same definitions
    bridge.check(env, "mlp", "cross_entropy_loss", "tutorial_example")
    assert graded == [("cross_entropy_loss",)]  # answered from the first grading
    env["In"].append("def cross_entropy_loss(x, labels):\n    return x.sum() * 0\n")  # a new definition: graded again
    with pytest.raises(bridge.CheckFailed):
        bridge.check(env, "mlp", "cross_entropy_loss", "tutorial_example")
    assert graded == [("cross_entropy_loss",), ("cross_entropy_loss",)]
