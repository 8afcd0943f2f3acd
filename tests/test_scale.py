"""Grading is the same whoever runs it: in this process, in two scoring processes, or on a Dask cluster."""

from __future__ import annotations

import pytest

from autograder.grader import LOCAL_CLUSTER, DaskExecutor, grade
from autograder.options import GradingOptions
from autograder.paths import builtin_names
from autograder.results import SubmissionResult

from .conftest import EXAMPLES


def verdicts(results: list[SubmissionResult]) -> dict:
    """Everything a student or instructor sees, without timings."""
    return {
        r.submission: (
            r.score,
            r.errors,
            [
                (e.id, e.score, e.status, [(t.name, t.score, t.outcome, t.message) for t in e.tests])
                for e in r.exercises
            ],
        )
        for r in results
    }


@pytest.fixture(scope="module")
def dask_client():
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = LocalCluster(n_workers=2, **LOCAL_CLUSTER)
        client = Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.mark.slow
@pytest.mark.parametrize("assignment", builtin_names())
def test_jobs_1_jobs_2_and_dask_give_identical_results(assignment, dask_client, tmp_path):
    options = GradingOptions(timeout=60)
    paths = [EXAMPLES / assignment]
    one = grade(assignment, paths, out_dir=tmp_path / "one", options=options, jobs=1)
    two = grade(assignment, paths, out_dir=tmp_path / "two", options=options, jobs=2)
    cluster = grade(assignment, paths, out_dir=tmp_path / "dask", options=options, jobs=2,
                    executor=DaskExecutor(client=dask_client))  # fmt: skip
    assert len(one.results) == 4
    assert verdicts(one.results) == verdicts(two.results) == verdicts(cluster.results)
    for folder in ("one", "two", "dask"):  # the same files, written by this process for the cluster's results
        assert (tmp_path / folder / "grades.csv").read_text() == (tmp_path / "one" / "grades.csv").read_text()


def test_several_gpus_share_the_chunks_and_one_gpu_is_shared_by_memory(monkeypatch):
    import torch

    from autograder.devices import Device, memory_share, place

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    cuda = Device("cuda")
    placed = {place(cuda, f"student{i}.ipynb") for i in range(40)}
    assert placed == {"cuda:0", "cuda:1", "cuda:2", "cuda:3"}
    assert place(cuda, "a.ipynb") == place(cuda, "a.ipynb")  # the same chunk, the same GPU
    assert memory_share(cuda, sharing=4) is None  # one scoring process per GPU
    assert memory_share(cuda, sharing=8) == 0.45
    assert place(Device("cuda:2"), "a.ipynb") == "cuda:2"  # asked for: kept
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert place(cuda, "a.ipynb") == "cuda"
    assert memory_share(cuda, sharing=3) == 0.3
    assert memory_share(Device("cpu"), sharing=3) is None


def test_a_device_is_checked_once_and_says_what_it_is():
    from autograder.devices import Device

    assert GradingOptions(device="cuda:1").device.gpu == 1 and GradingOptions(device="cuda").device.gpu == 0
    assert not GradingOptions().device.is_cuda and GradingOptions().device.gpu is None
    assert isinstance(GradingOptions(device="cpu").device, Device) and GradingOptions().device == "cpu"
    for wrong in ("gpu", "cuda:x", "cpu:0", "CUDA"):
        with pytest.raises(ValueError, match="--device must be auto, cpu or cuda"):
            GradingOptions(device=wrong)


@pytest.mark.slow
def test_two_scoring_processes_hand_each_result_to_this_process_once_as_soon_as_it_is_graded(tmp_path):
    """This process is the results folder's one writer; a result reaches it when its submission is graded, not
    when the rest of its chunk is (here: a notebook that loops until its time limit)."""
    import shutil
    import time

    from autograder.grader import LocalExecutor
    from autograder.spec import load_assignment
    from autograder.submission import load_submissions

    shutil.copy(EXAMPLES / "mlp" / "correct.ipynb", tmp_path / "a_correct.ipynb")
    (tmp_path / "b_loops.py").write_text("def cross_entropy_loss(x, labels):\n    while True:\n        pass\n")
    chunk = load_submissions([tmp_path], read=False)
    arrived: list[tuple[str, float, float]] = []
    started = time.monotonic()

    def on_result(result: SubmissionResult) -> None:  # a closure: it could not have run in another process
        arrived.append((result.submission, result.score, time.monotonic() - started))

    LocalExecutor(2).run(load_assignment("mlp"), [chunk], GradingOptions(timeout=15), on_result)
    [(first, first_score, first_at), (second, second_score, second_at)] = arrived
    assert (first, first_score, second, second_score) == ("a_correct.ipynb", 40, "b_loops.py", 0)
    assert second_at - first_at > 10, arrived  # the loop's 15 s time limit ran after the first was handed over


WHERE_SPEC = """
name = "where"
title = "Where code runs"
source = "tests"
reference = "reference_solutions/where.py"

[[exercises]]
id = "where"
title = "The cores it may run on"
symbols = { where = "function" }
points = 1
"""
WHERE_CHECK = """
import os

import pytest

@pytest.mark.points(1)
def test_where(student):
    assert False, f"worker {student.where()} scoring {sorted(os.sched_getaffinity(0))}"
"""


@pytest.mark.parametrize("pinned", [True, False])
def test_each_scoring_process_gets_a_core_of_its_own_and_its_workers_run_there(pinned, tmp_path, monkeypatch):
    """--jobs 2 on two cores or more: a scoring process and its worker take turns (~70 requests a notebook), so
    each pair is kept on a core of its own; AUTOGRADER_PIN_JOBS=0 leaves them to the scheduler."""
    import os
    import re

    from autograder.grader import PIN_JOBS_ENV, LocalExecutor
    from autograder.spec import load_assignment
    from autograder.submission import load_submissions

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs two cores to give two scoring processes one each")
    if not pinned:
        monkeypatch.setenv(PIN_JOBS_ENV, "0")
    (tmp_path / "reference_solutions").mkdir()
    (tmp_path / "reference_solutions" / "where.py").write_text("def where():\n    return []\n")
    folder = tmp_path / "assignments" / "where"
    (folder / "checks").mkdir(parents=True)
    (folder / "assignment.toml").write_text(WHERE_SPEC)
    (folder / "checks" / "test_where.py").write_text(WHERE_CHECK)
    for i in range(8):
        (tmp_path / f"s{i}.py").write_text("import os\n\ndef where():\n    return sorted(os.sched_getaffinity(0))\n")
    submissions = load_submissions(sorted(tmp_path.glob("s*.py")), read=False)
    results: list[SubmissionResult] = []
    LocalExecutor(2).run(load_assignment(folder), [[s] for s in submissions], GradingOptions(), results.append)
    seen = []
    for result in results:
        [check] = result.exercise("where").tests
        found = re.search(r"worker (\[.*?\]) scoring (\[.*?\])", check.message)
        assert found, check.message
        worker, scoring = found.groups()
        assert worker == scoring, check.message  # a worker runs where its scoring process does
        seen.append(scoring)
    assert len(seen) == 8
    if pinned:
        assert all(s in {str([c]) for c in cores} for s in seen), seen  # one core each
        assert len(set(seen)) == 2, seen  # and not the same one
    else:
        assert set(seen) == {str(cores)}, seen
