"""From a Canvas download to importable grades, Gradescope results, feedback pages and a class report."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from autograder import lms, messages
from autograder.grader import grade
from autograder.lms import canvas, gradescope
from autograder.lms import moodle as moodle_platform
from autograder.options import GradingOptions
from autograder.results import ExerciseResult, SubmissionResult, write_json
from autograder.spec import load_assignment

from .conftest import EXAMPLES, run_cli

MLP = EXAMPLES / "mlp"
# A Canvas gradebook export (the roster): Frank's SIS User ID equals Bob's Canvas user id.
ROSTER = """Student,ID,SIS User ID,SIS Login ID,Section,MLP tutorial (4242)
    Points Possible,,,,,40
"Doe, Alice",1001,S-1,alice,Sec A,
"Roe, Bob",1002,S-2,bob,Sec A,
"Poe, Carol",1003,S-3,carol,Sec B,
"Moe, Dave",1004,S-4,dave,Sec B,
"Loe, Erin",1005,S-5,erin,Sec B,
"Foe, Frank",1006,1002,frank,Sec B,
"""
HELPERS = "def cross_entropy_loss(x, labels):\n    return 0\n"
# Canvas names files <sortable name, lower case, no punctuation>[_LATE]_<user id>_<attachment id>_<file name>.
# Carol uploaded her notebook and a helpers.py (a later file id); Erin's file name starts with digits and "_";
# Dave typed his answer into a text entry.
CANVAS_FILES = {
    "doealice_1001_9001_mlp.ipynb": MLP / "correct.ipynb",
    "roebob_LATE_1002_9002_mlp.ipynb": MLP / "partly_wrong.ipynb",
    "poecarol_1003_9010_mlp.ipynb": MLP / "correct.ipynb",
    "poecarol_1003_9011_helpers.py": HELPERS,
    "loeerin_1005_9005_01_mlp.ipynb": MLP / "template.ipynb",
    "moedave_1004_text.html": "<p>my answer</p>",
}


def write_zip(path: Path, members: dict[str, Path | str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content.read_bytes() if isinstance(content, Path) else content)
    return path


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    download = write_zip(root / "submissions.zip", CANVAS_FILES)
    (root / "roster.csv").write_text(ROSTER)
    intake = root / "intake"
    identities = lms.intake("canvas", download, intake, root / "roster.csv")
    results = root / "results"
    grade("mlp", [intake], out_dir=results, options=GradingOptions(timeout=30), jobs=1)
    return root, identities, results


def test_canvas_intake_names_students_by_user_and_file_id_and_grades_the_notebook(course):
    root, identities, _ = course
    by_key = {i.key: i for i in identities}
    assert sorted(by_key) == ["doealice_1001", "loeerin_1005", "poecarol_1003", "roebob_1002"]
    carol = by_key["poecarol_1003"]
    assert carol.file == "mlp.ipynb" and carol.skipped == ("helpers.py",) and carol.attachment_id == "9010"
    assert carol.user_id == "1003" and carol.name_slug == "poecarol"
    assert by_key["loeerin_1005"].file == "01_mlp.ipynb" and by_key["loeerin_1005"].attachment_id == "9005"
    assert by_key["roebob_1002"].late and not by_key["doealice_1001"].late
    alice = by_key["doealice_1001"]
    assert (alice.email, alice.sis_id, alice.login, alice.name) == ("", "S-1", "alice", "Doe, Alice")
    assert by_key["roebob_1002"].login == "bob"  # by Canvas user id, never by Frank's equal SIS id
    notebooks = sorted(p.name for p in (root / "intake").iterdir() if p.name != lms.IDENTITIES_FILE)
    assert notebooks == ["doealice_1001.ipynb", "loeerin_1005.ipynb", "poecarol_1003.ipynb", "roebob_1002.ipynb"]


def test_canvas_intake_says_what_it_skipped(course, tmp_path):
    root, _, _ = course
    done = run_cli("intake", "canvas", str(root / "submissions.zip"), "--out", str(tmp_path / "in"))
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert messages.SKIPPED_FILES.format(key="poecarol_1003", file="mlp.ipynb", skipped="helpers.py") in out
    assert "4 students' submissions unpacked" in out


def test_canvas_anonymous_grading_download_is_taken_and_kept_out_of_the_gradebook(tmp_path):
    download = write_zip(
        tmp_path / "anon.zip",
        {
            "anon_x7k2p_9101_mlp.ipynb": MLP / "correct.ipynb",
            "LATE_anon_12345_9102_2_mlp.ipynb": MLP / "template.ipynb",
        },
    )
    identities = {i.key: i for i in lms.intake("canvas", download, tmp_path / "in")}
    assert sorted(identities) == ["anon_12345", "anon_x7k2p"]
    late = identities["anon_12345"]
    assert late.late and late.anonymous_id == "12345" and late.file == "2_mlp.ipynb" and not late.user_id
    rows = [lms.GradeRow(i, fake_result(i.key, 10)) for i in identities.values()]
    with pytest.raises(lms.LmsError, match="anon_12345, anon_x7k2p: anonymous submissions cannot go"):
        canvas.gradebook_csv(rows, "MLP (1)", 40)


def test_canvas_export_is_a_gradebook_canvas_imports(course):
    root, _, results = course
    out = root / "canvas.csv"
    done = run_cli("export", "canvas", str(results), "--out", str(out), "--identities",
                   str(root / "intake" / lms.IDENTITIES_FILE), "--roster", str(root / "roster.csv"),
                   "--column", "MLP tutorial (4242)")  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "MLP tutorial (4242)"]
    assert rows[1][0].strip() == "Points Possible" and rows[1][5] == "40"
    grades = {row[3]: row for row in rows[2:]}
    assert grades["alice"] == ["Doe, Alice", "1001", "S-1", "alice", "Sec A", "40"]
    assert grades["bob"][5] == "30"  # late: Canvas applies its own late policy
    assert grades["frank"][5] == ""  # his SIS id is Bob's Canvas id: Bob's grade stays Bob's
    assert grades["carol"][5] == "40"  # her notebook, not her helpers.py
    assert grades["erin"][5] == "0"
    assert grades["dave"][5] == ""  # a text entry, no notebook: left blank, not a zero
    assert len(rows) == 2 + 6


def fake_result(submission: str, score: float) -> SubmissionResult:
    """A result as `autograder grade` writes it, for export tests that need no grading."""
    status = "passed" if score == 10 else "partial"
    exercise = ExerciseResult("cross_entropy_loss", score, 10.0, status, ())
    return SubmissionResult(f"{submission}.ipynb", "mlp", score, 10.0, "cpu", 0.1, (), (exercise,))


def write_results(folder: Path, scores: dict[str, float]) -> Path:
    for stem, score in scores.items():
        write_json(folder, stem, fake_result(stem, score))
    return folder


# Moodle's "Download all submissions": a folder per participant, <Full Name>_<participant id>_assignsubmission_file
# (Moodle 4.1 on) or with a trailing "_" (3.1 to 4.0); a team's folder is <group>_<group id> (4.1 on) or
# <group>-<the submitter's full name>_<participant id>_ (before); Carol typed an online text, no file.
MOODLE_FILES = {
    "Alice Doe_501_assignsubmission_file/mlp.ipynb": MLP / "correct.ipynb",
    "Bob Roe_502_assignsubmission_file_/mlp.ipynb": MLP / "partly_wrong.ipynb",
    "Bob Roe_502_assignsubmission_file_/.ipynb_checkpoints/mlp-checkpoint.ipynb": MLP / "template.ipynb",
    "Carol Poe_503_assignsubmission_onlinetext/onlinetext.html": "<p>see attached</p>",
    "Team Red_77_assignsubmission_file/mlp.ipynb": MLP / "correct.ipynb",
    "Team Blue-Erin Loe_505_assignsubmission_file_/mlp.ipynb": MLP / "template.ipynb",
}
# Moodle's participants download (identity fields shown: ID number, Email address), with each one's groups.
MOODLE_ROSTER = """First name,Last name,ID number,Email address,Roles,Groups,Last access to course
Alice,Doe,S-1,alice@uni.example,Student,,Now
Bob,Roe,S-2,bob@uni.example,Student,,Now
Carol,Poe,S-3,carol@uni.example,Student,,Now
Dave,Moe,S-4,dave@uni.example,Student,Team Red,Now
Gina,Hoe,S-7,gina@uni.example,Student,"Team Red, Tutorial 2",Now
Erin,Loe,S-5,erin@uni.example,Student,Team Blue,Now
Hal,Koe,S-8,hal@uni.example,Student,Team Blue,Now
Ivy,Noe,S-9,ivy@uni.example,Student,,Never
"""


@pytest.fixture(scope="module")
def moodle(tmp_path_factory):
    root = tmp_path_factory.mktemp("moodle")
    write_zip(root / "download.zip", MOODLE_FILES)
    (root / "roster.csv").write_text(MOODLE_ROSTER)
    identities = {i.key: i for i in lms.intake("moodle", root / "download.zip", root / "in")}
    # what `autograder grade` makes of those notebooks (scores of a 10-point assignment, for the export)
    write_results(
        root / "results", {"Alice_Doe_501": 10, "Bob_Roe_502": 4, "Team_Red_77": 10, "Team_Blue-Erin_Loe_505": 0}
    )
    return root, identities


def test_moodle_intake_reads_folders_old_and_new_and_skips_editor_copies(moodle):
    root, identities = moodle
    assert sorted(identities) == [
        "Alice_Doe_501",
        "Bob_Roe_502",
        "Carol_Poe_503",
        "Team_Blue-Erin_Loe_505",
        "Team_Red_77",
    ]
    bob = identities["Bob_Roe_502"]
    assert (bob.name, bob.participant_id, bob.file) == ("Bob Roe", "502", "mlp.ipynb")
    assert bob.skipped == (".ipynb_checkpoints/mlp-checkpoint.ipynb",)
    assert (root / "in" / "Bob_Roe_502.ipynb").read_bytes() == (MLP / "partly_wrong.ipynb").read_bytes()
    assert identities["Carol_Poe_503"].file == "" and identities["Carol_Poe_503"].skipped == ("onlinetext.html",)


def test_moodle_flat_and_blind_marking_downloads(tmp_path):
    flat = write_zip(tmp_path / "flat.zip", {"Alice Doe_501_assignsubmission_file_mlp.ipynb": MLP / "correct.ipynb"})
    [alice] = lms.intake("moodle", flat, tmp_path / "flat")
    assert (alice.key, alice.name, alice.participant_id, alice.file) == (
        "Alice_Doe_501",
        "Alice Doe",
        "501",
        "mlp.ipynb",
    )
    blind = write_zip(
        tmp_path / "blind.zip", {"Participant_601_assignsubmission_file/mlp.ipynb": MLP / "correct.ipynb"}
    )
    [anonymous] = lms.intake("moodle", blind, tmp_path / "blind")
    assert (anonymous.key, anonymous.name, anonymous.participant_id) == ("Participant_601", "", "601")


def test_moodle_export_joins_the_roster_maps_teams_and_leaves_non_submitters_out(moodle):
    root, _ = moodle
    out = root / "moodle.csv"
    done = run_cli("export", "moodle", str(root / "results"), "--identities", str(root / "in" / lms.IDENTITIES_FILE),
                   "--roster", str(root / "roster.csv"), "--key", "email", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0]) == ["Email address", "mlp", "Feedback"]
    grades = {row["Email address"]: row["mlp"] for row in rows}
    assert grades == {
        "alice@uni.example": "10",
        "bob@uni.example": "4",
        "dave@uni.example": "10",  # Team Red's submission counts for each member
        "gina@uni.example": "10",
        "erin@uni.example": "0",  # Team Blue, named by its submitter before Moodle 4.1
        "hal@uni.example": "0",
    }  # Carol (no file) and Ivy (nothing): left out, since a blank clears a Moodle grade
    assert messages.MOODLE_BLANK_LEFT_OUT.format(n=2) in " ".join(done.stdout.split())


def test_moodle_export_by_idnumber_with_zeros_for_non_submitters(moodle):
    root, identities = moodle
    rows = lms.grade_rows(
        lms.load_results(root / "results"), list(identities.values()), lms.load_roster(root / "roster.csv")
    )
    table = list(csv.reader(io.StringIO(moodle_platform.grades_csv(rows, "mlp", key="idnumber", missing="0"))))
    assert table[0] == ["ID number", "mlp", "Feedback"]
    grades = {row[0]: row[1:] for row in table[1:]}
    assert grades["S-3"] == ["0", "No submission."] and grades["S-9"] == ["0", "No submission."]
    assert grades["S-2"] == ["4", "4/10: cross_entropy_loss 4/10"]
    assert len(grades) == 8


def test_moodle_without_a_roster_says_where_emails_come_from(moodle):
    root, identities = moodle
    rows = lms.grade_rows(lms.load_results(root / "results"), list(identities.values()))
    with pytest.raises(lms.LmsError, match="Alice_Doe_501: no email for this student; pass Moodle's grade export"):
        moodle_platform.grades_csv(rows, "mlp", key="email")


def test_moodle_blind_marking_fills_in_the_grading_worksheet(tmp_path):
    blind = write_zip(
        tmp_path / "blind.zip", {"Participant_601_assignsubmission_file/mlp.ipynb": MLP / "correct.ipynb"}
    )
    identities = lms.intake("moodle", blind, tmp_path / "in")
    rows = lms.grade_rows(lms.load_results(write_results(tmp_path / "results", {"Participant_601": 7})), identities)
    text = moodle_platform.worksheet(rows, now=datetime(2026, 11, 3, 10, 0))
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["Identifier", "Full name", "Grade", "Last modified (grade)", "Feedback comments"]
    assert table[1] == ["Participant 601", "", "7", "2026-11-03 10:00:00", "7/10: cross_entropy_loss 7/10"]


def test_roster_ids_of_different_kinds_never_match_each_other():
    bob = lms.Identity(key="roebob_1002", user_id="1002")
    frank = lms.Identity(key="frank", name="Foe, Frank", user_id="1006", sis_id="1002", login="frank")
    roster = [lms.Identity(key="bob", name="Roe, Bob", user_id="1002", sis_id="S-2", login="bob"), frank]
    assert [p.login for p in lms.RosterIndex(roster).find(bob)] == ["bob"]
    assert lms.RosterIndex([frank]).find(bob) == []
    rows = lms.grade_rows({"roebob_1002": fake_result("roebob_1002", 9)}, [bob], [frank])
    assert [(r.identity.key, r.result is not None) for r in rows] == [("roebob_1002", True), ("frank", False)]


def test_gradescope_results_have_gradescopes_shape(course):
    root, _, results = course
    out = root / "gradescope"
    done = run_cli("export", "gradescope", str(results), "--out", str(out))
    assert done.returncode == 0, done.stderr
    data = json.loads((out / "roebob_1002" / "results.json").read_text())
    assert set(data) == {"score", "output", "visibility", "stdout_visibility", "tests", "extra_data"}
    assert data["extra_data"]["missing_walls"] == []  # for the instructor: every wall held (Gradescope keeps it)
    assert data["score"] == 30
    assert abs(sum(t["score"] for t in data["tests"]) - data["score"]) < 1e-6
    for test in data["tests"]:
        assert set(test) == {"name", "score", "max_score", "visibility", "output"}
        assert test["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
        assert 0 <= test["score"] <= test["max_score"]
    visibilities = {t["visibility"] for t in data["tests"]}
    assert visibilities == {"visible", "after_published"}  # public checks now, hidden ones once published
    failed = [t for t in data["tests"] if t["score"] < t["max_score"]]
    assert failed and all(t["output"] for t in failed)


def test_gradescope_intake_reads_the_metadata_and_keeps_the_latest(tmp_path):
    download = tmp_path / "export.zip"
    metadata = """
submission_1:
  :submitters:
  - :name: Alice Doe
    :sid: S-1
    :email: alice@uni.example
  :created_at: 2026-11-01 10:00:00.000000000 -05:00
submission_2:
  :submitters:
  - :name: Alice Doe
    :sid: S-1
    :email: alice@uni.example
  :created_at: 2026-11-02 09:00:00.000000000 -05:00
submission_3:
  :submitters:
  - :name: Bob Roe
    :sid: S-2
    :email: bob@uni.example
  :created_at: 2026-11-01 12:00:00.000000000 -05:00
"""
    with zipfile.ZipFile(download, "w") as archive:
        archive.writestr("assignment_77_export/submission_metadata.yml", metadata)
        archive.writestr("assignment_77_export/submission_1/mlp.ipynb", (MLP / "broken.ipynb").read_bytes())
        # Jupyter's autosave copy, listed first in the zip, is no submission
        checkpoint = "assignment_77_export/submission_2/.ipynb_checkpoints/mlp-checkpoint.ipynb"
        archive.writestr(checkpoint, (MLP / "template.ipynb").read_bytes())
        archive.writestr("assignment_77_export/submission_2/mlp.ipynb", (MLP / "correct.ipynb").read_bytes())
        archive.writestr("assignment_77_export/submission_3/mlp.ipynb", (MLP / "template.ipynb").read_bytes())
    identities = lms.intake("gradescope", download, tmp_path / "in")
    by_sid = {i.sis_id: i for i in identities}
    assert sorted(by_sid) == ["S-1", "S-2"]
    assert by_sid["S-1"].submission_id == "2" and by_sid["S-1"].email == "alice@uni.example"
    assert (tmp_path / "in" / "S-1.ipynb").read_bytes() == (MLP / "correct.ipynb").read_bytes()
    assert by_sid["S-1"].skipped == (".ipynb_checkpoints/mlp-checkpoint.ipynb",)


def test_a_download_that_is_not_from_canvas_is_named_in_the_error(tmp_path):
    download = tmp_path / "mixed.zip"
    with zipfile.ZipFile(download, "w") as archive:
        archive.writestr("homework.ipynb", (MLP / "correct.ipynb").read_bytes())
    done = run_cli("intake", "canvas", str(download), "--out", str(tmp_path / "in"))
    assert done.returncode == 2
    error = " ".join(done.stderr.split())
    assert "mixed.zip: 'homework.ipynb' is not named as Canvas names submissions" in error
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    done = run_cli("intake", "gradescope", str(tmp_path / "junk.zip"), "--out", str(tmp_path / "in"))
    assert done.returncode == 2 and "junk.zip: not a readable zip archive" in done.stderr


def test_run_autograder_grades_the_notebook_not_a_helper_or_an_autosave_copy(tmp_path):
    submission = tmp_path / "autograder" / "submission"
    (submission / ".ipynb_checkpoints").mkdir(parents=True)
    shutil.copy(MLP / "partly_wrong.ipynb", submission / "mlp.ipynb")
    shutil.copy(MLP / "correct.ipynb", submission / ".ipynb_checkpoints" / "mlp-checkpoint.ipynb")
    (submission / "helpers.py").write_text(HELPERS)
    results_file = tmp_path / "autograder" / "results" / "results.json"
    done = run_cli("gradescope", "mlp", "--submission-dir", str(submission), "--results-file", str(results_file))
    assert done.returncode == 0, done.stderr
    data = json.loads(results_file.read_text())
    assert data["score"] == 30 and len(data["tests"]) > 10
    skipped = ".ipynb_checkpoints/mlp-checkpoint.ipynb, helpers.py"
    assert data["output"].startswith(messages.GRADESCOPE_SKIPPED.format(file="mlp.ipynb", skipped=skipped))


def test_a_pdf_only_gradescope_submission_gets_a_zero_and_a_message(tmp_path):
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "report.pdf").write_bytes(b"%PDF-1.4")
    results_file = tmp_path / "results" / "results.json"
    done = run_cli("gradescope", "mlp", "--submission-dir", str(submission), "--results-file", str(results_file))
    assert done.returncode == 0, done.stderr
    data = json.loads(results_file.read_text())
    assert data["score"] == 0 and data["tests"] == []
    assert data["output"] == messages.GRADESCOPE_NOTHING_GRADABLE.format(files="report.pdf", expected="mlp")


def _fake_commands(folder: Path, scripts: dict[str, str]) -> dict[str, str]:
    """Executables that stand in for real ones; the PATH to find them first."""
    import os

    folder.mkdir(parents=True, exist_ok=True)
    for name, body in scripts.items():
        (folder / name).write_text(f"#!/usr/bin/env bash\n{body}\n")
        (folder / name).chmod(0o755)
    return {**os.environ, "PATH": f"{folder}:/usr/bin:/bin"}


def test_run_autograder_writes_results_json_even_when_the_grader_fails(tmp_path):
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    (root / "source" / "assignment.env").write_text("ASSIGNMENT=mlp\n")
    env = _fake_commands(tmp_path / "bin", {"autograder": "echo 'Traceback: boom' >&2; exit 3"})
    script = gradescope.RUNNER_DIR / "run_autograder"
    done = subprocess.run(["bash", str(script)], env={**env, "AUTOGRADER_ROOT": str(root)}, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0
    data = json.loads((root / "results" / "results.json").read_text())
    assert data["score"] == 0 and "could not run on your submission (exit status 3)" in data["output"]


def test_setup_sh_installs_pip_and_venv_first_and_never_system_wide(tmp_path):
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    log = tmp_path / "calls.log"
    venv_python = tmp_path / "venv-python"
    venv_python.write_text(f'#!/usr/bin/env bash\necho "venv-python $*" >> {log}\n')
    venv_python.chmod(0o755)
    python3 = f"""echo "python3 $*" >> {log}
if [ "$1" = -c ]; then exit 1; fi  # this image has neither ensurepip nor venv
mkdir -p $3/bin && cp {venv_python} $3/bin/python"""
    env = _fake_commands(tmp_path / "bin", {"python3": python3, "apt-get": f'echo "apt-get $*" >> {log}',
                                            "pip3": f'echo "pip3 $*" >> {log}; exit 1'})  # fmt: skip
    script = gradescope.RUNNER_DIR / "setup.sh"
    done = subprocess.run(["bash", str(script)], env={**env, "AUTOGRADER_ROOT": str(root)}, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert "apt-get install -y --no-install-recommends python3-venv python3-pip" in calls
    assert f"python3 -m venv {root}/venv" in calls
    installs = [c for c in calls if " install " in f" {c} " and not c.startswith("apt-get")]
    assert installs and all(c.startswith("venv-python -m pip install") for c in installs)
    assert any("torch==2.14.1" in c and "download.pytorch.org/whl/cpu" in c for c in installs)
    assert not any(c.startswith("pip3") for c in calls)


def test_gradescope_zip_runs_the_native_grader_through_run_autograder(tmp_path):
    import os
    import sys

    bundle = tmp_path / "autograder.zip"
    assert run_cli("gradescope-zip", "mlp", "--out", str(bundle)).returncode == 0
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        assert {"setup.sh", "run_autograder", "assignment.env", "pyproject.toml"} <= names
        assert "assignments/mlp/checks/test_cross_entropy_loss.py" in names
        assert "reference_solutions/mlp.py" in names
        archive.extractall(root / "source")
    # what setup.sh's `pip install -e .` builds first: the project's metadata from the zip alone (it once failed on
    # Gradescope: the zip lacked a folder pyproject.toml's wheel includes)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w",
               str(tmp_path / "wheel"), str(root / "source")]  # fmt: skip
    built = subprocess.run(command, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    (root / "submission").mkdir()
    shutil.copy(MLP / "partly_wrong.ipynb", root / "submission" / "notebook.ipynb")
    # The `autograder` on PATH is this checkout's (setup.sh would install the zip's copy on Gradescope).
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads((root / "results" / "results.json").read_text())["score"] == 30


MLP_TITLE = load_assignment("mlp").title
FORBIDDEN_IN_FEEDBACK = ("def test_", "assert ", "import pytest", "@pytest", "reference.")


def test_feedback_pages_show_scores_and_messages_but_no_check_code(course):
    root, _, results = course
    out = root / "feedback"
    done = run_cli("feedback", str(results), "--out", str(out))
    assert done.returncode == 0, done.stderr
    markdown = (out / "roebob_1002.md").read_text()
    page = (out / "roebob_1002.html").read_text()
    assert "**Score: 30 / 40**" in markdown
    assert "| cross_entropy_loss | 4 / 10 | partly right |" in markdown
    bob = lms.load_results(results)["roebob_1002"]
    for check in bob.exercise("cross_entropy_loss").tests:
        if not check.passed:
            assert check.message.strip().splitlines()[0] in markdown
    assert "hidden check" in markdown
    for text in (markdown, page):
        assert not any(bad in text for bad in FORBIDDEN_IN_FEEDBACK)
    assert "<td class='partial'>partly right</td>" in page
    assert "Score: 40 / 40" in (out / "doealice_1001.md").read_text()
    assert markdown.startswith(f"# mlp: {MLP_TITLE}: feedback for roebob_1002.ipynb")  # the file, without names


def test_feedback_pages_are_titled_by_the_students_name(course, tmp_path):
    root, _, results = course
    done = run_cli("feedback", str(results), "--out", str(tmp_path), "--identities",
                   str(root / "intake" / lms.IDENTITIES_FILE))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "roebob_1002.md").read_text().startswith(f"# mlp: {MLP_TITLE}: feedback for Roe, Bob")
    page = (tmp_path / "roebob_1002.html").read_text()
    assert f"<title>mlp: {MLP_TITLE}: feedback for Roe, Bob</title>" in page


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    assert found, "the class report is tested in a real browser: install Debian's chromium (.ci/run does)"
    return found


def test_class_report_renders_in_a_headless_browser(course):
    root, _, results = course
    report = root / "report.html"
    done = run_cli("report", str(results), "--out", str(report))
    assert done.returncode == 0, done.stderr
    browser = _chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"]
    dom = subprocess.run([browser, *flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert "mlp: Multi-layer perceptrons" in dom.stdout
    assert "4 submissions; mean 27.5, median 35 of 40; 2 with full marks." in dom.stdout
    assert dom.stdout.count("data:image/png;base64,") == 2
    assert "<td>cross_entropy_loss</td>" in dom.stdout and "%</td>" in dom.stdout
    shot = root / "report.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1000,1400", report.as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    from matplotlib import image

    pixels = image.imread(str(shot))[:, :, :3]
    histogram_blue = (abs(pixels[:, :, 0] - 0x3B / 255) < 0.05) & (abs(pixels[:, :, 2] - 0xA5 / 255) < 0.05)
    failure_red = (abs(pixels[:, :, 0] - 0xAA / 255) < 0.06) & (pixels[:, :, 1] < 0.3) & (pixels[:, :, 2] < 0.3)
    assert histogram_blue.sum() > 500, "the score histogram did not render"
    assert failure_red.sum() > 200, "the failure-rate plot did not render"


def test_class_report_failure_rates_name_the_common_mistakes(course):
    _, _, results = course
    from autograder.pages import check_failure_rates

    rates = check_failure_rates(list(lms.load_results(results).values()))
    worst = rates[0]
    assert worst[2] >= 2  # failed by bob (partly wrong) and erin (template)
    assert all(rates[i][2] / rates[i][3] >= rates[i + 1][2] / rates[i + 1][3] for i in range(len(rates) - 1))


# -- a platform of the course's own: one module and one registry line ---------------------------------------------
COURSE_PLATFORM = '''
"""A made-up LMS whose download holds <login>/<file> and whose gradebook takes "login;points" lines."""
from pathlib import PurePosixPath

from autograder.lms.identity import Identity
from autograder.lms.intake import Student, files_of

title = "Coursebook"
download = "submissions zip"


def students(archive, limits):
    found = {}
    for info in files_of(archive):
        login, name = PurePosixPath(info.filename).parts
        found.setdefault(login, Student(Identity(key=login, login=login))).files.append((name, info.filename))
    return list(found.values())


def export(request):
    lines = [f"{stem};{result.score:g}" for stem, result in sorted(request.results.items())]
    request.out.write_text("\\n".join(lines) + "\\n")
    return [f"{len(lines)} grades for Coursebook in {request.out}"]
'''


def test_a_new_lms_is_one_module_and_one_registry_line(tmp_path, monkeypatch, capsys):
    from autograder import cli

    (tmp_path / "coursebook.py").write_text(COURSE_PLATFORM)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(lms.PLATFORMS, "coursebook", "coursebook")  # the one line
    download = write_zip(tmp_path / "download.zip", {"ada/mlp.ipynb": MLP / "correct.ipynb",
                                                     "bob/mlp.ipynb": MLP / "partly_wrong.ipynb"})  # fmt: skip
    assert cli.main(["intake", "coursebook", str(download), "-o", str(tmp_path / "in")]) == 0
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["ada.ipynb", "bob.ipynb", "identities.json"]
    grade("mlp", sorted((tmp_path / "in").glob("*.ipynb")), out_dir=tmp_path / "out", options=GradingOptions())
    assert cli.main(["export", "coursebook", str(tmp_path / "out"), "-o", str(tmp_path / "grades.txt")]) == 0
    ada, bob = (tmp_path / "grades.txt").read_text().splitlines()
    assert ada == "ada;40" and bob.startswith("bob;") and float(bob.split(";")[1]) < 40
    assert "2 grades for Coursebook" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # a platform not in the registry is not a choice
        cli.main(["export", "blackboard", str(tmp_path / "out"), "-o", str(tmp_path / "x")])
    assert "invalid choice: 'blackboard' (choose from 'canvas', 'moodle', 'gradescope', 'coursebook')" in (
        capsys.readouterr().err
    )
