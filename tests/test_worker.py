"""Definitions-only loading, isolation of student code, and what cannot cross from a worker to the scorer."""

import time

import pytest
import torch

from autograder import messages

from .conftest import grade_paths

CORRECT_CE = """
import torch
def cross_entropy_loss(x, labels):
    return (torch.logsumexp(x, 1) - x[torch.arange(len(labels)), labels]).mean()
"""
# A correct exercise beside a misbehaving one: it must keep its points.
CORRECT_SPLIT = """
import torch
def shuffle_and_split_data(X, y, seed):
    torch.manual_seed(seed)
    i = torch.randperm(len(X))
    n = int(0.2 * len(X))
    return X[i][:n], y[i][:n], X[i][n:], y[i][n:]
"""
WRONG_CE = """
import torch
def cross_entropy_loss(x, labels):
    return torch.tensor(0.0)
"""


def ce(result):
    return result.exercise("cross_entropy_loss")


def test_definitions_mode_skips_downloads_training_and_plots(notebook, tmp_path):
    marker = tmp_path / "top-level-ran"
    path = notebook(
        "student.ipynb",
        "!pip install torch\nimport torch\nimport matplotlib.pyplot as plt",
        f"open({str(marker)!r}, 'w').write('downloaded')\nimport urllib.request\n"
        "urllib.request.urlretrieve('http://127.0.0.1:9/data.npz', 'data.npz')",
        CORRECT_CE,
        "x = torch.randn(1000, 1000)\nfor _ in range(10**9):\n    x = x @ x\nplt.plot([1, 2])\nplt.show()",
    )
    start = time.perf_counter()
    [result] = grade_paths("mlp", [path])
    assert time.perf_counter() - start < 30
    assert not marker.exists()
    assert ce(result).status == "passed"
    assert result.errors == ()


def test_execute_all_runs_every_cell_and_a_failing_cell_does_not_stop_the_rest(notebook):
    path = notebook(
        "student.ipynb",
        "print('the top-level cell ran')",
        "raise RuntimeError('cell two fails')\nnever = 1",
        CORRECT_CE,
    )
    [result] = grade_paths("mlp", [path], execute="all")
    assert "the top-level cell ran" in result.output
    assert ce(result).status == "passed"
    # no exercise depends on what it would have defined: a note for the instructor, not the student's problem
    assert result.errors == () and result.notes == ("Cell 2, line 1: RuntimeError: cell two fails",)


def test_a_cell_that_does_not_parse_does_not_stop_the_others(notebook):
    path = notebook("student.ipynb", "def broken(:\n    pass", CORRECT_CE)
    [result] = grade_paths("mlp", [path])
    assert ce(result).status == "passed"
    assert result.exercise("Net").status == "missing"  # no cell meant to define it: missing, not an error
    # `broken` is no exercise's: the instructor is told, the student's feedback is about Net being missing
    assert result.errors == () and result.notes[0].startswith("Cell 1, line 1: SyntaxError")
    [result] = grade_paths("mlp", [notebook("student2.ipynb", "class Net(nn.Module:\n    pass", CORRECT_CE)])
    assert result.exercise("Net").status == "error"  # the cell meant to define it does not parse
    assert result.errors[0].startswith("Cell 1, line 1: SyntaxError")


def test_missing_symbol_message(notebook):
    [result] = grade_paths("mlp", [notebook("student.ipynb", CORRECT_CE)])
    net = result.exercise("Net")
    assert net.status == "missing" and net.score == 0
    assert net.tests[0].message == messages.MISSING_ONE.format(name="Net")


def test_student_exception_names_their_line(notebook):
    path = notebook(
        "s.ipynb",
        "import torch\ndef cross_entropy_loss(x, labels):\n    y = x.sum()\n    return y / 0 + undefined_name",
    )
    [result] = grade_paths("mlp", [path])
    message = ce(result).tests[0].message
    assert "Your code raised NameError while the grader called cross_entropy_loss(tensor (2, 4) float32" in message
    assert "at cell 1, line 4: return y / 0 + undefined_name" in message


TAMPERING = {
    "allclose": "import torch\ntorch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True",
    "assert_close": "import torch.testing\ntorch.testing.assert_close = lambda *a, **k: None",
    "pytest": "import _pytest.assertion.rewrite as r\nr.AssertionRewritingHook = None\nimport builtins\n"
    "builtins.AssertionError = type('Nope', (Exception,), {})",
    "references": "from reference_solutions.mlp import cross_entropy_loss",
    "checks": "import assignments.mlp.checks.test_cross_entropy_loss as checks\n"
    "checks.expect_scalar = lambda *a, **k: None",
}


@pytest.mark.parametrize("attack", sorted(TAMPERING))
def test_tampering_at_definition_time_gains_nothing(notebook, attack):
    honest = notebook("honest.ipynb", WRONG_CE)
    cheat = notebook("cheat.ipynb", WRONG_CE, TAMPERING[attack])
    honest_result, cheat_result = grade_paths("mlp", [honest, cheat])
    assert ce(honest_result).score < 10
    assert ce(cheat_result).score == ce(honest_result).score


def test_reference_solutions_cannot_be_imported_in_a_worker(notebook):
    path = notebook("s.ipynb", "import torch\nfrom reference_solutions.mlp import cross_entropy_loss")
    [result] = grade_paths("mlp", [path])
    assert ce(result).status == "error"
    assert "No module named 'reference_solutions" in result.errors[0]


def test_a_returned_object_cannot_run_code_in_the_scoring_process(notebook, tmp_path):
    marker = tmp_path / "pwned"
    path = notebook(
        "evil.ipynb",
        f"""
import os, torch
class Payload:
    def __reduce__(self):
        return (os.system, ("touch {marker}",))
class Sneaky(torch.Tensor):
    def detach(self):
        return self
    def as_subclass(self, cls):
        return self
    def clone(self, *a, **k):
        return Payload()
def cross_entropy_loss(x, labels):
    return torch.tensor(0.3467).as_subclass(Sneaky)
""",
    )
    [result] = grade_paths("mlp", [path])
    assert not marker.exists()
    assert ce(result).score < 10
    assert any("could not read what your code returned" in t.message for t in ce(result).tests)


def test_an_endless_loop_costs_only_that_exercise(notebook):
    path = notebook(
        "s.ipynb",
        "import torch\ndef cross_entropy_loss(x, labels):\n    while True:\n        pass",
        CORRECT_SPLIT,
    )
    [result] = grade_paths("mlp", [path], timeout=1.5)
    assert ce(result).status == "timeout" and ce(result).score == 0
    assert messages.TIMEOUT.format(seconds="1.5 s") in ce(result).tests[0].message
    assert result.exercise("shuffle_and_split").score == 10


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_script_without_a_main_guard_can_call_the_grader(tmp_path, jobs):
    # multiprocessing would re-import such a script in every worker and scoring process; the grader must not let it.
    import subprocess
    import sys

    (tmp_path / "sub.py").write_text(CORRECT_CE)
    script = tmp_path / "grade_my_class.py"
    script.write_text(
        "from pathlib import Path\nfrom autograder.grader import grade\n"
        "from autograder.options import GradingOptions\n"
        f"batch = grade('mlp', [Path({str(tmp_path / 'sub.py')!r})], out_dir=None, options=GradingOptions(), "
        f"jobs={jobs})\n"
        "print('SCORE', batch.results[0].exercise('cross_entropy_loss').score)\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.stdout.count("SCORE") == 1, proc.stderr[-2000:]
    assert "SCORE 10.0" in proc.stdout


def test_a_correct_function_with_a_huge_print_keeps_its_points(notebook):
    # 50 MB of debug output inside a correct loss: the output past 16 MiB is dropped, the call goes on.
    path = notebook("chatty.ipynb", CORRECT_CE.replace("    return", "    print('x' * 50_000_000)\n    return"))
    [result] = grade_paths("mlp", [path])
    assert ce(result).score == 10 and ce(result).status == "passed"
    assert result.output_truncated and "[output truncated" in result.output
    assert result.to_dict()["output_truncated"] is True


def test_an_endless_print_loop_is_only_a_timeout(notebook):
    path = notebook(
        "flood.ipynb",
        "import torch\ndef cross_entropy_loss(x, labels):\n    while True:\n        print('x' * 100_000)",
        CORRECT_SPLIT,
    )
    [result] = grade_paths("mlp", [path], timeout=2)
    assert ce(result).status == "timeout" and ce(result).score == 0
    assert result.exercise("shuffle_and_split").score == 10
    assert result.output_truncated


def test_a_worker_that_dies_while_the_parent_waits_is_reported_as_lost_with_its_last_words(notebook):
    path = notebook(
        "dies.ipynb",
        "import os, torch\ndef cross_entropy_loss(x, labels):\n    print('about to leave')\n    os._exit(4)",
        CORRECT_SPLIT,
    )
    [result] = grade_paths("mlp", [path])
    check = ce(result).tests[0]
    assert check.message.startswith(messages.crashed(4)) and "MiB" not in check.message
    assert "about to leave" in check.detail and "exit status 4" in check.detail
    assert "about to leave" not in check.message  # the detail is the instructor's
    assert result.exercise("shuffle_and_split").score == 10


def test_a_worker_that_dies_before_its_first_request_is_lost_not_too_large():
    # Asking for a GPU on a machine without one makes the worker fail while it sets itself up, before it reads
    # the parent's first request: the parent must say the process was lost and why, not "too much data".
    import torch

    from autograder.runner.proxy import Worker, WorkerLost
    from autograder.runner.worker import WorkerConfig

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU, so a worker on it starts")
    worker = Worker(WorkerConfig(cuda_index=0))
    with pytest.raises(WorkerLost) as lost:
        worker.request("load", [(1, "x = 1")], "definitions", (), timeout=60)
    assert lost.value.kind == "setup"
    assert str(lost.value) == messages.WORKER_SETUP_FAILED
    assert "Traceback" in lost.value.detail and "exit status 70" in lost.value.detail
    assert "NVIDIA" in lost.value.detail or "CUDA" in lost.value.detail  # why CUDA did not start


def test_running_out_of_gpu_memory_costs_only_that_exercise(notebook):
    # What torch raises when a worker passes its share of the GPU; on the CPU the same error raised by hand.
    path = notebook(
        "oom.ipynb",
        "import torch\nKEPT = []\ndef cross_entropy_loss(x, labels):\n    KEPT.append(1)\n"
        "    raise torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB')",
        CORRECT_SPLIT,
    )
    [result] = grade_paths("mlp", [path])
    assert ce(result).score == 0 and messages.GPU_MEMORY in ce(result).tests[0].message
    assert result.exercise("shuffle_and_split").score == 10


PROCESS_STATE = """
import ctypes, signal, sys
libc = ctypes.CDLL(None)
def state(when):  # PR_GET_DUMPABLE; whether SIGTERM still has its default action
    print(when, libc.prctl(3, 0, 0, 0, 0), signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
if sys.argv[1] == "preload":
    import autograder.runner.preload
    state("preload")
else:
    import autograder.cli, autograder.grader, autograder.options, autograder.runner.worker
    state("imported")
    from autograder.runner.proxy import Worker
    worker = Worker()
    state("worker started")
    worker.stop()
"""


@pytest.mark.parametrize(
    "run, expected",
    [
        ("grade", ["imported 1 True", "worker started 0 False"]),  # non-dumpable and guarded once a worker starts
        ("preload", ["preload 0 True"]),  # the fork server's preload makes the server non-dumpable
    ],
)
def test_importing_the_grader_changes_nothing_in_the_process_until_a_worker_starts(run, expected):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", PROCESS_STATE, run], capture_output=True, text=True, timeout=120)
    assert proc.stdout.splitlines() == expected, proc.stderr[-2000:]


def test_an_installed_grader_keeps_site_packages_on_the_workers_path(tmp_path, monkeypatch):
    """Installed from a wheel, the project's root is site-packages: dropping it from a worker's sys.path would
    break every student import that the fork server has not preloaded. A checkout's root is dropped."""
    import site

    from autograder.runner import proxy

    checkout = proxy.sealed_sys_path()
    assert str(proxy.PROJECT_ROOT) in checkout
    installed = tmp_path / "site-packages"
    (installed / "autograder").mkdir(parents=True)
    monkeypatch.setattr(proxy, "PROJECT_ROOT", installed)
    assert str(installed) not in proxy.sealed_sys_path()
    assert not set(site.getsitepackages()) & set(proxy.sealed_sys_path())


def test_describe_gives_only_the_fields_asked_for():
    from autograder.runner.proxy import RemoteObject
    from autograder.runner.worker import GlobalRef, RequestHandler

    state = RequestHandler()
    state.namespace["net"] = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())
    full = state.op_describe(GlobalRef("net"))
    assert full["modules"][2]["type"] == "torch.nn.modules.activation.ReLU" and full["is_module"]
    assert state.op_describe(GlobalRef("net"), ("parameter_shapes",)) == {
        "parameter_shapes": {"0.weight": (3, 2), "0.bias": (3,)}
    }
    with pytest.raises(ValueError, match="no field 'shapes'"):
        RemoteObject(None, GlobalRef("net"), "net").describe("shapes")
