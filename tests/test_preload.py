"""Workers inherit the course's usual imports from the fork server (and an assignment's `preload`), plots render
with a non-interactive backend, and a module the server could not import is the worker's to meet."""

import ctypes
import json
import mmap
import os
import subprocess
import sys
import textwrap

import pytest

from autograder.paths import PROJECT_ROOT
from autograder.runner.forkserver import DEFER_COMPILER_ENV, HUGE_PAGES_ENV
from autograder.runner.proxy import PRELOAD_ENV, Worker
from autograder.runner.sandbox import NO_NAMESPACES_ENV
from autograder.runner.worker import GlobalRef

SPEC = """
name = "toy"
title = "Toy"
source = "tests"
reference = "reference.py"
preload = ["colorsys", "no_such_module_anywhere", "exits_at_import"]

[[exercises]]
id = "seen"
title = "What the worker had before the notebook imported anything"
symbols = { seen = "function" }
points = 1
"""
CHECK = """
import pytest

@pytest.mark.public
@pytest.mark.points(1)
def test_seen(student, reference):
    got = student.seen()
    assert got == reference.seen(), f"the worker had {got}"
"""
REFERENCE = """
def seen():
    return [True, True, True, True, "agg"]
"""
# Evaluated at the top of the notebook, before any import of the student's: constant expressions, so they run in
# the default definitions-only mode.
STUDENT = """
import sys
SEEN = ('torchvision' in sys.modules, 'matplotlib.pyplot' in sys.modules, 'tqdm.auto' in sys.modules,
        'colorsys' in sys.modules)
import matplotlib.pyplot as plt

def seen():
    return [*SEEN, plt.get_backend().lower()]
"""


def test_workers_start_with_the_course_imports_and_the_assignments_preload(tmp_path):
    folder = tmp_path / "toy"
    (folder / "checks").mkdir(parents=True)
    (folder / "assignment.toml").write_text(SPEC)
    (folder / "reference.py").write_text(textwrap.dedent(REFERENCE))
    (folder / "checks" / "test_seen.py").write_text(textwrap.dedent(CHECK))
    (tmp_path / "student.py").write_text(STUDENT)
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "exits_at_import.py").write_text("raise SystemExit('not in this environment')\n")
    # A fresh process: the fork server reads the preload list when it starts.
    command = [sys.executable, "-m", "autograder", "grade", str(folder), str(tmp_path / "student.py")]
    done = subprocess.run(
        [*command, "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(modules)},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "student.json").read_text())
    [check] = result["exercises"][0]["tests"]
    assert check["passed"], check["message"]
    assert result["errors"] == []  # "no_such_module_anywhere" and "exits_at_import" are skipped, not fatal


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_preload_that_kills_the_fork_server_stops_grading_with_a_clear_error(tmp_path, jobs):
    # A module whose import ends the process (a native library that crashes as it loads): nothing can start a
    # worker or a scoring process. The instructor gets that, once, not a traceback or a wait without end.
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "dies_at_import.py").write_text("import os\nos._exit(3)\n")
    command = [sys.executable, "-m", "autograder", "grade", "mlp", "examples/submissions/mlp/correct.ipynb"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path / "out"), "--jobs", jobs],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(modules), PRELOAD_ENV: "dies_at_import"},
    )
    assert done.returncode != 0
    assert "fork server) ended while it imported" in done.stderr, done.stderr
    assert "(dies_at_import)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "correct.json").exists()  # no half-graded result that --resume would keep


def _huge_pages_collapse_here() -> bool:
    """Whether this kernel collapses anonymous memory into huge pages on request (MADV_COLLAPSE, Linux 6.1+)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    region = mmap.mmap(-1, 8 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    region.write(b"x" * len(region))
    view = ctypes.c_char.from_buffer(region)
    start = ctypes.addressof(view)
    del view  # the mapping cannot close while a view of it exists
    aligned = (start + (2 << 20) - 1) & ~((2 << 20) - 1)
    try:
        return libc.madvise(aligned, 2 << 20, 25) == 0
    finally:
        region.close()


HUGE_PAGES_PROBE = """
import json, sys
from autograder.runner.proxy import Worker
from autograder.runner.worker import GlobalRef
worker = Worker()
try:
    source = (
        "def huge():\\n"
        "    return sum(int(l.split()[1]) for l in open('/proc/self/smaps') if l.startswith('AnonHugePages:'))"
    )
    assert worker.request("load", [(1, source)], "all", (), timeout=60)["ok"]
    print(json.dumps(worker.request("call", GlobalRef("huge"), (), {}, None, timeout=60)["value"]))
finally:
    worker.stop()
"""


@pytest.mark.parametrize("setting", ["default", "off"])
def test_workers_are_forked_from_memory_in_huge_pages_where_the_kernel_allows(setting):
    # Fork and exit cost in proportion to the page-table entries of the fork server's ~400 MB of private memory:
    # the server collapses it into 2 MiB pages (preload.collapse_into_huge_pages); a worker inherits them. A
    # command that starts few workers (AUTOGRADER_HUGE_PAGES=off) skips it. In a fresh process: this one's fork
    # server may have been started by another test, with either setting.
    env = {k: v for k, v in os.environ.items() if k != HUGE_PAGES_ENV}
    if setting == "off":
        env[HUGE_PAGES_ENV] = "off"
    done = subprocess.run([sys.executable, "-c", HUGE_PAGES_PROBE], capture_output=True, text=True, env=env,
                          cwd=PROJECT_ROOT, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    huge_kb = json.loads(done.stdout.strip().splitlines()[-1])
    if setting == "default" and _huge_pages_collapse_here():
        assert huge_kb > 64 * 1024, f"only {huge_kb} kB of the worker's memory is in huge pages"
    elif not _huge_pages_always():  # asked not to, or THP off, a kernel before 6.1: forks cost what they did
        assert huge_kb < 16 * 1024, f"{huge_kb} kB of the worker's memory is in huge pages"


def _huge_pages_always() -> bool:
    """THP "always": the kernel backs large heaps with huge pages by itself, whatever the server asks."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled", encoding="ascii") as f:
            return "[always]" in f.read()
    except OSError:
        return False


def test_workers_inherit_the_c_library_the_fork_server_found():
    # ctypes.util.find_library runs `ldconfig -p` in a subprocess: once, in the fork server, not twice in every
    # worker as it isolates itself.
    worker = Worker()
    try:
        source = (
            "import sys\n"
            "found = sys.modules['autograder.runner.namespaces'].c_library.cache_info()\n"
            "def lookups():\n"
            "    return [found.misses, found.hits]\n"
        )
        assert worker.request("load", [(1, source)], "all", (), timeout=60)["ok"]
        misses, hits = worker.request("call", GlobalRef("lookups"), (), {}, None, timeout=60)["value"]
    finally:
        worker.stop()
    assert misses == 1  # the fork server's own lookup
    assert hits >= 2  # the worker naming itself and entering its namespaces


COMPILER_PROBE = '''
import json, sys
from autograder.runner.forkserver import start_early, FORK_SERVER_PRELOAD
from autograder.runner.proxy import Worker
from autograder.runner.worker import GlobalRef
start_early([FORK_SERVER_PRELOAD], workers=int(sys.argv[1]))
source = """
import sys
BEFORE = ['torch._dynamo' in sys.modules, 'sympy' in sys.modules]
import torch
from torchvision.ops import roi_align

def probe():
    pooled = roi_align(torch.arange(64.0).reshape(1, 1, 8, 8), torch.tensor([[0, 0.0, 0.0, 4.0, 4.0]]), (2, 2))
    compiled = torch.compile(lambda x: x * 2 + 1, backend="eager")(torch.ones(3))
    net = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.ones_(net.weight)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    net(torch.ones(1)).sum().backward()
    optimizer.step()
    return [*BEFORE, pooled.flatten().tolist(), compiled.tolist(), net.weight.item()]
"""
worker = Worker()
try:
    assert worker.request("load", [(1, source)], "all", (), timeout=60)["ok"]
    reply = worker.request("call", GlobalRef("probe"), (), {}, None, timeout=120)
    print(json.dumps([reply["ok"], reply.get("value"), repr(reply.get("error"))[:2000]]))
finally:
    worker.stop()
'''


@pytest.mark.parametrize(
    "workers, layer, preloaded",
    [(1, "namespaces", False), (1, "audit-hook", os.geteuid() == 0), (35, "namespaces", True)],
)
def test_torch_compiler_is_left_to_a_lone_worker_which_gets_it_when_its_notebook_uses_it(workers, layer, preloaded):
    # torchvision names torch._dynamo.utils at import: ~1 s of every cold command (sympy, torch.fx, ...). A
    # command with one worker (check, grade of one notebook) leaves it to the worker (preload.import_torchvision),
    # which imports it the moment its notebook uses it: roi_align, torch.compile, an optimizer's step all give
    # what they give anywhere. A class preloads it (each worker that trains would pay it). A root grader's worker
    # without namespaces runs as nobody where the environment may be closed to it: it imports the compiler
    # before it drops root. In a fresh process: the fork server reads the setting when it starts.
    import torch
    from torchvision.ops import roi_align

    env = {k: v for k, v in os.environ.items() if k not in (DEFER_COMPILER_ENV, NO_NAMESPACES_ENV)}
    if layer == "audit-hook":
        env[NO_NAMESPACES_ENV] = "1"
    done = subprocess.run([sys.executable, "-c", COMPILER_PROBE, str(workers)], capture_output=True, text=True,
                          env=env, cwd=PROJECT_ROOT, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ok, value, error = json.loads(done.stdout.strip().splitlines()[-1])
    assert ok, error
    dynamo_before, sympy_before, pooled, compiled, weight = value
    assert (dynamo_before, sympy_before) == (preloaded, preloaded)
    expected = roi_align(torch.arange(64.0).reshape(1, 1, 8, 8), torch.tensor([[0, 0.0, 0.0, 4.0, 4.0]]), (2, 2))
    assert pooled == expected.flatten().tolist()
    assert compiled == [3.0, 3.0, 3.0]
    assert weight == 0.5  # 1 - 0.5 * d(w * 1)/dw


@pytest.mark.parametrize("workers", [1, 35, 1000])
def test_what_a_command_tells_its_fork_server_stays_with_the_server(workers, monkeypatch):
    """A one-worker command leaves the compiler to its worker and skips huge pages; its own later children (a
    test run's `grade` subprocess of a whole class) must start servers that decide for themselves."""
    from multiprocessing import forkserver

    from autograder.runner import forkserver as ours

    told = []
    monkeypatch.delenv(DEFER_COMPILER_ENV, raising=False)
    monkeypatch.setenv(HUGE_PAGES_ENV, "kept")  # the instructor's own setting comes back as it was
    monkeypatch.setattr(forkserver, "ensure_running", lambda: told.append(
        (os.environ.get(DEFER_COMPILER_ENV), os.environ.get(HUGE_PAGES_ENV))))  # fmt: skip
    ours.start_early([ours.FORK_SERVER_PRELOAD], workers=workers)
    assert told == [("1" if workers == 1 else None, "kept" if workers >= ours.HUGE_PAGES_FROM else "off")]
    assert DEFER_COMPILER_ENV not in os.environ and os.environ[HUGE_PAGES_ENV] == "kept"
