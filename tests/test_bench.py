"""The benchmarks in quick mode: their output is right (timings are not asserted; they are for people)."""

from __future__ import annotations

import re

import pytest

from bench import floor, scaling


@pytest.mark.slow
def test_scaling_reports_every_size_and_class_and_realistic_notebooks_score_the_same(capsys):
    assert scaling.main(["--sizes", "3", "20", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    # class, device, pinned, submissions, seconds, s/submission, worker peak, scoring peak, submitter growth, full marks
    rows = re.findall(
        r"^\s+(synthetic|realistic)\s+cpu\s+True\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+\d+\s+\d+\s+(\d+)$", out, re.M
    )
    assert [(r[0], int(r[1])) for r in rows] == [
        ("synthetic", 3),
        ("realistic", 3),
        ("synthetic", 20),
        ("realistic", 20),
    ]
    assert [int(r[5]) for r in rows[2:]] == [9, 9]  # of every 20 generated students, 9 are fully right
    assert all(0 < float(r[3]) < 60 and int(r[4]) > 0 for r in rows)
    assert re.search(r"synthetic on cpu: cost per submission at 20 / at 3: [\d.]+x", out)
    # the same students' code inside course-shaped notebooks (magics, torchvision, plots, training) scores the same
    assert (
        len(re.findall(r"submissions on cpu: realistic / synthetic s/submission: [\d.]+x; same scores: True", out)) == 2
    )
    # the scoring processes are forks of the fork server, found by their process name
    assert re.search(r"peak memory of a scoring process: [1-9]\d+ MiB", out), out


@pytest.mark.slow
def test_floor_grades_the_same_scores_in_process(capsys):
    assert floor.main(["--n", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("same scores: True") == 2  # synthetic and realistic
    assert re.search(r"realistic / synthetic s/submission \(isolated workers\): [\d.]+x", out)
    assert re.search(r"grader / floor: [\d.]+x; isolation costs -?\d+ ms per submission", out)


@pytest.mark.slow
def test_vs_otter_times_both_and_their_scores_agree(capsys):
    from bench import vs_otter

    assert vs_otter.main(["--n", "2", "--jobs", "2", "--no-trusted-scores", "--classes", "synthetic"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"otter run: +[\d.]+ s", out) and re.search(r"autograder grade: +[\d.]+ s", out)
    assert re.search(r"ratio \(otter / native\): [\d.]+x", out)
    assert "synthetic:\n" in out and "per-question scores equal: 2 of 2" in out


def test_devices_names_every_check_whose_verdict_differs():
    import dataclasses

    from autograder.results import CheckResult, ExerciseResult, SubmissionResult
    from bench.devices import differences

    def result(passed: bool, message: str = "") -> SubmissionResult:
        check = CheckResult("forward", 2.0 if passed else 0.0, 2.0, passed, True, message)
        return SubmissionResult("a.ipynb", "toy", check.score, 2.0, "cpu", 0.1,
                                exercises=(ExerciseResult("Net", check.score, 2.0, "passed", (check,)),))  # fmt: skip

    same = differences([result(True)], [result(True)])
    cuda = dataclasses.replace(result(False, "Your code raised RuntimeError\nat cell 2"), device="cuda")
    assert same == []
    assert differences([result(True)], [cuda]) == ["a.ipynb Net forward: Your code raised RuntimeError"]


def test_compare_runs_a_benchmark_in_this_checkout_and_in_another_revision_and_removes_that_tree(capsys):
    import subprocess

    from autograder.paths import PROJECT_ROOT
    from bench import compare

    before = subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "list"], capture_output=True, text=True)
    assert compare.main(["HEAD", "--rounds", "1", "--", "bench.scaling", "--help"]) == 0
    shown = capsys.readouterr().out
    assert shown.count("=== round 1") == 2 and "this checkout" in shown and "HEAD (" in shown
    assert shown.count("usage:") == 2 and "(exit" not in shown
    after = subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "list"], capture_output=True, text=True)
    assert after.stdout == before.stdout
