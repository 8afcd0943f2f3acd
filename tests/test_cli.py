"""End to end through the real command: demo, grade, check, and the files they write."""

import csv
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest
import torch

from autograder import messages
from autograder.paths import PROJECT_ROOT

from .conftest import EXAMPLES, run_cli, write_notebook

EXPECTED = json.loads((EXAMPLES / "expected_scores.json").read_text())
DOCUMENTED_KEYS = {"submission", "assignment", "score", "max_score", "device", "duration_s", "errors", "exercises"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    proc = run_cli("demo", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def result(out, assignment, submission):
    return json.loads((out / assignment / submission.replace(".ipynb", ".json")).read_text())


@pytest.mark.parametrize(
    "assignment, submission",
    [(a, s) for a, subs in EXPECTED.items() for s in subs],
)
def test_demo_scores_match_the_expected_ones(demo, assignment, submission):
    data = result(demo[0], assignment, submission)
    got = {e["id"]: [e["score"], e["status"]] for e in data["exercises"]}
    assert got == EXPECTED[assignment][submission]


@pytest.mark.parametrize("assignment", sorted(EXPECTED))
def test_correct_submission_gets_every_point(demo, assignment):
    data = result(demo[0], assignment, "correct.ipynb")
    assert data["score"] == data["max_score"] > 0
    assert all(e["status"] == "passed" for e in data["exercises"])


@pytest.mark.parametrize("assignment", sorted(EXPECTED))
def test_template_gets_zero_with_failed_or_missing(demo, assignment):
    data = result(demo[0], assignment, "template.ipynb")
    assert data["score"] == 0
    assert {e["status"] for e in data["exercises"]} <= {"failed", "missing"}
    message = data["exercises"][0]["tests"][0]["message"]
    assert "NotImplementedError" in message and messages.NOT_IMPLEMENTED_HINT in message


@pytest.mark.parametrize("assignment", sorted(EXPECTED))
def test_broken_file_is_an_error_and_the_rest_is_graded(demo, assignment):
    data = result(demo[0], assignment, "broken.ipynb")
    assert data["score"] == 0 and {e["status"] for e in data["exercises"]} == {"error"}
    assert "broken.ipynb could not be read as a Jupyter notebook" in data["errors"][0]
    assert result(demo[0], assignment, "correct.ipynb")["score"] > 0


def test_partly_wrong_loses_exactly_its_wrong_exercises_with_expected_and_got(demo):
    data = result(demo[0], "mlp", "partly_wrong.ipynb")
    by_id = {e["id"]: e for e in data["exercises"]}
    assert by_id["approximate_function"]["status"] == by_id["Net"]["status"] == "passed"
    ce = by_id["cross_entropy_loss"]
    failed = [t for t in ce["tests"] if not t["passed"]]
    first = failed[0]["message"]
    # It sums instead of averaging: the message names both numbers and the likely cause.
    assert "Expected 0.346727 but got 0.693455" in first
    assert "averaged over the batch, not summed" in first
    split = [t for t in by_id["shuffle_and_split"]["tests"] if not t["passed"]]
    assert any("first 20% of the shuffled rows, not the last" in t["message"] for t in split)


def test_json_has_exactly_the_documented_shape(demo):
    data = result(demo[0], "decoding", "partly_wrong.ipynb")
    assert DOCUMENTED_KEYS <= set(data)
    assert data["assignment"] == "decoding" and data["submission"] == "partly_wrong.ipynb"
    assert data["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    for exercise in data["exercises"]:
        assert {"id", "score", "max_score", "status", "tests"} <= set(exercise)
        assert exercise["status"] in ("passed", "partial", "failed", "missing", "error", "timeout")
        for test in exercise["tests"]:
            assert {"name", "score", "max_score", "passed", "hidden", "message"} <= set(test)
            assert "[submission" not in test["name"]
    assert data["score"] == sum(e["score"] for e in data["exercises"])


def test_grades_csv_has_the_documented_header_and_rows(demo):
    with open(demo[0] / "spiking" / "grades.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["submission", "LIF", "LIFNet", "total", "max_total"]
    by_name = {r[0]: r for r in rows[1:]}
    assert set(by_name) == set(EXPECTED["spiking"])
    assert by_name["correct.ipynb"][1:] == ["50", "50", "100", "100"]


def test_demo_prints_tables_and_feedback(demo):
    stdout = demo[1]
    for name in ("mlp", "decoding", "spiking"):
        assert f"{name}:" in stdout
    assert "partly_wrong.ipynb / cross_entropy_loss (partial)" in stdout


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One real `grade` run, output to a pipe, under umask 027: the bundled decoding examples and three files that
    score nothing for different reasons (not a notebook, an empty notebook, a notebook of syntax errors)."""
    root = tmp_path_factory.mktemp("grade")
    extra = root / "more"
    write_notebook(extra / "empty.ipynb", [])
    write_notebook(extra / "syntax.ipynb", ["def DeepNetReLU(x:\n    return x", "class train\n    pass"])
    (root / "notes.txt").write_text("my answers are in the PDF")
    out = root / "out"
    command = ["grade", "decoding", str(EXAMPLES / "decoding"), str(extra), str(root / "notes.txt"), "-o", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", *command, "--jobs", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
        # not 022: the modes must follow the umask, not a fixed 0644; and workers, which run as another user, must
        # still reach the environment through the folders their sandbox makes
        preexec_fn=lambda: os.umask(0o027),
    )
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_grade_command_writes_results(graded):
    out, stdout = graded
    assert sorted(p.name for p in out.iterdir()) == [
        "broken.json",
        "correct.json",
        "empty.json",
        "grades.csv",
        "notes.json",
        "partly_wrong.json",
        "syntax.json",
        "template.json",
    ]
    assert "Results written to" in stdout


def test_grade_says_why_each_submission_lost_points(graded):
    stdout = graded[1]
    assert messages.LOST_POINTS in stdout
    assert "  notes.txt: notes.txt could not be read as a Jupyter notebook" in stdout
    assert (
        "  empty.ipynb (missing): 'DeepNetReLU', 'train', 'regularized_loss' are not defined in your notebook."
        in stdout
    )
    assert "  syntax.ipynb: Cell 1, line 1: SyntaxError: '(' was never closed" in stdout
    assert "  syntax.ipynb: Cell 2, line 1: SyntaxError: expected ':'" in stdout
    assert "  template.ipynb / DeepNetReLU (failed): Your code raised NotImplementedError" in stdout
    assert "correct.ipynb /" not in stdout  # nothing lost, nothing said


def test_plain_output_names_statuses_keeps_rows_whole_and_in_grades_csv_order(graded):
    out, stdout = graded
    rows = [line for line in stdout.splitlines() if line.startswith("| ") and ".json" not in line][2:]
    names = [row.split("|")[1].strip() for row in rows]
    assert names == [line.split(",")[0] for line in (out / "grades.csv").read_text().splitlines()[1:]]
    assert names == sorted(names) and len(names) == 7
    assert all(len(row.split("|")) == 7 for row in rows)  # submission, 3 exercises, total: no row wrapped
    assert "0 missing" in stdout and "0 error" in stdout and "0 failed" in stdout
    assert messages.LEGEND_PLAIN in stdout and "\x1b[" not in stdout


def test_every_file_grade_writes_follows_the_umask(graded):
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in graded[0].iterdir()}
    assert modes == dict.fromkeys(modes, 0o640)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error shown when CUDA is absent")
def test_cuda_without_cuda_is_a_clear_error(tmp_path):
    proc = run_cli("grade", "mlp", str(EXAMPLES / "mlp" / "correct.ipynb"), "--device", "cuda", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert messages.NO_CUDA in proc.stderr
    assert not any(tmp_path.iterdir())


def test_unknown_assignment_and_empty_input_are_tool_errors(tmp_path):
    proc = run_cli("grade", "nosuch", str(tmp_path), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "no assignment.toml" in proc.stderr
    proc = run_cli("grade", "mlp", str(tmp_path), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "No submissions" in proc.stderr
    proc = run_cli("grade", "mlp", "no/such/path", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and messages.NO_SUCH_INPUT.format(paths="no/such/path") in proc.stderr
    assert not (tmp_path / "o").exists()


def test_check_command_reports_public_checks_only(tmp_path):
    proc = run_cli("check", str(EXAMPLES / "mlp" / "partly_wrong.ipynb"))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Public checks of 'mlp'" in out
    assert "[FAIL] cross_entropy_loss: tutorial_example" in out
    assert "Expected 0.346727 but got 0.693455" in out
    assert "[PASS] Net: tutorial_output_shape" in out
    assert "random_batches" not in out  # hidden checks stay hidden


def test_plain_pytest_runs_the_checks_on_its_own(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "assignments/mlp/checks",
            "-p",
            "no:cacheprovider",
            "-q",
            "--submission",
            str(EXAMPLES / "mlp" / "correct.ipynb"),
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "correct.ipynb: 40/40" in proc.stdout


def test_python_dash_m_and_console_script_agree():
    script = shutil.which("autograder", path=os.path.dirname(sys.executable))
    assert script is not None
    listed = subprocess.run([script, "list"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "cross_entropy_loss (10)" in listed.stdout
    assert run_cli("list").stdout == listed.stdout


@pytest.mark.parametrize(
    "command", ["--help", "--version", "list", "grade --help", "check --help", "similarity --help"]
)
def test_the_commands_that_grade_nothing_import_no_torch(command):
    """Counted, not timed: `--help`, `list` and `--version` never import the grading machinery."""
    probe = (
        "import sys\nfrom autograder.cli import main\n"
        f"try:\n    main({command.split()!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'numpy', 'pytest', 'distributed') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout[-500:]


def test_a_check_starts_the_fork_server_before_importing_the_grader_so_that_the_two_overlap(tmp_path):
    """The order of the phases (autograder/phases.py), not their timing: the fork server is asked for before this
    process imports torch and the grader, and it is another process that prepares it."""
    log = tmp_path / "phases.log"
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "check", "mlp", str(EXAMPLES / "mlp" / "correct.ipynb"), "-e",
         "cross_entropy_loss"], capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "AUTOGRADER_PHASES": str(log)}, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0 and "1 of 1 public checks passed" in done.stdout, done.stdout + done.stderr
    lines = [line.split(" ", 2) for line in log.read_text().splitlines()]
    first = {}
    for stamp, pid, phase in lines:
        first.setdefault(phase, (float(stamp), int(pid)))
    main_pid = first["cli"][1]
    assert first["fork server started"][1] == main_pid and first["imported"][1] == main_pid
    assert first["cli"][0] < first["fork server started"][0] < first["imported"][0]
    assert first["fork server ready"][1] != main_pid  # the server imports in its own process, meanwhile
    assert first["fork server ready"][0] < first["worker loaded"][0]
    assert [phase for _, _, phase in lines].count("fork server started") == 1  # one server, reused
