"""runner/stacks.py: torch's deferred device calls record the caller's frames without reading their source."""

import traceback

import torch

from autograder.runner import stacks


def _inner(record):
    return record()


def test_the_short_stack_has_the_frames_of_the_real_one():
    real, short = _inner(traceback.format_stack), _inner(stacks._frames_without_source)  # one line: same numbers
    assert len(short) == len(real)
    for got, want in zip(short, real, strict=True):
        assert got == want.splitlines(keepends=True)[0]  # "  File ..., line N, in f\n", without the source line


def test_short_stacks_patch_only_the_deferring_modules_and_only_within():
    assert torch.cuda.traceback is traceback
    with stacks.short_stacks():
        assert torch.cuda.traceback is not traceback
        assert torch.cuda.traceback.format_stack is stacks._frames_without_source
        assert torch.cuda.traceback.format_exc is traceback.format_exc  # everything else is the real module
        with stacks.short_stacks():  # nested: nothing more, nothing undone early
            pass
        assert torch.cuda.traceback is not traceback
        torch.manual_seed(7)
        first = torch.randn(3)
        torch.manual_seed(7)
        assert torch.equal(torch.randn(3), first)
    assert torch.cuda.traceback is traceback and traceback.format_stack is not stacks._frames_without_source
