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
