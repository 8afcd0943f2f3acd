"""Otter packaging: master notebooks, `autograder build`, `otter run` parity with the native grader, students'
`grader.check`, and trusted scores with the NativeScores plugin.

`otter run` executes every cell of a notebook in a kernel. The bundled examples end with a cell that trains for
minutes (on purpose: the native grader skips it) and start with `!pip install` (network): the parity test runs
otter on copies without those two, which define the same things. `otter grade` needs Docker, absent here.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
import yaml

from autograder.grader import grade
from autograder.options import GradingOptions
from autograder.otterkit.build import EMPTY_METADATA_FIX, build, fill_in_solutions, master_notebook, master_path
from autograder.paths import builtin_names
from autograder.student.bundle import INSTALL_CELL_ID

from .conftest import EXAMPLES, run_cli, solution_lines

pytestmark = pytest.mark.slow
PARITY = [("mlp", "partly_wrong"), ("decoding", "partly_wrong"), ("spiking", "partly_wrong")]
TAMPER = """import otter.test_files.exception_test as _tests
_tests.test_case.call_func = lambda self, env: None  # every otter test case now passes
"""


def otter_run(bundle: Path, notebook: Path, out: Path) -> dict[str, float]:
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "otter", "run", "-a", str(bundle), "-o", str(out), str(notebook)],
                          cwd=out, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert (out / "results.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads((out / "results.json").read_text())
    return {t["name"]: t["score"] for t in data["tests"] if "score" in t}


def for_otter(source: Path, target: Path) -> Path:
    nb = nbformat.read(str(source), as_version=4)
    nb.cells = [c for c in nb.cells if "Train for a long time" not in c.source]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = "\n".join(line for line in cell.source.split("\n") if not line.lstrip().startswith("!"))
    nbformat.write(nb, str(target))
    return target


@pytest.fixture(scope="module")
def built(tmp_path_factory, built_dist):
    out = tmp_path_factory.mktemp("build")
    (out / "trusted").symlink_to(built_dist)  # every built-in, trusted scores (shared with the bundle tests)
    done = run_cli("build", "mlp", "--no-trusted-scores", "--out", str(out / "kernel"))
    assert done.returncode == 0, done.stderr
    return out


def bundle(built: Path, assignment: str, variant: str = "trusted") -> Path:
    [found] = (built / variant / assignment / "autograder").iterdir()  # exactly one file: the zip
    return found


def test_master_notebooks_are_in_step_with_the_checks():
    for assignment in builtin_names():
        committed = nbformat.read(str(master_path(assignment)), as_version=4)
        fresh = master_notebook(assignment)
        assert [c.source for c in committed.cells] == [c.source for c in fresh.cells], (
            f"{master_path(assignment)} is out of date: run python -m autograder.otterkit.build {assignment}"
        )


def test_build_writes_a_student_notebook_without_solutions_and_one_zip(built):
    for assignment in builtin_names():
        student = built / "trusted" / assignment / "student" / f"{assignment}.ipynb"
        text = student.read_text()
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        reference_lines = solution_lines(assignment)
        assert reference_lines, assignment
        leaked = [line for line in reference_lines if line in text]
        assert not leaked, leaked
        assert "hidden=True" not in text  # hidden test cases stay in the autograder zip
        assert [p.suffix for p in (built / "trusted" / assignment / "autograder").iterdir()] == [".zip"]
        # Beside the notebook only the student bundle (tests/test_student_bundle.py: no reference code or hidden check)
        [wheel] = (built / "trusted" / assignment / "student").glob("*.whl")
        assert wheel.name.startswith(f"autograder_student_{assignment}-")


def test_the_zip_installs_the_project_from_inside_itself(built):
    """What Gradescope's or otter grade's image build does with the zip, checked statically (no Docker here):
    otter pinned to the version that built it, torch from the CPU index, and our wheel from files/, carrying
    the assignment's checks and references."""
    import otter

    for assignment in builtin_names():
        with zipfile.ZipFile(bundle(built, assignment)) as z:
            names = z.namelist()
            pip = yaml.safe_load(z.read("environment.yml"))["dependencies"][-1]["pip"]
            config = json.loads(z.read("otter_config.json"))
            [wheel_name] = [n for n in names if n.startswith("files/") and n.endswith(".whl")]
            assert pip[0] == f"otter-grader[grading,plugins]=={otter.__version__}"
            assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip
            # the wheel where setup finds it under Gradescope (the zip's top level) and `otter grade` (requirements.d)
            assert pip[-1] == f"/autograder/source/{Path(wheel_name).name}"
            assert {Path(wheel_name).name, f"requirements.d/{Path(wheel_name).name}"} <= set(names)
            run_autograder = z.read("run_autograder").decode()
            assert run_autograder.index(EMPTY_METADATA_FIX) < run_autograder.index("run_otter.py")
            assert config["plugins"] == [{"autograder.otterkit.bridge.NativeScores": {"assignment": assignment}}]
            with zipfile.ZipFile(io.BytesIO(z.read(wheel_name))) as wheel:
                inside = wheel.namelist()
        assert f"autograder/_data/reference_solutions/{assignment}.py" in inside
        assert f"autograder/_data/assignments/{assignment}/assignment.toml" in inside
        assert any(n.startswith(f"autograder/_data/assignments/{assignment}/checks/test_") for n in inside)
        assert "autograder/otterkit/bridge.py" in inside


def test_otter_run_scores_match_the_native_grader(built, tmp_path):
    jobs = []
    # The course's solution of one assignment (the others' get full marks natively: test_course_solutions), and a
    # partly wrong notebook of every assignment, whose exercises score full, part and nothing.
    for assignment in ["mlp"]:
        student = nbformat.read(str(built / "trusted" / assignment / "student" / f"{assignment}.ipynb"), 4)
        solution = tmp_path / f"{assignment}-solution.ipynb"
        nbformat.write(fill_in_solutions(student, assignment), str(solution))
        jobs.append((assignment, "solution", solution))
    for assignment, example in PARITY:
        jobs.append((assignment, example, for_otter(EXAMPLES / assignment / f"{example}.ipynb",
                                                    tmp_path / f"{assignment}-{example}.ipynb")))  # fmt: skip
    with ThreadPoolExecutor(2) as pool:
        scores = list(pool.map(lambda j: otter_run(bundle(built, j[0]), j[2], tmp_path / f"out-{j[0]}-{j[1]}"), jobs))
    for (assignment, example, path), otter_scores in zip(jobs, scores, strict=True):
        [native] = grade(assignment, [path], out_dir=None, options=GradingOptions()).results
        expected = {e.id: e.score for e in native.exercises}
        got = {name: otter_scores[name] for name in expected}
        assert got == pytest.approx(expected), (assignment, example)
        if example == "solution":
            assert native.score == native.max_score
    assert any(native.score < native.max_score for _ in [0])


def test_grader_check_in_a_student_notebook_reports_the_public_checks(built, tmp_path):
    from nbconvert.preprocessors import ExecutePreprocessor

    folder = built / "trusted" / "mlp" / "student"
    student = nbformat.read(str(folder / "mlp.ipynb"), 4)
    filled = fill_in_solutions(student, "mlp")
    for cell in filled.cells:  # one exercise done wrong: the loss summed instead of averaged
        if cell.source.startswith("def cross_entropy_loss"):
            cell.source = cell.source.replace("losses.mean()", "losses.sum()")
    # the student bundle, on the kernel's path as if installed (its install cell would install it into this Python)
    filled.cells = [c for c in filled.cells if c.get("id") != INSTALL_CELL_ID]
    [wheel] = folder.glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tmp_path / "bundle", [n for n in z.namelist() if n.startswith("autograder_bundles/")])
    filled.cells.insert(1, nbformat.v4.new_code_cell(f"import sys; sys.path.insert(0, {str(tmp_path / 'bundle')!r})"))
    filled.cells.append(nbformat.v4.new_code_cell('print(grader.check("cross_entropy_loss"))'))
    filled.cells.append(nbformat.v4.new_code_cell('print(grader.check("shuffle_and_split"))'))
    ExecutePreprocessor(timeout=300, kernel_name="python3").preprocess(filled, {"metadata": {"path": str(folder)}})
    ce, split = ("".join(o.get("text", "") for o in cell.outputs) for cell in filled.cells[-2:])
    assert "cross_entropy_loss(x, labels) for the tutorial's example is wrong." in ce
    assert "Hint: the loss should be averaged over the batch, not summed." in ce
    assert "shuffle_and_split results: All test cases passed!" in split


def test_with_the_plugin_a_kernel_that_tampers_with_otter_gains_nothing(built, tmp_path):
    source = for_otter(EXAMPLES / "mlp" / "partly_wrong.ipynb", tmp_path / "cheat.ipynb")
    nb = nbformat.read(str(source), 4)
    nb.cells.insert(2, nbformat.v4.new_code_cell(TAMPER))
    nbformat.write(nb, str(source))
    with ThreadPoolExecutor(2) as pool:
        kernel, trusted = pool.map(lambda v: otter_run(bundle(built, "mlp", v), source, tmp_path / v),
                                   ["kernel", "trusted"])  # fmt: skip
    assert kernel["cross_entropy_loss"] == 10  # without the plugin the tampering works: the test can fail
    assert trusted["cross_entropy_loss"] == 4 and trusted["shuffle_and_split"] == 6
    assert trusted["approximate_function"] == trusted["Net"] == 10


def test_an_empty_submission_metadata_file_becomes_an_empty_object_and_a_real_one_is_kept(tmp_path):
    metadata = tmp_path / "submission_metadata.json"
    fix = EMPTY_METADATA_FIX.replace("/autograder/submission_metadata.json", str(metadata))
    metadata.write_text("")
    subprocess.run(["bash", "-c", fix], check=True)
    assert json.loads(metadata.read_text()) == {}
    metadata.write_text('{"users": [{"name": "Ada"}]}')
    subprocess.run(["bash", "-c", fix], check=True)
    assert json.loads(metadata.read_text()) == {"users": [{"name": "Ada"}]}


def test_otter_run_gives_trusted_scores_for_an_assignment_the_grading_host_does_not_have(tmp_path):
    """An assignment written with `autograder new` lives only in the course's repository and in the zip's wheel:
    the trusted-scores plugin grades with the folder the zip ships, and scores as the native grader does."""
    from autograder.authoring import new_assignment

    folder = new_assignment("week3", tmp_path / "course")
    [(student, zipped)] = build([folder], tmp_path / "dist", student_bundle=False).values()
    solution = tmp_path / "solution.ipynb"
    nbformat.write(fill_in_solutions(nbformat.read(str(student), 4), folder), str(solution))
    scores = otter_run(zipped, solution, tmp_path / "out")
    [native] = grade(folder, [solution], out_dir=None, options=GradingOptions()).results
    assert native.score == native.max_score > 0
    assert {e.id: scores[e.id] for e in native.exercises} == pytest.approx({e.id: e.score for e in native.exercises})
