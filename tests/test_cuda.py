"""The same verdicts on CUDA as on the CPU, and GPU memory kept per student (runs only where CUDA is available;
`make gpu-check` runs these on a GPU machine)."""

import os

import pytest
import torch

from autograder import messages
from autograder.grader import grade
from autograder.options import GradingOptions

from .conftest import EXAMPLES, grade_paths, write_notebook
from .test_mutation import SUITES, source
from .test_worker import CORRECT_CE, CORRECT_SPLIT

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
JOBS = min(8, os.cpu_count() or 1)


def verdicts(results):
    """Per submission: every exercise's score and status, and every check's outcome."""
    return {
        r.submission: [(e.id, e.score, e.status, [(t.name, t.passed) for t in e.tests]) for e in r.exercises]
        for r in results
    }


@pytest.mark.parametrize("assignment", ["mlp", "decoding", "spiking"])
def test_cuda_verdicts_equal_cpu_verdicts(assignment):
    paths = sorted((EXAMPLES / assignment).glob("*.ipynb"))
    cpu = grade_paths(assignment, paths, device="cpu")
    cuda = grade_paths(assignment, paths, device="cuda")
    assert all(b.device == "cuda" for b in cuda)
    assert verdicts(cuda) == verdicts(cpu)


@pytest.mark.parametrize("assignment", sorted(SUITES))
def test_every_mutant_and_variant_gets_the_same_verdicts_on_cuda(assignment, tmp_path):
    module = SUITES[assignment]
    for kind, cases in (("mutant", module.MUTANTS), ("variant", module.VARIANTS)):
        for exercise, name, code in cases:
            (tmp_path / f"{kind}__{exercise}__{name}.py").write_text(source(module, exercise, code))
    by_device = {
        device: grade(assignment, [tmp_path], out_dir=None, options=GradingOptions(device=device), jobs=JOBS).results
        for device in ("cpu", "cuda")
    }
    assert verdicts(by_device["cuda"]) == verdicts(by_device["cpu"])


def test_a_gpu_memory_hog_costs_only_its_own_exercise(tmp_path):
    hog = (
        "import torch\nKEPT = []\ndef cross_entropy_loss(x, labels):\n"
        "    while True:\n        KEPT.append(torch.ones(2**28, device='cuda'))  # 1 GiB of GPU memory at a time\n"
    )
    write_notebook(tmp_path / "hog.ipynb", [hog, CORRECT_SPLIT])
    write_notebook(tmp_path / "neighbour.ipynb", [CORRECT_CE, CORRECT_SPLIT])
    report = grade("mlp", [tmp_path], out_dir=None, options=GradingOptions(device="cuda"), jobs=2)
    results = {r.submission: r for r in report.results}
    hog_ce = results["hog.ipynb"].exercise("cross_entropy_loss")
    assert hog_ce.score == 0 and messages.GPU_MEMORY in hog_ce.tests[0].message
    assert results["hog.ipynb"].exercise("shuffle_and_split").score == 10
    neighbour = results["neighbour.ipynb"]
    assert neighbour.exercise("cross_entropy_loss").score == 10
    assert neighbour.exercise("shuffle_and_split").score == 10
