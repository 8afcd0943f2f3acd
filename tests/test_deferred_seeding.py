"""runner/deferred_seeding.py: torch's deferred device calls record the caller's frames without reading their source."""

import subprocess
import sys
import traceback

import torch

from autograder.runner import deferred_seeding as stacks
from autograder.runner.proxy import Worker
from autograder.runner.worker import GlobalRef


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


def test_installed_for_good_it_stays_after_garbage_collection():
    # The fork server installs it at import; a context manager entered and dropped would undo it at the next
    # collection (it did: workers formatted full stacks on every torch.manual_seed).
    code = (
        "import gc, traceback, torch\n"
        "from autograder.runner import deferred_seeding as stacks\n"
        "stacks.install_short_stacks()\n"
        "gc.collect()\n"
        "print(torch.cuda.traceback is stacks._SHORT, torch.xpu.traceback is stacks._SHORT)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]


def test_workers_record_short_stacks():
    worker = Worker()
    try:
        source = "import torch\ndef recorder():\n    return torch.cuda.traceback.format_stack.__qualname__\n"
        assert worker.request("load", [(1, source)], "all", (), timeout=60)["ok"]
        reply = worker.request("call", GlobalRef("recorder"), (), {}, None, timeout=60)
    finally:
        worker.stop()
    assert reply["value"] == "_frames_without_source"
