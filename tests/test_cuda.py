"""The same verdicts on CUDA as on the CPU (runs only where CUDA is available)."""

import pytest
import torch

from .conftest import EXAMPLES, grade_paths

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("assignment", ["mlp", "decoding", "spiking"])
def test_cuda_verdicts_equal_cpu_verdicts(assignment):
    paths = sorted((EXAMPLES / assignment).glob("*.ipynb"))
    cpu = grade_paths(assignment, paths, device="cpu")
    cuda = grade_paths(assignment, paths, device="cuda")
    for a, b in zip(cpu, cuda, strict=True):
        assert b.device == "cuda"
        assert [(e.id, e.score, e.status) for e in a.exercises] == [(e.id, e.score, e.status) for e in b.exercises]
