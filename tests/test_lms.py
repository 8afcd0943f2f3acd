"""From a Canvas download to importable grades, Gradescope results, feedback pages and a class report."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from autograder import lms
from autograder.grader import grade
from autograder.options import GradingOptions

from .conftest import EXAMPLES, run_cli

MLP = EXAMPLES / "mlp"
ROSTER = """Student,ID,SIS User ID,SIS Login ID,Section,Email
"Doe, Alice",1001,S-1,alice,Sec A,alice@uni.example
"Roe, Bob",1002,S-2,bob,Sec A,bob@uni.example
"Poe, Carol",1003,S-3,carol,Sec B,carol@uni.example
"Moe, Dave",1004,S-4,dave,Sec B,dave@uni.example
"Loe, Erin",1005,S-5,erin,Sec B,erin@uni.example
"""
# Canvas names: <login>[_late]_<user id>_<submission id>_<file>. Carol submitted twice: the later one counts.
CANVAS_FILES = {
    "alice_1001_5001_mlp.ipynb": "correct.ipynb",
    "bob_late_1002_5002_mlp.ipynb": "partly_wrong.ipynb",
    "carol_1003_5003_mlp.ipynb": "broken.ipynb",
    "carol_1003_5010_mlp-1.ipynb": "correct.ipynb",
    "erin_1005_5005_mlp.ipynb": "template.ipynb",
}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    download = root / "submissions.zip"
    with zipfile.ZipFile(download, "w") as archive:
        for name, example in CANVAS_FILES.items():
            archive.writestr(name, (MLP / example).read_bytes())
    (root / "roster.csv").write_text(ROSTER)
    intake = root / "intake"
    identities = lms.intake("canvas", download, intake, root / "roster.csv")
    results = root / "results"
    grade("mlp", [intake], out_dir=results, options=GradingOptions(timeout=30), jobs=1)
    return root, identities, results


def test_canvas_intake_keeps_the_latest_submission_and_marks_late_ones(course):
    root, identities, _ = course
    by_login = {i.login: i for i in identities}
    assert sorted(by_login) == ["alice", "bob", "carol", "erin"]
    assert by_login["carol"].submission_id == "5010"
    assert by_login["bob"].late and not by_login["alice"].late
    assert by_login["alice"].email == "alice@uni.example" and by_login["alice"].sis_id == "S-1"
    assert by_login["alice"].name == "Doe, Alice"
    notebooks = sorted(p.name for p in (root / "intake").glob("*.ipynb"))
    assert notebooks == ["alice_1001.ipynb", "bob_1002.ipynb", "carol_1003.ipynb", "erin_1005.ipynb"]


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
    assert grades["carol"][5] == "40"  # the latest of two submissions
    assert grades["erin"][5] == "0"
    assert grades["dave"][5] == ""  # on the roster, never submitted: left blank, not a zero
    assert len(rows) == 2 + 5


def test_moodle_export_is_keyed_by_email_with_feedback(course):
    root, _, results = course
    out = root / "moodle.csv"
    done = run_cli("export", "moodle", str(results), "--out", str(out), "--identities",
                   str(root / "intake" / lms.IDENTITIES_FILE), "--roster", str(root / "roster.csv"),
                   "--missing", "0")  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0]) == ["Email address", "mlp", "Feedback"]
    grades = {row["Email address"]: row for row in rows}
    assert grades["bob@uni.example"]["mlp"] == "30"
    assert "cross_entropy_loss 4/10" in grades["bob@uni.example"]["Feedback"]
    assert grades["dave@uni.example"]["mlp"] == "0"
    assert grades["dave@uni.example"]["Feedback"] == "No submission."
    assert len(grades) == 5


def test_moodle_by_username_and_a_roster_without_emails_is_a_clear_error(course, tmp_path):
    root, _, results = course
    by_username = lms.moodle_csv(
        lms.grade_rows(lms.load_results(results), lms.load_identities(root / "intake" / lms.IDENTITIES_FILE)),
        "mlp",
        key="username",
    )
    assert by_username.splitlines()[0] == "Username,mlp,Feedback"
    assert "alice,40," in by_username
    roster = tmp_path / "roster.csv"
    roster.write_text("Name,Email\nNo One,\n")
    with pytest.raises(lms.LmsError, match="roster.csv, line 2: a student with no id"):
        lms.load_roster(roster)


def test_gradescope_results_have_gradescopes_shape(course):
    root, _, results = course
    out = root / "gradescope"
    done = run_cli("export", "gradescope", str(results), "--out", str(out))
    assert done.returncode == 0, done.stderr
    data = json.loads((out / "bob_1002" / "results.json").read_text())
    assert set(data) == {"score", "output", "visibility", "stdout_visibility", "tests"}
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
        archive.writestr("assignment_77_export/submission_2/mlp.ipynb", (MLP / "correct.ipynb").read_bytes())
        archive.writestr("assignment_77_export/submission_3/mlp.ipynb", (MLP / "template.ipynb").read_bytes())
    identities = lms.intake("gradescope", download, tmp_path / "in")
    by_sid = {i.sis_id: i for i in identities}
    assert sorted(by_sid) == ["S-1", "S-2"]
    assert by_sid["S-1"].submission_id == "2" and by_sid["S-1"].email == "alice@uni.example"
    assert (tmp_path / "in" / "S-1.ipynb").read_bytes() == (MLP / "correct.ipynb").read_bytes()


def test_a_download_that_is_not_from_canvas_is_named_in_the_error(tmp_path):
    download = tmp_path / "mixed.zip"
    with zipfile.ZipFile(download, "w") as archive:
        archive.writestr("homework.ipynb", (MLP / "correct.ipynb").read_bytes())
    done = run_cli("intake", "canvas", str(download), "--out", str(tmp_path / "in"))
    assert done.returncode == 2
    assert "mixed.zip" in done.stderr and "'homework.ipynb' is not named as Canvas names submissions" in done.stderr
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    done = run_cli("intake", "gradescope", str(tmp_path / "junk.zip"), "--out", str(tmp_path / "in"))
    assert done.returncode == 2 and "junk.zip: not a readable zip archive" in done.stderr


def test_run_autograder_grades_the_submission_gradescope_provides(tmp_path):
    submission = tmp_path / "autograder" / "submission"
    submission.mkdir(parents=True)
    shutil.copy(MLP / "partly_wrong.ipynb", submission / "mlp.ipynb")
    results_file = tmp_path / "autograder" / "results" / "results.json"
    done = run_cli("gradescope", "mlp", "--submission-dir", str(submission), "--results-file", str(results_file))
    assert done.returncode == 0, done.stderr
    data = json.loads(results_file.read_text())
    assert data["score"] == 30 and len(data["tests"]) > 10


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
    (root / "submission").mkdir()
    shutil.copy(MLP / "partly_wrong.ipynb", root / "submission" / "notebook.ipynb")
    # The `autograder` on PATH is this checkout's (setup.sh would install the zip's copy on Gradescope).
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads((root / "results" / "results.json").read_text())["score"] == 30


FORBIDDEN_IN_FEEDBACK = ("def test_", "assert ", "import pytest", "@pytest", "reference.")


def test_feedback_pages_show_scores_and_messages_but_no_check_code(course):
    root, _, results = course
    out = root / "feedback"
    done = run_cli("feedback", str(results), "--out", str(out))
    assert done.returncode == 0, done.stderr
    markdown = (out / "bob_1002.md").read_text()
    page = (out / "bob_1002.html").read_text()
    assert "**Score: 30 / 40**" in markdown
    assert "| cross_entropy_loss | 4 / 10 | partly right |" in markdown
    bob = lms.load_results(results)["bob_1002"]
    for check in bob.exercise("cross_entropy_loss").tests:
        if not check.passed:
            assert check.message.strip().splitlines()[0] in markdown
    assert "hidden check" in markdown
    for text in (markdown, page):
        assert not any(bad in text for bad in FORBIDDEN_IN_FEEDBACK)
    assert "<td class='partial'>partly right</td>" in page
    assert "Score: 40 / 40" in (out / "alice_1001.md").read_text()


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
