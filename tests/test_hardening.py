"""The adversarial corpus: hostile and broken submissions, graded in one batch with short limits.

Each notebook attacks one exercise of `mlp` and solves the other three correctly (from the mutation suite's
correct code): the attacked exercise must lose its points with a status and a message that names what went
wrong, and the other three must keep full marks. Files that are not notebooks at all get an error result and
cost nothing else. The whole batch must finish within BATCH_BOUND_S seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autograder import messages
from autograder.grader import grade
from autograder.options import GradingOptions
from autograder.paths import PROJECT_ROOT
from autograder.results import SubmissionResult

from . import unprivileged
from .conftest import write_notebook
from .mutants import mlp

REFERENCE = PROJECT_ROOT / "reference_solutions" / "mlp.py"
CHECKS = PROJECT_ROOT / "assignments" / "mlp" / "checks"
TIMEOUT_S = 2.0
MEMORY_MB = 1024
BATCH_BOUND_S = 180  # measured ~30 s with --jobs 1 or 2 on a 2-core machine; the bound leaves room for a slow CI

CE_HEAD = "def cross_entropy_loss(x, labels):\n"
# torch.from_file(shared=True) opens and maps the file in C, past the audit hook: only the namespaces stop it.
ESCAPE = Path(tempfile.gettempdir()) / "autograder-from-file-escape"

# (kind, attacked exercise, code replacing that exercise, words the student's message must contain)
ATTACKS: list[tuple[str, str, str, str]] = [
    ("hang_in_function", "approximate_function",
     "def approximate_function(x_train, y_train):\n    while True:\n        pass\n", "did not finish within"),
    ("hang_at_class_definition", "Net",
     "class Net(nn.Module):\n    while True:\n        pass\n", "stopped the grader while your notebook was loading"),
    ("hang_in_constructor", "Net",
     "class Net(nn.Module):\n    def __init__(self, *args):\n        super().__init__()\n        while True:\n"
     "            pass\n", "did not finish within"),
    ("memory_bomb_tensor", "cross_entropy_loss",
     CE_HEAD + "    big = torch.ones(2**31)\n    return big.sum()\n", "memory"),
    ("memory_bomb_list", "cross_entropy_loss",
     CE_HEAD + "    counts = [0] * 10**10\n    return x.mean()\n", "memory"),
    # 320 MB whose pages are never touched: refused for its size, never near the time limit, however loaded the machine
    ("huge_return_value", "shuffle_and_split",
     "def shuffle_and_split_data(X, y, seed):\n    return torch.empty(80_000_000)\n", "MiB"),
    ("os_exit", "approximate_function",
     "import os\ndef approximate_function(x_train, y_train):\n    os._exit(3)\n", "exited with status 3"),
    ("system_exit", "Net",
     "class Net(nn.Module):\n    def __init__(self, *args):\n        raise SystemExit(0)\n", "SystemExit"),
    ("keyboard_interrupt", "cross_entropy_loss", CE_HEAD + "    raise KeyboardInterrupt\n", "KeyboardInterrupt"),
    ("segfault", "shuffle_and_split",
     "import faulthandler\ndef shuffle_and_split_data(X, y, seed):\n    faulthandler._sigsegv()\n",
     "segmentation fault"),
    ("endless_recursion", "cross_entropy_loss", CE_HEAD + "    return cross_entropy_loss(x, labels)\n",
     "RecursionError"),
    ("reads_stdin", "approximate_function",
     "def approximate_function(x_train, y_train):\n    return input('how many relus? ')\n", "EOFError"),
    # A print flood is cut at the cap and costs nothing (a correct function with a huge print keeps its points);
    # a file written past the cap still fails in the student's code.
    ("file_flood", "cross_entropy_loss",
     CE_HEAD + "    with open('flood.txt', 'w') as f:\n        for _ in range(10**6):\n            f.write('x' * 100)\n"
     "    return x.mean()\n", "printed or wrote more"),
    ("imports_reference", "cross_entropy_loss",
     CE_HEAD + "    from reference_solutions.mlp import cross_entropy_loss as ref\n    return ref(x, labels)\n",
     "No module named 'reference_solutions'"),
    ("reads_reference_by_path", "cross_entropy_loss",
     CE_HEAD + f"    ns = {{}}\n    exec(open({str(REFERENCE)!r}).read(), ns)\n"
     "    return ns['cross_entropy_loss'](x, labels)\n", "sandbox"),
    ("lists_hidden_checks", "shuffle_and_split",
     f"import os\ndef shuffle_and_split_data(X, y, seed):\n    return os.listdir({str(CHECKS)!r})\n", "sandbox"),
    ("shells_out_for_reference", "cross_entropy_loss",
     CE_HEAD + f"    import subprocess\n    return subprocess.check_output(['cat', {str(REFERENCE)!r}])\n",
     "sandbox"),
    ("network", "approximate_function",
     "def approximate_function(x_train, y_train):\n    import socket\n"
     "    socket.create_connection(('pypi.org', 443), timeout=1)\n", "sandbox"),
    ("kills_the_grader", "Net",
     "import os, signal\nclass Net(nn.Module):\n    def __init__(self, *args):\n"
     "        os.kill(os.getppid(), signal.SIGKILL)\n", "sandbox"),
    ("tampers_with_comparisons", "cross_entropy_loss",
     "torch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"
     "torch.testing.assert_close = lambda *a, **k: None\n" + CE_HEAD + "    return torch.tensor(0.0)\n", "Expected"),
    ("tampers_with_pytest", "shuffle_and_split",
     "import pytest, _pytest.outcomes\npytest.fail = lambda *a, **k: None\n_pytest.outcomes.fail = pytest.fail\n"
     "def shuffle_and_split_data(X, y, seed):\n    return X[:1], y[:1], X, y\n", ""),
    ("evil_return_object", "cross_entropy_loss",
     "import os\nclass Evil:\n    def __reduce__(self):\n        return (os.system, ('touch /tmp/autograder-pwned',))\n"
     "    def __eq__(self, other):\n        return True\n" + CE_HEAD + "    return Evil()\n", ""),
    ("writes_outside_through_native_code", "cross_entropy_loss",
     CE_HEAD + f"    mark = torch.from_file({str(ESCAPE)!r}, shared=True, size=4)\n    mark[0] = 1\n"
     "    return x.mean()\n", "unable to open file"),
    ("syntax_error_in_one_cell", "Net", "class Net(nn.Module)\n    def forward(self, x):\n        return x\n",
     "SyntaxError"),
]  # fmt: skip
RESULTS_ATTACK = "overwrites_results"
BROKEN_FILES = {
    "not_json.ipynb": b'{"cells": [ this is not json',
    "a_picture.ipynb": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
    "corrupt.zip": b"PK\x03\x04 but nothing else",
}


def _cells(exercise: str, code: str) -> list[str]:
    return [mlp.HEADER] + [code if ex == exercise else base for ex, base in mlp.BASE.items()]


def grade_corpus(folder: Path, out: Path, jobs: int) -> float:
    """Write the corpus into `folder`, grade it into `out` (seconds taken); also run as an unprivileged user."""
    (out / "sentinel.json").write_text('{"untouched": true}\n')
    for kind, exercise, code, _ in ATTACKS:
        write_notebook(folder / f"{kind}.ipynb", _cells(exercise, code))
    overwrite = (
        CE_HEAD + "    import os, glob\n"
        f"    for name in glob.glob({str(out)!r} + '/*.json'):\n"
        "        open(name, 'w').write('{}')\n"
        f"    open({str(out)!r} + '/pwned.json', 'w').write('{{}}')\n"
        "    return x.mean()\n"
    )
    write_notebook(folder / f"{RESULTS_ATTACK}.ipynb", _cells("cross_entropy_loss", overwrite))
    write_notebook(folder / "honest.ipynb", _cells("", ""))
    for name, data in BROKEN_FILES.items():
        (folder / name).write_bytes(data)
    options = GradingOptions(timeout=TIMEOUT_S, memory_mb=MEMORY_MB, budget=60)
    started = time.perf_counter()
    grade("mlp", [folder], out_dir=out, options=options, jobs=jobs)
    return time.perf_counter() - started


def _read_results(out: Path) -> dict[str, SubmissionResult]:
    written = (json.loads(p.read_text()) for p in out.glob("*.json"))
    return {d["submission"]: SubmissionResult.from_dict(d) for d in written if "submission" in d}  # not the sentinel


def _graded_here(tmp_path_factory, jobs: int):
    """The corpus graded by this process; with --jobs 2 the scoring processes and their workers are forks of one
    shared fork server, so the sandbox is checked on that path too."""
    if ESCAPE.exists():
        ESCAPE.unlink()
    folder, out = tmp_path_factory.mktemp("hostile"), tmp_path_factory.mktemp("results")
    elapsed = grade_corpus(folder, out, jobs)
    return _read_results(out), out, elapsed


@pytest.fixture(scope="module")
def batch_jobs1(tmp_path_factory):
    return _graded_here(tmp_path_factory, 1)


@pytest.fixture(scope="module")
def batch_jobs2(tmp_path_factory):
    return _graded_here(tmp_path_factory, 2)


@pytest.fixture(scope="module")
def batch_unprivileged():
    """The corpus graded by `nobody` (the tests run as root): what an instructor grading as themselves gets."""
    arranged = unprivileged.arrange()
    yield _graded_by(arranged)
    shutil.rmtree(arranged.root, ignore_errors=True)


def _graded_by(arranged: unprivileged.Unprivileged):
    if ESCAPE.exists():
        ESCAPE.unlink()
    folder, out = arranged.root / "hostile", arranged.root / "results"
    for made in (folder, out):
        made.mkdir()
        os.chown(made, arranged.uid, arranged.gid)
    code = (
        "import sys; from pathlib import Path; from tests.test_hardening import grade_corpus; "
        f"print(grade_corpus(Path({str(folder)!r}), Path({str(out)!r}), 1))"
    )
    proc = arranged.run(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _read_results(out), out, float(proc.stdout.split()[-1])


@pytest.fixture(scope="module", params=["jobs1", "jobs2", pytest.param("unprivileged", marks=pytest.mark.slow)])
def batch(request):
    return request.getfixturevalue(f"batch_{request.param}")


def test_corpus_has_at_least_fifteen_kinds():
    assert len(ATTACKS) + 1 + len(BROKEN_FILES) >= 15


def test_batch_finishes_within_the_stated_bound(batch):
    results, _, elapsed = batch
    assert len(results) == len(ATTACKS) + 2 + len(BROKEN_FILES)
    assert elapsed < BATCH_BOUND_S, f"{elapsed:.0f} s"


@pytest.mark.parametrize("kind, exercise, code, words", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attacked_exercise_loses_its_points_and_only_it(batch, kind, exercise, code, words):
    result = batch[0][f"{kind}.ipynb"]
    target = result.exercise(exercise)
    # Checks that a harmless wrong answer also passes (e.g. "does not change its inputs") may keep their point.
    assert target.score <= 0.3 * target.max_score, [(t.name, t.message) for t in target.tests]
    assert target.status in ("partial", "failed", "timeout", "error", "missing")
    shown = "\n".join([*result.errors, *(t.message for t in target.tests)])
    assert shown.strip(), "a student must see why"
    assert words in shown, shown
    assert "Traceback" not in shown and "autograder/" not in shown
    for other in result.exercises:
        if other.id != exercise:
            assert other.score == other.max_score, [(t.name, t.message) for t in other.tests if not t.passed]


def test_results_cannot_be_overwritten_by_student_code(batch):
    results, out, _ = batch
    result = results[f"{RESULTS_ATTACK}.ipynb"]
    assert result.exercise("cross_entropy_loss").score == 0
    assert "sandbox" in result.exercise("cross_entropy_loss").tests[0].message
    assert (out / "sentinel.json").read_text() == '{"untouched": true}\n'
    assert not (out / "pwned.json").exists()
    honest = json.loads((out / "honest.json").read_text())
    assert honest["score"] == honest["max_score"] == 40


def test_nothing_in_a_returned_object_runs_in_the_grader(batch):
    assert not Path("/tmp/autograder-pwned").exists()


def test_native_code_cannot_write_outside_the_working_folder(batch):
    assert not ESCAPE.exists()  # the namespaces' read-only view stops it where the audit hook cannot see it


@pytest.mark.parametrize("name", sorted(BROKEN_FILES))
def test_unreadable_files_get_an_error_result_and_cost_nothing_else(batch, name):
    results, out, _ = batch
    result = results[name]
    assert result.score == 0 and result.errors
    assert name in result.errors[0]
    assert all(e.status == "error" for e in result.exercises)
    assert (out / f"{Path(name).stem}.json").exists()
    assert results["honest.ipynb"].score == 40


def test_workers_ran_in_the_strongest_sandbox_this_machine_allows(request, batch):
    levels = {r.isolation for r in batch[0].values() if r.isolation}
    if os.geteuid() == 0 and "unprivileged" not in request.node.callspec.id:
        assert levels == {"namespaces"}
    else:  # graded by an ordinary user: nobody here, or whoever runs these tests
        assert levels == {unprivileged.expected_layer()}


@pytest.mark.slow
def test_an_unprivileged_grader_gives_the_same_verdicts_as_root(batch_jobs1, batch_unprivileged):
    """Every exercise of every file: the same status and score, whether graded by root or by nobody."""

    def verdicts(results: dict[str, SubmissionResult]) -> dict[str, list[tuple[str, str, float]]]:
        return {name: [(e.id, e.status, e.score) for e in r.exercises] for name, r in results.items()}

    assert batch_jobs1[0].keys() == batch_unprivileged[0].keys()
    assert verdicts(batch_unprivileged[0]) == verdicts(batch_jobs1[0])


def test_memory_that_grows_slowly_is_stopped_by_the_watchdog():
    from autograder.runner.proxy import Worker, WorkerLost
    from autograder.runner.worker import GlobalRef, WorkerConfig

    worker = Worker(WorkerConfig(memory_mb=512, cap_address_space=False))  # as on CUDA: resident memory watched only
    try:
        code = "def hoard():\n    kept = []\n    while True:\n        kept.append(bytearray(2**24))\n"
        assert worker.request("load", [(0, code)], "all", timeout=30)["ok"]
        with pytest.raises(WorkerLost) as lost:
            worker.request("call", GlobalRef("hoard"), (), {}, None, timeout=120)
        assert lost.value.kind == "memory"
        assert "more than 512 MiB of memory" in str(lost.value)
    finally:
        worker.stop()


def test_without_namespaces_the_audit_hook_still_guards_files_processes_and_network():
    from autograder.runner.proxy import Worker
    from autograder.runner.worker import GlobalRef, WorkerConfig

    worker = Worker(WorkerConfig(env={"AUTOGRADER_NO_NAMESPACES": "1"}))
    try:
        code = (
            "import os\ndef attempt(what):\n    try:\n        return repr(eval(what))\n"
            "    except BaseException as e:\n        return str(e)\n"
        )
        loaded = worker.request("load", [(0, code)], "all", timeout=30)["value"]
        assert loaded["sandbox"] == "audit-hook"
        attempts = {
            f"open({str(REFERENCE)!r}).read()": "reading",
            f"os.listdir({str(CHECKS)!r})": "looking into",
            "open('/tmp/autograder-escape.txt', 'w')": "writing",
            "os.system('true')": "starting programs",
            "__import__('socket').socket()": "network access",
            "__import__('ctypes').CDLL(None)": "loading native libraries",
        }
        for attempt, words in attempts.items():
            answer = worker.request("call", GlobalRef("attempt"), (attempt,), {}, None, timeout=30)["value"]
            assert answer.startswith("the grader's sandbox does not allow " + words), (attempt, answer)
        fine = worker.request(
            "call", GlobalRef("attempt"), ("open('mine.txt', 'w').write('ok')",), {}, None, timeout=30
        )
        assert fine["value"] == "2"  # its own working folder stays writable
    finally:
        worker.stop()


NATIVE_PROBE = """
import ctypes, importlib.util, os, shutil, torch

def attempt(what):
    try:
        return repr(eval(what))
    except BaseException as e:
        return str(e)
"""


@pytest.mark.parametrize("layer", ["audit-hook", "strongest"])
def test_the_environments_native_code_loads_but_a_library_of_the_students_own_does_not(layer):
    """torchvision's compiled operators load through torch.ops.load_library (ctypes): allowed, as for every native
    library under the installed environment. A copy of one in the scratch folder (as if the student wrote it),
    a bare name (libc.so.6) and CDLL(None) are refused, and so is every way into a loaded library's functions."""
    import importlib.util
    import sys
    import sysconfig

    from autograder.runner.proxy import Worker
    from autograder.runner.worker import GlobalRef, WorkerConfig

    installed = next(Path(importlib.util.find_spec("torchvision").origin).parent.glob("*.so"))  # e.g. _C*.so
    extension = next(Path(sysconfig.get_paths()["platstdlib"]).rglob("_bisect*.so"), None) or next(
        Path(sys.base_prefix).rglob("lib-dynload/_bisect*.so")
    )
    worker = Worker(WorkerConfig(env={"AUTOGRADER_NO_NAMESPACES": "1"} if layer == "audit-hook" else {}))
    try:
        assert worker.request("load", [(0, NATIVE_PROBE)], "all", timeout=60)["ok"]
        if layer == "audit-hook" and os.geteuid() == 0:
            # The worker runs as nobody, who may not read this machine's Python under /root: the copies a student
            # would make are made for it, in its (real) scratch folder.
            for source, name in ((installed, "mine.so"), (extension, extension.name)):
                shutil.copy(source, Path(worker.scratch) / name)
                os.chmod(Path(worker.scratch) / name, 0o644)

        def attempt(code: str) -> str:
            return worker.request("call", GlobalRef("attempt"), (code,), {}, None, timeout=60)["value"]

        assert attempt("__import__('torchvision').ops.nms(torch.ones(1, 4), torch.ones(1), 0.5).tolist()") == "[0]"
        assert attempt(f"ctypes.CDLL({str(installed)!r})._name") == repr(str(installed))
        refused = {
            f"ctypes.CDLL({str(installed)!r}).PyInit__C": "loading native functions",
            f"ctypes.CDLL({str(installed)!r})['free']": "loading native functions",
            "ctypes.CDLL(None)": "loading native libraries",
            "ctypes.CDLL('libc.so.6')": "loading native libraries",
            f"(os.path.exists('mine.so') or shutil.copy({str(installed)!r}, 'mine.so')) and "
            "ctypes.CDLL(os.path.abspath('mine.so'))": ("loading native libraries"),
            "ctypes.CDLL('./mine.so')": "loading native libraries",
            f"(os.path.exists({extension.name!r}) or shutil.copy({str(extension)!r}, {extension.name!r})) and "
            "importlib.util.module_from_spec("
            f"importlib.util.spec_from_file_location('_bisect', os.path.abspath({extension.name!r})))": (
                "loading native libraries"
            ),
            "ctypes.c_int.from_address(id(1))": "reading raw memory",
        }
        for code, words in refused.items():
            answer = attempt(code)
            assert answer.startswith("the grader's sandbox does not allow " + words), (code, answer)
        # torch's own loader goes through ctypes too, and gets the same answer for the student's library
        assert attempt("torch.ops.load_library('mine.so')").startswith("Could not load this library")
    finally:
        worker.stop()


TORCHVISION_SPEC = """
name = "images"
title = "Images"
source = "tests"
reference = "reference_solutions/images.py"

[[exercises]]
id = "normalize"
title = "Normalise a batch of grey images to [-1, 1]"
symbols = { normalize = "function" }
points = 2
"""
TORCHVISION_CHECKS = """
import pytest
import torch
from autograder.checklib import expect_tensor

@pytest.mark.points(2)
def test_values(student, reference, gen):
    images = torch.rand(4, 1, 8, 8, generator=gen)
    expect_tensor(student.normalize(images), reference.normalize(images), what="normalize(images)")
"""


def test_a_notebook_that_uses_torchvision_transforms_gets_full_marks_and_no_errors(tmp_path):
    from autograder.grader import grade_chunk
    from autograder.spec import load_assignment
    from autograder.submission import load_submissions

    (tmp_path / "reference_solutions").mkdir()
    (tmp_path / "reference_solutions" / "images.py").write_text("def normalize(images):\n    return 2 * images - 1\n")
    folder = tmp_path / "assignments" / "images"
    (folder / "checks").mkdir(parents=True)
    (folder / "assignment.toml").write_text(TORCHVISION_SPEC)
    (folder / "checks" / "test_normalize.py").write_text(TORCHVISION_CHECKS)
    cells = [
        "import torch\nimport torchvision\nfrom torchvision import datasets, transforms\n"
        "from torchvision.transforms import ToTensor",
        "def normalize(images):\n    flipped = transforms.functional.hflip(transforms.functional.hflip(images))\n"
        "    return transforms.Normalize((0.5,), (0.5,))(flipped)",
    ]
    path = write_notebook(tmp_path / "uses_torchvision.ipynb", cells)
    [result] = grade_chunk(load_assignment(folder), load_submissions([path]), GradingOptions())
    assert result.errors == ()
    assert result.score == result.max_score == 2, [t.message for t in result.exercise("normalize").tests]


@pytest.mark.parametrize("jobs, how", [(2, "kill main"), (1, "ctrl-c"), (2, "ctrl-c")], ids=lambda v: str(v))
def test_an_interrupted_batch_keeps_its_results_and_resume_grades_only_the_rest(tmp_path, jobs, how):
    """Ways to stop a batch. "kill main": only the
    `autograder` process (as the OOM killer would); its scoring processes, forks of the fork server rather than its
    children, must not outlive it. "ctrl-c": SIGINT to the process group, as a terminal sends it: the batch stops
    at once (pytest must not swallow it), and a submission half graded at that moment is not written."""
    import subprocess
    import sys

    folder = tmp_path / "class"
    source = (PROJECT_ROOT / "examples" / "submissions" / "mlp" / "correct.ipynb").read_bytes()
    for i in range(12):
        (folder / f"student{i:02}.ipynb").parent.mkdir(exist_ok=True)
        (folder / f"student{i:02}.ipynb").write_bytes(source)
    out = tmp_path / "results"
    command = [sys.executable, "-m", "autograder", "grade", "mlp", str(folder), "--out", str(out), "--jobs", str(jobs)]
    with sigint_ignored():  # as under `make test &`, cron or a CI wrapper: the test must not depend on how it started
        batch = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True, preexec_fn=as_from_a_terminal)  # fmt: skip
    deadline = time.monotonic() + 300
    # 12 submissions make chunks of 3 (--jobs 1): the 4th result means the signal lands inside a pytest session
    while len(list(out.glob("student*.json"))) < 4 and time.monotonic() < deadline and batch.poll() is None:
        time.sleep(0.05)
    if how == "ctrl-c":
        os_kill_group(batch.pid, signal.SIGINT)
        code = batch.wait(timeout=60)
        deadline = time.monotonic() + 15  # the fork server exits once it sees the batch gone (~2 s under load)
        while session_processes(batch.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = session_processes(batch.pid)
        os_kill_group(batch.pid, signal.SIGKILL)
        assert code == 130 and not survivors, (code, survivors)
    else:
        batch.kill()
        batch.wait()
        deadline = time.monotonic() + 15
        while session_processes(batch.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = session_processes(batch.pid)
        os_kill_group(batch.pid, signal.SIGKILL)
        assert not survivors, f"processes outlived the killed batch: {survivors}"
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("student*.json")}
    assert 3 <= len(kept) < 12, "the batch should have been killed half way"
    for name in kept:  # whatever was written is whole, never half a file
        assert json.loads((out / name).read_text())["score"] == 40
    resumed = subprocess.run([*command, "--resume"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(kept)} submission(s) already graded" in resumed.stdout
    assert len(list(out.glob("student*.json"))) == 12
    assert all((out / name).stat().st_mtime_ns == mtime for name, mtime in kept.items()), "graded again"
    rows = (out / "grades.csv").read_text().splitlines()
    assert len(rows) == 13 and all(row.endswith(",40,40") for row in rows[1:])


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored in this process, as it is in a job a non-interactive shell starts in the background."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def as_from_a_terminal() -> None:
    """In the child before exec: a batch started from a terminal gets Ctrl-C, whatever this test process ignores
    (an ignored SIGINT is inherited across exec, and Python then leaves it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_the_batch_a_ctrl_c_test_starts_can_be_interrupted_even_where_sigint_is_ignored():
    """The condition `make test &` creates; without it the Ctrl-C cases above wait for a batch that never stops."""
    import subprocess
    import sys

    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    with sigint_ignored():
        plain = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
        ours = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                              preexec_fn=as_from_a_terminal)  # fmt: skip
    assert plain.stdout.strip() == "False"  # what an unprepared child gets: Ctrl-C would not stop it
    assert ours.stdout.strip() == "True"


def os_kill_group(pid: int, sig: int) -> None:
    import os

    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def session_processes(session: int) -> list[str]:
    """Names of the live processes in a session (zombies excluded)."""
    import os

    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != session:
                continue
            status = dict(
                line.split(":", 1) for line in Path(entry.path, "status").read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        if not status.get("State", "").strip().startswith("Z"):
            found.append(f"{entry.name} {status.get('Name', '').strip()}")
    return found


def test_resume_grades_again_a_result_that_says_it_was_never_reached(tmp_path):
    from autograder.results import error_result, write_json
    from autograder.spec import load_assignment

    folder = tmp_path / "class"
    folder.mkdir()
    source = (PROJECT_ROOT / "examples" / "submissions" / "mlp" / "correct.ipynb").read_bytes()
    for name in ("ana", "ben"):
        (folder / f"{name}.ipynb").write_bytes(source)
    out = tmp_path / "results"
    out.mkdir()
    spec = load_assignment("mlp")
    # as left by a grader that stopped before reaching ben: ana's real result, ben's placeholder
    write_json(out, "ana", dataclasses.replace(error_result(spec, "ana.ipynb", "", "kept", "cpu"), score=40.0))
    write_json(out, "ben", error_result(spec, "ben.ipynb", "", messages.NOT_GRADED, "cpu"))
    report = grade("mlp", [folder], out_dir=out, options=GradingOptions(), resume=True)
    assert [r.submission for r in report.reused] == ["ana.ipynb"]
    assert json.loads((out / "ben.json").read_text())["score"] == 40
    assert json.loads((out / "ana.json").read_text())["errors"] == ["kept"]
