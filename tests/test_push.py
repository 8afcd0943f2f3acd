"""`autograder push`: scores and feedback into Canvas (through canvasapi) and Moodle (its REST web services).

The real clients talk HTTP to stand-in servers on loopback (bench/lms_servers.py), shaped as the platforms'
documentation shows their endpoints; nothing is monkeypatched. Each test reads the stand-in's gradebook after the
command: every matched student's score and comment exactly once, no one else touched, a hand-changed grade kept,
and the same end state after every injected fault and a rerun.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import messages
from autograder.lms.export import GradeRow
from autograder.lms.identity import Identity, write_identities
from autograder.lms.push import MARKER, Connection, Current, Journal, Person, Post, checked_url, plan
from autograder.results import CheckResult, ExerciseResult, SubmissionResult, write_json
from bench.lms_servers import CanvasStandIn, Faults, MoodleStandIn, Student

from .conftest import PROJECT_ROOT

TOKEN = "7~s3cr3tT0kenThatMustNeverBeWritten"
EXERCISES = (("approximate_function", 10), ("Net", 10), ("cross_entropy_loss", 10), ("shuffle_and_split", 10))
LOSS_MESSAGE = (
    "cross_entropy_loss(x, labels) returned the wrong value.\n"
    "Inputs: x (8, 5) float32, labels (8,) int64, seed 3\n"
    "Expected 1.7421 but got 13.9368 (greatest absolute difference 12.19, up to 1e-05 allowed).\n"
    "Hint: the loss should be averaged over the batch, not summed."
)


def result(stem: str, lost: int) -> SubmissionResult:
    """A graded mlp notebook; `lost` of its exercises (from the third on) failed a check, as a summed loss does."""
    exercises = []
    for n, (exercise, points) in enumerate(EXERCISES):
        failed = 2 <= n < 2 + lost
        check = CheckResult("test_value", 0.0 if failed else points, points, not failed, False,
                            LOSS_MESSAGE if failed else "", "failed" if failed else "passed")  # fmt: skip
        exercises.append(ExerciseResult(exercise, check.score, points, check.outcome, (check,)))
    score = sum(e.score for e in exercises)
    return SubmissionResult(f"{stem}.ipynb", "mlp", score, 40.0, "cpu", 1.0, exercises=tuple(exercises))


def students(n: int) -> list[Student]:
    return [Student(1000 + i, f"Student {i:03d}", f"SIS{i:03d}", f"login{i:03d}", f"s{i:03d}@uni.example")
            for i in range(n)]  # fmt: skip


def results_folder(root: Path, n: int, lost: int = 1, by: str = "user_id", extra: bool = True) -> Path:
    """n graded students matched by `by`, plus (extra) one who is not in the course and one whose ids name two
    people."""
    folder = root / "results"
    folder.mkdir(exist_ok=True)
    identities = []
    for i in range(n):
        stem = f"student{i:03d}"
        write_json(folder, stem, result(stem, lost if i % 3 else 0))
        ids = {"user_id": str(1000 + i)} if by == "user_id" else {"email": f"S{i:03d}@uni.example"}
        identities.append(Identity(key=stem, name=f"Student {i:03d}", **ids))
    if extra:
        write_json(folder, "stranger", result("stranger", 0))
        identities.append(Identity(key="stranger", user_id="555", email="stranger@elsewhere.example"))
        write_json(folder, "confused", result("confused", 0))
        identities.append(Identity(key="confused", user_id="1000", email="s001@uni.example"))
    write_identities(root, identities)
    return folder


def push(lms: str, server: CanvasStandIn | MoodleStandIn, root: Path, *extra: str, token: str = TOKEN,
         background: bool = False) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:  # fmt: skip
    course, assignment = (server.course, server.assignment)
    command = [sys.executable, "-m", "autograder", "push", lms, str(root / "results"), "--url", server.url,
               "--course", str(course), "--assignment", str(assignment), "--identities",
               str(root / "identities.json"), "--retry-wait", "0.01", *extra]  # fmt: skip
    env = {**os.environ, f"AUTOGRADER_{lms.upper()}_TOKEN": token}
    if background:
        return subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    return subprocess.run(command, env=env, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def expected_scores(n: int, lost: int = 1) -> dict[int, float]:
    return {1000 + i: 40.0 - 10 * (lost if i % 3 else 0) for i in range(n)}


def assert_canvas_gradebook(server: CanvasStandIn, n: int, lost: int = 1) -> None:
    """Every matched student: the score, and exactly one comment of ours per push that changed it; no one else."""
    expected = expected_scores(n, lost)
    assert {uid: s for uid, s in server.scores.items() if s is not None} == expected
    for uid in expected:
        ours = [c for c in server.comments[uid] if MARKER.search(c["comment"])]
        assert len(ours) == 1, (uid, server.comments[uid])
    assert server.scores[1000 + n] is None and server.comments[1000 + n] == []  # in the course, not in the results


def assert_nothing_on_disk_or_in_output(root: Path, *outputs: str) -> None:
    for output in outputs:
        assert TOKEN not in output
    for path in root.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_a_class_of_300_goes_to_canvas_once_and_a_rerun_posts_nothing(tmp_path):
    root = tmp_path
    results_folder(root, 300)
    with CanvasStandIn(TOKEN, students(301)) as canvas:
        first = push("canvas", canvas, root, "--yes")
        assert first.returncode == 0, first.stdout + first.stderr
        assert_canvas_gradebook(canvas, 300)
        comment = next(c["comment"] for c in canvas.comments[1001])
        assert comment.startswith("MLP: 30/40 (graded by the autograder)\n- approximate_function: 10/10\n")
        assert "- cross_entropy_loss: 0/10\n    cross_entropy_loss(x, labels) returned the wrong value." in comment
        assert "    Hint: the loss should be averaged over the batch, not summed." in comment
        out = first.stdout
        assert "Plan for Canvas assignment 'MLP' (40 points), 302 graded students:" in out
        assert "  new        student001 (Student 001): 30" in out
        assert "  not matched stranger: no student of the course has its ids" in out
        assert "  matches two people confused: Student 000 (1000), Student 001 (1001)" in out
        assert "Canvas: 300 posted, 1 not matched, 1 matches two people." in out
        writes = canvas.writes
        assert writes <= 6  # 300 students in bulk updates of 100, not 300 requests
        again = push("canvas", canvas, root, "--yes")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "300 unchanged (already posted, same score and feedback)" in again.stdout
        assert "Nothing to post." in again.stdout
        assert canvas.writes == writes
        assert_canvas_gradebook(canvas, 300)
        assert_nothing_on_disk_or_in_output(root, first.stdout, first.stderr, again.stdout, again.stderr)


def test_the_plan_comes_first_and_nothing_is_posted_without_a_yes(tmp_path):
    results_folder(tmp_path, 4)
    with CanvasStandIn(TOKEN, students(4)) as canvas:
        dry = push("canvas", canvas, tmp_path, "--dry-run")
        assert dry.returncode == 0 and "  new        student002 (Student 002): 30" in dry.stdout
        assert "dry run: nothing was posted." in dry.stdout
        unconfirmed = push("canvas", canvas, tmp_path)
        assert unconfirmed.returncode != 0
        assert messages.PUSH_NOT_CONFIRMED in unconfirmed.stderr.replace("\n", " ")
        assert canvas.writes == 0 and all(s is None for s in canvas.scores.values())


def test_a_grade_changed_by_hand_after_the_push_is_left_alone_unless_asked(tmp_path):
    results_folder(tmp_path, 5, extra=False)
    with CanvasStandIn(TOKEN, students(5)) as canvas:
        assert push("canvas", canvas, tmp_path, "--yes").returncode == 0
        canvas.scores[1001] = 38.0  # a TA regraded student001 by hand in Canvas
        results_folder(tmp_path, 5, lost=2, extra=False)  # the course regraded everyone: one more exercise lost
        second = push("canvas", canvas, tmp_path, "--yes")
        assert second.returncode == 0, second.stdout + second.stderr
        kept = "  left alone student001 (Student 001): changed in the LMS after the last push (30 -> 38)"
        assert kept in second.stdout
        assert "  changed    student002 (Student 002): 30 -> 20" in second.stdout
        assert canvas.scores[1001] == 38.0 and canvas.scores[1002] == 20.0 and canvas.scores[1000] == 40.0
        forced = push("canvas", canvas, tmp_path, "--yes", "--overwrite-changed")
        assert forced.returncode == 0 and "  changed    student001 (Student 001): 38 -> 20" in forced.stdout
        assert canvas.scores[1001] == 20.0


CANVAS_FAULTS = {
    "throttled": Faults(throttle={2, 3, 4}),
    "server errors": Faults(error={1, 3}),
    "dropped before the write": Faults(drop_before={2}),
    "dropped after the write": Faults(drop_after={1, 4}),
}


@pytest.mark.parametrize("n", [8, 60], ids=["one by one", "bulk"])
@pytest.mark.parametrize("fault", list(CANVAS_FAULTS), ids=list(CANVAS_FAULTS))
def test_every_canvas_fault_ends_in_the_gradebook_of_a_clean_push(tmp_path, fault, n):
    results_folder(tmp_path, n, extra=False)
    with CanvasStandIn(TOKEN, students(n + 1), faults=CANVAS_FAULTS[fault]) as canvas:
        done = push("canvas", canvas, tmp_path, "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert_canvas_gradebook(canvas, n)
        again = push("canvas", canvas, tmp_path, "--yes")
        assert "Nothing to post." in again.stdout
        assert_canvas_gradebook(canvas, n)


def test_a_push_killed_between_posts_is_finished_by_the_same_command(tmp_path):
    results_folder(tmp_path, 8, extra=False)
    with CanvasStandIn(TOKEN, students(9), faults=Faults(hold_from=4, hold_s=30)) as canvas:
        running = push("canvas", canvas, tmp_path, "--yes", background=True)
        deadline = time.monotonic() + 120
        while canvas.writes < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        running.send_signal(signal.SIGKILL)
        running.wait(30)
        assert canvas.writes == 4 and sum(s is not None for s in canvas.scores.values()) == 3
        canvas.faults = Faults()
        journal = next(tmp_path.glob("results/push-canvas-*.jsonl")).read_text().splitlines()
        assert len(journal) == 3
        rest = push("canvas", canvas, tmp_path, "--yes")
        assert rest.returncode == 0, rest.stdout + rest.stderr
        assert "Canvas: 5 posted, 3 unchanged." in rest.stdout
        assert_canvas_gradebook(canvas, 8)


def test_a_push_that_cannot_get_through_stops_with_what_is_left_and_a_rerun_finishes(tmp_path):
    results_folder(tmp_path, 6, extra=False)
    with CanvasStandIn(TOKEN, students(7), faults=Faults(error=set(range(3, 20)))) as canvas:
        stopped = push("canvas", canvas, tmp_path, "--yes")
        assert stopped.returncode != 0
        assert "Canvas answered 500 (6 tries)" in stopped.stderr
        assert "stopped: 2 of 6 posted" in stopped.stderr and "run the same command again" in stopped.stderr
        canvas.faults = Faults()
        rest = push("canvas", canvas, tmp_path, "--yes")
        assert rest.returncode == 0 and "Canvas: 4 posted, 2 unchanged." in rest.stdout
        assert_canvas_gradebook(canvas, 6)


def test_canvas_refusals_end_before_anything_is_written_and_never_show_the_token(tmp_path):
    results_folder(tmp_path, 3, extra=False)
    with CanvasStandIn(TOKEN, students(3)) as canvas:
        wrong = push("canvas", canvas, tmp_path, "--yes", token="not-the-token-123")
        assert wrong.returncode != 0
        assert messages.PUSH_BAD_TOKEN.format(lms="Canvas", variable="AUTOGRADER_CANVAS_TOKEN") in " ".join(
            wrong.stderr.split())
        assert "not-the-token-123" not in wrong.stdout + wrong.stderr
        canvas.assignment = 8  # the assignment asked for no longer exists
        missing = push("canvas", canvas, tmp_path, "--yes", "--assignment", "7")
        assert "no course 101 with an assignment 7 that this token can see (404)" in " ".join(missing.stderr.split())
    with CanvasStandIn(TOKEN, students(3), points=100) as canvas:
        points = push("canvas", canvas, tmp_path, "--yes")
        assert "Canvas assignment 'MLP' is worth 100 points and these results are out of 40" in " ".join(
            points.stderr.split())
        assert canvas.writes == 0
    with CanvasStandIn(TOKEN, students(3), grading_type="letter_grade") as canvas:
        letters = push("canvas", canvas, tmp_path, "--yes")
        assert "is graded as 'letter_grade'" in letters.stderr and canvas.writes == 0
    assert_nothing_on_disk_or_in_output(tmp_path, wrong.stdout, wrong.stderr, missing.stderr, points.stderr)


def test_the_feedback_page_is_attached_as_a_file_comment_when_asked(tmp_path):
    results_folder(tmp_path, 3, extra=False)
    pages = tmp_path / "feedback"
    pages.mkdir()
    for i in range(3):
        (pages / f"student{i:03d}.html").write_text(f"<html><body>feedback of student {i}</body></html>")
    with CanvasStandIn(TOKEN, students(3)) as canvas:
        done = push("canvas", canvas, tmp_path, "--yes", "--attach-feedback", str(pages))
        assert done.returncode == 0, done.stdout + done.stderr
        for uid in (1000, 1001, 1002):
            attached = [a for c in canvas.comments[uid] for a in c["attachments"]]
            assert [a["display_name"] for a in attached] == [f"student{uid - 1000:03d}.html"]


def test_only_https_or_loopback_and_the_token_only_from_the_environment():
    assert checked_url("https://canvas.example.edu/") == "https://canvas.example.edu"
    assert checked_url("http://127.0.0.1:8123") == "http://127.0.0.1:8123"
    for url in ("http://canvas.example.edu", "http://10.0.0.8", "ftp://x", "canvas.example.edu"):
        with pytest.raises(ValueError, match="must start with https://"):
            checked_url(url)
    done = subprocess.run([sys.executable, "-m", "autograder", "push", "canvas", "r", "--url", "https://x",
                           "--course", "1", "--assignment", "2", "--token", TOKEN], capture_output=True, text=True,
                          cwd=PROJECT_ROOT)  # fmt: skip
    assert done.returncode == 2 and "unrecognized arguments: --token" in done.stderr


def test_matching_never_guesses():
    people = [Person("1", "Ada", "S1", "ada", "ada@x.org"), Person("2", "Bob", "S2", "bob", "bob@x.org")]
    rows = [GradeRow(Identity("a", email="ADA@x.org"), result("a", 0)),
            GradeRow(Identity("b", name="Bob Jones"), result("b", 0)),  # a name alone is no id
            GradeRow(Identity("c", user_id="1", login="bob"), result("c", 0))]  # fmt: skip
    lines = plan(rows, people, {"1": Current(None)}, {}, "MLP")
    assert [(line.key, line.action) for line in lines] == [("a", "new"), ("b", "not matched"),
                                                           ("c", "matches two people")]  # fmt: skip
    assert lines[0].post is not None and lines[0].post.user_id == "1"


def test_a_journal_line_cut_short_by_a_kill_is_ignored(tmp_path):
    journal = Journal(tmp_path / "push.jsonl")
    journal.record(Post("a", "1", "Ada", 30.0, "text", "0123456789ab"))
    with journal.path.open("a") as f:
        f.write('{"user_id": "2", "sco')
    assert set(journal.read()) == {"1"}
    assert TOKEN not in repr(Connection("https://x", TOKEN, "1", "2"))


def moodle_feedback(server: MoodleStandIn, uid: int) -> str:
    return server.feedback[uid][-1] if server.feedback[uid] else ""


def test_a_class_of_300_goes_to_moodle_once_and_every_fault_ends_the_same(tmp_path):
    results_folder(tmp_path, 300, by="email")
    with MoodleStandIn(TOKEN, students(301), faults=Faults(error={2}, drop_after={3}, drop_before={5})) as moodle:
        done = push("moodle", moodle, tmp_path, "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert {uid: s for uid, s in moodle.scores.items() if s is not None} == expected_scores(300)
        assert moodle.scores[1300] is None and moodle.feedback[1300] == []
        assert "- cross_entropy_loss: 0/10\n    cross_entropy_loss(x, labels) returned the wrong value." in (
            moodle_feedback(moodle, 1001))
        assert "Moodle: 300 posted, 1 not matched, 1 matches two people." in done.stdout
        writes = moodle.writes
        again = push("moodle", moodle, tmp_path, "--yes")
        assert "Nothing to post." in again.stdout and moodle.writes == writes
        assert_nothing_on_disk_or_in_output(tmp_path, done.stdout, done.stderr, again.stdout)


def test_moodle_refusals_end_before_anything_is_written(tmp_path):
    results_folder(tmp_path, 3, by="email", extra=False)
    with MoodleStandIn(TOKEN, students(3)) as moodle:
        wrong = push("moodle", moodle, tmp_path, "--yes", token="bad-token-456")
        assert messages.PUSH_BAD_TOKEN.format(lms="Moodle", variable="AUTOGRADER_MOODLE_TOKEN") in " ".join(
            wrong.stderr.split())
        assert "bad-token-456" not in wrong.stdout + wrong.stderr
        by_cmid = push("moodle", moodle, tmp_path, "--yes", "--assignment", str(moodle.cmid))
        assert by_cmid.returncode == 0 and moodle.scores[1000] == 40.0
    with MoodleStandIn(TOKEN, students(3), points=-3) as moodle:
        scale = push("moodle", moodle, tmp_path, "--yes")
        assert "is graded on a scale" in scale.stderr and moodle.writes == 0
    with MoodleStandIn(TOKEN, students(3)) as moodle:
        moodle.course = 6
        missing = push("moodle", moodle, tmp_path, "--yes", "--course", "5")
        assert "no Moodle course 5 with an assignment 12" in " ".join(missing.stderr.split())
        assert moodle.writes == 0
    json.dumps([wrong.stderr])  # the outputs are text


def test_ctrl_c_stops_the_push_with_what_is_left_and_a_rerun_finishes(tmp_path):
    results_folder(tmp_path, 8, extra=False)
    with CanvasStandIn(TOKEN, students(9), faults=Faults(hold_from=4, hold_s=30)) as canvas:
        # SIGINT as a terminal leaves it (a test runner may start the suite with it ignored, which children inherit)
        args = [sys.executable, "-m", "autograder", "push", "canvas", str(tmp_path / "results"), "--url", canvas.url,
                "--course", "101", "--assignment", "7", "--identities", str(tmp_path / "identities.json"),
                "--retry-wait", "0.01", "--yes"]  # fmt: skip
        running = subprocess.Popen(args, env={**os.environ, "AUTOGRADER_CANVAS_TOKEN": TOKEN}, cwd=PROJECT_ROOT,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
        deadline = time.monotonic() + 120
        while canvas.writes < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        running.send_signal(signal.SIGINT)
        out, err = running.communicate(timeout=60)
        assert running.returncode == 130, out + err
        assert "stopped: 3 of 8 posted" in out and "run the same command again" in out
        canvas.faults = Faults()
        rest = push("canvas", canvas, tmp_path, "--yes")
        assert rest.returncode == 0 and "Canvas: 5 posted, 3 unchanged." in rest.stdout
        assert_canvas_gradebook(canvas, 8)


def test_the_push_slows_down_as_canvass_request_budget_runs_low():
    from types import SimpleNamespace

    from autograder.lms.canvas import CanvasGradebook

    waits: list[float] = []
    gradebook = CanvasGradebook(Connection("https://canvas.example.edu", TOKEN, "1", "2", retry_wait=2.0), waits.append)
    for remaining in ("650.0", "100.0", "50.0", "0.0", "not a number"):
        gradebook.watch(SimpleNamespace(headers={"X-Rate-Limit-Remaining": remaining}))
    assert waits == [1.0, 2.0]  # above 100 left: full speed; at 50: half the retry wait; at 0: all of it
