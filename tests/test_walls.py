"""Attacks on the walls around a worker, written as a determined student who knows Python would write them.

One batch (`autograder grade --jobs 2`, as an instructor runs it, with a token in its environment and a temporary
folder of its own) holds correct notebooks graded before, beside and after the attackers: they keep full marks,
the batch ends within its limits, and when it has ended no process and no scratch folder of it is left. Further
tests probe one wall at a time: the kernel's (seccomp, past the audit hook), the view, memory counted whole, the
pipe, interrupts, and what a student's text may do to the instructor's terminal.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autograder.paths import PROJECT_ROOT
from autograder.runner import policy, sandbox, seccomp
from autograder.runner.proxy import Worker, WorkerLost, remove_tree
from autograder.runner.worker import GlobalRef, WorkerConfig

from . import unprivileged
from .conftest import write_notebook
from .mutants import mlp

REFERENCE = PROJECT_ROOT / "reference_solutions" / "mlp.py"
TOKEN = "tok-8c1f0a7e-canvas-secret"
TIMEOUT_S = 6  # 256 MiB written into a tmpfs as nobody, on a loaded 2-core CI machine, has taken over 3 s
BATCH_BOUND_S = 240
CE_HEAD = "def cross_entropy_loss(x, labels):\n"
CORRECT_CE = "    return (torch.logsumexp(x, 1) - x[torch.arange(len(labels)), labels]).mean()\n"
FIND_PIPE = """
def _pipe():
    import sys
    frame = sys._getframe()
    while frame is not None and "conn" not in frame.f_locals:
        frame = frame.f_back
    return frame.f_locals["conn"], frame.f_locals["seq"]
"""
NO_AUDIT = (
    "    import subprocess, sys, types\n"
    "    subprocess.sys = types.SimpleNamespace(**{**vars(sys), 'audit': lambda *a: None})  # past the audit hook\n"
)
LAUNDERED = """
class _Loss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, labels):
        ctx.save_for_backward(x, labels)
        return F.cross_entropy(x, labels)

    @staticmethod
    def backward(ctx, grad):
        x, labels = ctx.saved_tensors
        p = x.softmax(1)
        p[torch.arange(len(labels)), labels] -= 1
        return grad * p / len(labels), None

cross_entropy_loss = _Loss.apply
"""

# (kind, code replacing cross_entropy_loss, words its message must contain, points it may keep)
ATTACKS: list[tuple[str, str, str, float]] = [
    ("starts_a_program", CE_HEAD + NO_AUDIT + f"    out = subprocess.run(['cat', {str(REFERENCE)!r}], "
     "capture_output=True).stdout\n    ns = {}\n    exec(out, ns)\n    return ns['cross_entropy_loss'](x, labels)\n",
     "Operation not permitted", 0),
    ("leaves_a_daemon", CE_HEAD + NO_AUDIT + "    import time\n"
     "    subprocess.Popen(['true'], preexec_fn=lambda: time.sleep(3600))\n" + CORRECT_CE,
     "Operation not permitted", 0),
    ("signals_every_process", CE_HEAD + "    import os, signal\n    for pid in range(1, 5000):\n        try:\n"
     "            signal.pidfd_send_signal(os.pidfd_open(pid), signal.SIGKILL)\n        except OSError:\n"
     "            pass\n" + CORRECT_CE, "", 10),
    ("partial_reply", FIND_PIPE + CE_HEAD + "    import os, struct, time\n    conn, seq = _pipe()\n"
     "    os.write(conn.fileno(), struct.pack('!i', 1000) + b'abc')\n    time.sleep(3600)\n",
     "did not finish within", 0),
    ("expanding_reply", FIND_PIPE + CE_HEAD + "    import pickle, time\n    conn, seq = _pipe()\n"
     "    conn.send_bytes(pickle.dumps({'seq': seq, 'ok': True, 'value': [[[None] * 1000] * 1000] * 60}))\n"
     "    time.sleep(3600)\n", "could not read what your code returned", 0),
    ("disk_flood", CE_HEAD + "    for i in range(200):\n        with open(f'flood{i}', 'wb') as f:\n"
     "            f.write(b'x' * 15 * 2**20)\n" + CORRECT_CE, "No space left on device", 0),
    ("file_count_flood", CE_HEAD + "    for i in range(200_000):\n        open(f'f{i}', 'w').close()\n" + CORRECT_CE,
     "No space left on device", 0),
    ("deep_tree", CE_HEAD + "    import os\n    os.makedirs('/'.join(['d'] * 1500), exist_ok=True)\n" + CORRECT_CE,
     "", 10),
    ("laundered_forbidden_call", LAUNDERED, "torch.nn.functional.cross_entropy (called while your code ran)", 9),
    ("empties_the_policy", CE_HEAD + "    import os, autograder.runner.sandbox as walls\n"
     "    walls._REFUSED_EVENTS.clear()\n    os.system('true')\n" + CORRECT_CE, "does not allow starting programs", 0),
    ("reads_the_grader_environment", CE_HEAD + "    import os\n    seen = [sorted(os.environ), str(os.environ)[-99:]]\n"
     "    for path in ('/proc/self/environ', '/proc/1/environ', '/proc/1/cmdline', '/proc/2/environ'):\n"
     "        try:\n            seen.append(open(path, 'rb').read())\n        except OSError as e:\n"
     "            seen.append(str(e))\n    print(seen)\n    raise RuntimeError(repr(seen))\n", "RuntimeError", 0),
    ("links_in_place_of_its_files", CE_HEAD + f"    import os\n    os.symlink({str(REFERENCE)!r}, 'output.log')\n"
     "    os.mkfifo('progress')\n    os._exit(3)\n", "", 0),
    ("escape_sequences", CE_HEAD + "    print('\\x1b]52;c;SGVsbG8=\\x07\\x1b[2J\\x1b[31mred')\n"
     "    raise ValueError('\\x1b[2J\\x1b]0;pwned\\x07\\u202eevil \\udc80 done')\n", "ValueError", 0),
]  # fmt: skip
# Graded before, beside and after the attackers; file names are a student's text too (Rich markup, an escape).
HONEST = ("a_honest", "m_honest", "zz_honest", "markup[/]name", "escape\x1b[2Jname")
ATTACKS_BY_KIND = [(kind, code) for kind, code, _, _ in ATTACKS]


def _cells(code: str) -> list[str]:
    return [mlp.HEADER] + [code if ex == "cross_entropy_loss" else base for ex, base in mlp.BASE.items()]


def _processes_in(folder: Path) -> list[str]:
    """Processes whose working folder lies in `folder` (the grader's, its workers' scratch folders)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "cwd").startswith(str(folder)):
                found.append(f"{entry.name} {(entry / 'comm').read_text().strip()}")
    return found


def _scratch_folders(tmp: Path) -> list[str]:
    return [p.name for p in tmp.iterdir() if p.name.startswith("autograder-") and p.name[11:12].isdigit()]


def _ended(folder: Path, within: float = 10.0) -> list[str]:
    deadline = time.monotonic() + within
    while (left := _processes_in(folder)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture(scope="module", params=["root", pytest.param("unprivileged", marks=pytest.mark.slow)])
def batch(request, tmp_path_factory):
    """The batch graded by root (workers as nobody, namespaces made directly), or by nobody (an instructor grading
    as themselves: user namespaces)."""
    if request.param == "unprivileged":
        arranged = unprivileged.arrange()
        request.addfinalizer(lambda: remove_tree(str(arranged.root)))
        root = arranged.root / "walls"
        python, env = str(arranged.python), arranged.environment()
        prefix = unprivileged.as_user(arranged.uid, arranged.gid)
    else:
        root = tmp_path_factory.mktemp("walls")
        python, env, prefix = sys.executable, dict(os.environ), []
    folder, out, tmp = root / "submissions", root / "results", root / "tmp"
    for kind, code, _, _ in ATTACKS:
        write_notebook(folder / f"{kind}.ipynb", _cells(code))
    for name in HONEST:
        write_notebook(folder / f"{name}.ipynb", _cells(mlp.BASE["cross_entropy_loss"]))
    for made in (root, out, tmp):
        made.mkdir(exist_ok=True)
        if request.param == "unprivileged":
            os.chown(made, arranged.uid, arranged.gid)
    env.update({"CANVAS_TOKEN": TOKEN, "TMPDIR": str(tmp)})
    started = time.perf_counter()
    done = subprocess.run(
        [*prefix, python, "-m", "autograder", "grade", "mlp", str(folder), "-o", str(out), "-j", "2",
         "--timeout", str(TIMEOUT_S), "--budget", "60"],
        capture_output=True, cwd=root, env=env, timeout=BATCH_BOUND_S * 2, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    left = _ended(root)
    written = [json.loads(p.read_text()) for p in out.glob("*.json")]
    results = {r["submission"].removesuffix(".ipynb"): r for r in written}
    return {"done": done, "elapsed": elapsed, "left": left, "results": results, "tmp": tmp, "out": out}


def test_the_batch_ends_within_its_limits_and_leaves_nothing_behind(batch):
    assert batch["done"].returncode == 0, batch["done"].stderr[-3000:]
    assert batch["elapsed"] < BATCH_BOUND_S
    assert len(batch["results"]) == len(ATTACKS) + len(HONEST)
    assert batch["left"] == []  # no process of the batch: no daemon, no worker, no keeper, no fork server
    assert _scratch_folders(batch["tmp"]) == []  # and no scratch folder, however deep its tree


@pytest.mark.parametrize("name", HONEST)
def test_correct_notebooks_before_beside_and_after_the_attackers_keep_full_marks(batch, name):
    result = batch["results"][name]
    assert result["score"] == result["max_score"] == 40, result
    assert sandbox.missing_walls(result["walls"]) == ()


@pytest.mark.parametrize("kind, code, words, kept", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_each_attack_costs_only_its_own_exercise(batch, kind, code, words, kept):
    result = batch["results"][kind]
    target = next(e for e in result["exercises"] if e["id"] == "cross_entropy_loss")
    assert target["score"] <= kept, [(t["name"], t["message"]) for t in target["tests"]]
    shown = "\n".join([*result["errors"], *(t["message"] for t in target["tests"])])
    assert words in shown, shown
    for other in result["exercises"]:
        if other["id"] != "cross_entropy_loss":
            assert other["score"] == other["max_score"], other


def test_the_graders_environment_and_the_reference_never_reach_a_result(batch):
    written = "\n".join(p.read_text() for p in batch["out"].glob("*.json"))
    assert TOKEN not in written and "CANVAS_TOKEN" not in written
    assert "def cross_entropy_loss" not in written  # the reference, through a link left in place of output.log
    seen = batch["results"]["reads_the_grader_environment"]["output"]
    assert "Permission denied" in seen and "'HOME'" in seen  # it ran, and found nothing of the grader's


def test_student_text_reaches_the_terminal_and_the_files_escaped(batch):
    stdout = batch["done"].stdout
    assert b"\x1b" not in stdout and b"\x9b" not in stdout
    assert "\\x1b[2J" in stdout.decode() and "\\u202e" in stdout.decode()  # shown, escaped
    result = batch["results"]["escape_sequences"]
    message = next(e for e in result["exercises"] if e["id"] == "cross_entropy_loss")["tests"][0]["message"]
    assert "\x1b" not in message and "\\x1b]0;pwned\\x07" in message and "\ufffd" in message
    assert "\x1b" not in result["output"] and "\\x1b[31mred" in result["output"]


def test_feedback_pages_are_made_for_a_batch_with_hostile_text(batch, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "feedback", str(batch["out"]), "--out", str(tmp_path / "pages")],
        capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    page = (tmp_path / "pages" / "escape_sequences.html").read_text()
    assert "\x1b" not in page and "\\x1b" in page


# -- one wall at a time ------------------------------------------------------------------------------------------
RAW_SYSCALL = """
import ctypes, errno, os
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

def raw(number, *args):
    result = _libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    return errno.errorcode.get(ctypes.get_errno(), "?") if result < 0 else "allowed"
"""
# What a grader never needs, reached with raw system calls (no audit event): (name, arguments).
KERNEL_SURFACE = [
    ("fork", ()), ("vfork", ()), ("clone", (17, 0, 0, 0, 0)), ("execve", (0, 0, 0)), ("execveat", (0, 0, 0, 0, 0)),
    ("memfd_create", (0, 0)), ("io_uring_setup", (8, 0)), ("userfaultfd", (0,)), ("add_key", (0, 0, 0, 0, 0)),
    ("keyctl", (0, 0, 0, 0, 0)), ("personality", (0x0040000,)), ("unshare", (0x10000000,)), ("setns", (0, 0)),
    ("mount", (0, 0, 0, 0, 0)), ("ptrace", (16, 1, 0, 0)), ("process_vm_readv", (1, 0, 0, 0, 0, 0)),
    ("bpf", (0, 0, 0)), ("perf_event_open", (0, 0, 0, 0, 0)), ("socket", (2, 1, 0)), ("socket", (17, 3, 0)),
    ("pidfd_open", (1, 0)), ("shmget", (0, 4096, 0o1000)), ("chroot", (0,)), ("setuid", (0,)),
    ("init_module", (0, 0, 0)),
]  # fmt: skip


def _syscall_numbers() -> dict[str, int]:
    pyseccomp = pytest.importorskip("pyseccomp", reason="libseccomp is not installed")
    numbers = {name: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) for name, _ in KERNEL_SURFACE}
    numbers |= {n: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, n) for n in ("clone3", "getpid", "kill")}
    return {name: number for name, number in numbers.items() if number >= 0}


@contextlib.contextmanager
def started(config: WorkerConfig, code: str) -> Iterator[Worker]:
    worker = Worker(config)
    try:
        reply = worker.request("load", [(0, code)], "all", timeout=60)
        assert reply["ok"] and not reply["value"]["errors"], reply
        yield worker
    finally:
        worker.stop()


def _call(worker: Worker, name: str, *args: object) -> object:
    return worker.request("call", GlobalRef(name), args, {}, None, timeout=60)["value"]


@pytest.mark.parametrize("layer", ["strongest", "audit-hook only"])
def test_what_a_grader_never_needs_is_refused_by_the_kernel_with_eperm(layer):
    numbers = _syscall_numbers()
    env = {sandbox.NO_NAMESPACES_ENV: "1"} if layer == "audit-hook only" else {}
    with started(WorkerConfig(env=env, audit_hook=False), RAW_SYSCALL) as worker:  # the kernel's walls alone
        for name, args in KERNEL_SURFACE:
            if name in numbers:
                assert _call(worker, "raw", numbers[name], *args) == "EPERM", name
        assert _call(worker, "raw", numbers["clone3"], 0, 0) == "ENOSYS"  # so that threads fall back to clone
        assert _call(worker, "raw", numbers["socket"], 1, 1, 0) == "allowed"  # a Unix socket is harmless
        assert _call(worker, "raw", numbers["getpid"]) == "allowed"
        if layer == "audit-hook only":  # no PID namespace: only itself may be signalled
            assert _call(worker, "raw", numbers["kill"], 1, 0) == "EPERM"
        assert _call(worker, "raw", numbers["getpid"]) == "allowed"  # refused, not killed


def test_threads_still_start_behind_the_allow_list():
    code = "import threading, torch\ndef run():\n    out = []\n"
    code += "    t = threading.Thread(target=lambda: out.append(torch.ones(3).sum().item()))\n"
    code += "    t.start(); t.join()\n    torch.set_num_threads(2)\n"
    code += "    return out, (torch.ones(500, 500) @ torch.ones(500, 500))[0, 0].item()\n"
    with started(WorkerConfig(), code) as worker:
        assert _call(worker, "run") == ([3.0], 500.0)


def test_a_thread_bomb_meets_the_bound_on_tasks():
    code = "import threading, time\ndef bomb():\n    started = 0\n    try:\n        for _ in range(5000):\n"
    code += "            threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
    code += "            started += 1\n    except RuntimeError as e:\n        return started, str(e)\n"
    code += "    return started, ''\n"
    with started(WorkerConfig(), code) as worker:
        count, error = _call(worker, "bomb")
        assert count < policy.MAX_TASKS and "can't start new thread" in error
        assert _call(worker, "bomb")[0] == 0  # still there, still bounded


def test_memory_held_in_files_in_memory_counts_against_the_limit():
    """What a worker writes to its scratch folder and /dev/shm lives in memory (tmpfs): the keeper counts it."""
    code = "import time\ndef hold(scratch_mb, shm_mb):\n"
    code += "    for i in range(scratch_mb // 10):\n        open(f'held{i}', 'wb').write(b'x' * 10 * 2**20)\n"
    code += "    for i in range(shm_mb // 10):\n        open(f'/dev/shm/held{i}', 'wb').write(b'x' * 10 * 2**20)\n"
    code += "    time.sleep(5)\n    return 'kept'\n"
    with started(WorkerConfig(), code) as worker:
        baseline = worker.request("stats", timeout=30)["value"]["peak_rss_mb"]
    limit = int(baseline) + 150
    with started(WorkerConfig(memory_mb=limit), code) as worker:
        assert _call(worker, "hold", 20, 20) == "kept"  # within the limit: fine
    with started(WorkerConfig(memory_mb=limit), code) as worker:
        with pytest.raises(WorkerLost) as lost:
            _call(worker, "hold", 150, 60)
        assert lost.value.kind == "memory"


def test_a_worker_sees_only_what_it_is_granted(tmp_path):
    """A late submission graded alone: its classmates' notebooks beside it, another week's reference beside the
    assignment, the checkout's tests and history. None of it exists in the worker's view, even to C code."""
    course = tmp_path / "course"
    (course / "week4").mkdir(parents=True)
    (course / "week4" / "reference.py").write_text("ANSWER = 42\n")
    (course / "submissions").mkdir()
    classmate = write_notebook(course / "submissions" / "classmate.ipynb", ["SECRET = 1"])
    paths = [classmate, course / "week4" / "reference.py", PROJECT_ROOT / "tests" / "mutants" / "mlp.py",
             PROJECT_ROOT / ".git" / "HEAD", PROJECT_ROOT / "reference_solutions" / "mlp.py"]  # fmt: skip
    code = "import os, torch\ndef look(path):\n    try:\n"
    code += "        return torch.from_file(path, size=1, dtype=torch.uint8).tolist()\n"
    code += "    except RuntimeError:\n        return os.path.exists(path)\n"
    code += "def processes():\n    return sorted(p for p in os.listdir('/proc') if p.isdigit())\n"
    code += "def sockets():\n    return open('/proc/net/unix').read().splitlines()[1:]\n"
    with started(WorkerConfig(sealed=(str(course / "submissions" / "late.ipynb"),)), code) as worker:
        for path in paths:
            assert _call(worker, "look", str(path)) is False, path
        assert _call(worker, "processes") == ["1", "2"]  # its process 1 and itself
        assert _call(worker, "sockets") == []  # no Unix socket of the machine


def test_every_call_looks_the_same_from_inside_the_worker():
    """A check that looks at the arguments afterwards must not be recognisable by the code it calls."""
    code = "import sys\ndef where(x):\n    frames, f = [], sys._getframe(1)\n"
    code += "    while f is not None:\n        frames.append((f.f_code.co_name, sorted(f.f_locals)))\n"
    code += "        f = f.f_back\n"
    code += "    return repr(frames)\n"
    with started(WorkerConfig(), code) as worker:
        from autograder.runner.proxy import RemoteObject

        class Session:
            call_seed, watch, exercise, forbidden_seen = 1, (), "x", {}

            def ask(self, op, *args, call):  # noqa: ANN001, ANN202 - a stand-in for SubmissionGrading
                return worker.request(op, *args, timeout=60)["value"]

        remote = RemoteObject(Session(), GlobalRef("where"), "where")
        assert remote.call(1) == remote.call_keeping_args(1)["result"]


def test_removing_a_scratch_folder_follows_no_link_and_survives_any_tree(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "link").symlink_to(tmp_path)
    (scratch / "file-link").symlink_to(outside)
    os.mkfifo(scratch / "fifo")
    locked = scratch / "locked"
    locked.mkdir()
    (locked / "x").write_text("x")
    os.chmod(locked, 0o000)
    fd = os.open(scratch, os.O_RDONLY)
    for _ in range(3000):  # deeper than a path may be long: built one folder at a time
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)
    remove_tree(str(scratch))
    assert not scratch.exists() or os.geteuid() != 0  # root removes even what it may not read
    assert outside.read_text() == "keep me\n" and tmp_path.exists()


HANGING = CE_HEAD + "    while True:\n        pass\n"


def _signal_thread(pid: int, signum: int) -> None:
    """Send `signum` to one thread of `pid` other than its main one (tgkill), as the kernel may deliver a signal
    sent to the whole process."""
    import ctypes

    # With --jobs 2 the pool's threads run all along; with --jobs 1 another thread (the scratch sweep) may have
    # ended already, and a signal to a one-thread process can only reach its main thread.
    others = sorted(int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid) or [pid]
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(234, pid, others[0], signum) == 0, os.strerror(ctypes.get_errno())  # 234: tgkill, x86-64


@pytest.mark.parametrize(
    "command, how",
    [("grade -j 2", "SIGINT to the group"), ("grade -j 2", "SIGINT to a thread"), ("grade -j 1", "SIGINT to a thread"),
     ("grade -j 1", "SIGTERM"),
     ("grade -j 2", "SIGHUP"), ("check", "SIGHUP")],
    ids=["grade-ctrl-c", "grade-ctrl-c-other-thread", "grade-1-ctrl-c-other-thread", "grade-sigterm", "grade-sighup",
         "check-sighup"],
)
def test_interrupting_grade_or_check_ends_every_process_it_started(tmp_path, command, how):
    folder, tmp = tmp_path / "subs", tmp_path / "tmp"
    tmp.mkdir()
    for i in range(4):
        write_notebook(folder / f"s{i}.ipynb", _cells(HANGING))
    if command == "check":
        arguments = ["check", "mlp", str(folder / "s0.ipynb")]
    else:
        arguments = ["grade", "mlp", str(folder), "-o", str(tmp_path / "out"), *command.split()[1:]]
    # SIGUSR1 makes it print every thread's stack: what it waits on, should it not end in time. SIGINT as a
    # terminal leaves it: a CI runner may start the suite in the background, with SIGINT ignored (as a shell
    # does for `cmd &`), and the grader, like any program, inherits that.
    probe = ("import faulthandler, signal, sys; faulthandler.register(signal.SIGUSR1, all_threads=True); "
             "signal.signal(signal.SIGINT, signal.default_int_handler); "
             "from autograder.cli import main; sys.exit(main(sys.argv[1:]))")  # fmt: skip
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as stderr:
        run = subprocess.Popen(
            [sys.executable, "-c", probe, *arguments, "--timeout", "120"],
            cwd=tmp_path, env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.DEVNULL, stderr=stderr,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300  # a start can take minutes while the suite's otter runs load both cores
        while not any("ag-worker" in p for p in _processes_in(tmp)) and time.monotonic() < deadline:
            time.sleep(0.2)
        started = any("ag-worker" in p for p in _processes_in(tmp))
        assert started, f"no worker started: {run.poll()=}\n{errors.read_text(errors='replace')[-4000:]}"
        time.sleep(0.5)  # every scoring process at work
        if how == "SIGINT to the group":
            os.killpg(run.pid, signal.SIGINT)
        elif how == "SIGINT to a thread":  # the kernel may give a process's signal to any of its threads
            _signal_thread(run.pid, signal.SIGINT)
        else:
            run.send_signal(getattr(signal, how))
        try:
            run.wait(timeout=90)
        except subprocess.TimeoutExpired:
            run.send_signal(signal.SIGUSR1)
            time.sleep(2)
            left = "\n".join(_processes_in(tmp_path))
            pytest.fail(f"still running 90 s after {how}: {left}\n{errors.read_text()[-6000:]}")
        assert _ended(tmp_path, within=5.0) == []
        assert _scratch_folders(tmp) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()


def _dask(arguments: list[str], tmp: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(tmp), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_" + arguments[0], *arguments[1:]],
                                cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


def _wait_for(condition, what: str, within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {within} s"
        time.sleep(0.2)


@pytest.mark.slow
def test_a_dask_worker_told_to_stop_ends_its_workers_and_its_chunk_is_graded_on_another(tmp_path):
    """SIGTERM to `dask worker` (with its nanny, as it is deployed): the closing Dask worker waits for its running
    task, but the grader's workers in it end at once with their process trees and scratch folders, and the chunk
    is graded again on the Dask worker that is left, so the student's result is that worker's verdict."""
    a, b, port = tmp_path / "a", tmp_path / "b", 20000 + os.getpid() % 20000
    for folder in (a, b):
        folder.mkdir()
    write_notebook(tmp_path / "subs" / "s0.ipynb", _cells(HANGING))
    address = f"tcp://127.0.0.1:{port}"
    started = [_dask(["scheduler", "--port", str(port), "--no-dashboard"], tmp_path, tmp_path / "scheduler.log")]
    try:
        started.append(_dask(["worker", address, "--nthreads", "1", "--no-dashboard"], a, tmp_path / "a.log"))
        _wait_for(lambda: "Registered to" in (tmp_path / "a.log").read_text(), "worker a registered")
        grading = subprocess.Popen(
            [sys.executable, "-m", "autograder", "grade", "mlp", str(tmp_path / "subs"), "-o", str(tmp_path / "out"),
             "--executor", "dask", "--scheduler", address, "--timeout", "15"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        started.append(grading)
        _wait_for(lambda: any("ag-worker" in p for p in _processes_in(a)), "a worker started by worker a")
        started.append(_dask(["worker", address, "--nthreads", "1", "--no-dashboard"], b, tmp_path / "b.log"))
        _wait_for(lambda: "Registered to" in (tmp_path / "b.log").read_text(), "worker b registered")
        started[1].send_signal(signal.SIGTERM)
        _wait_for(lambda: not any(" ag-" in p for p in _processes_in(a)), "the grader's workers ended", within=6.0)
        assert _scratch_folders(a) == []
        assert _ended(a, within=20.0) == []  # then the Dask worker, its nanny and its fork server
        output, _ = grading.communicate(timeout=120)
        assert grading.returncode == 0, output
        result = json.loads((tmp_path / "out" / "s0.json").read_text())
        statuses = {e["id"]: e["status"] for e in result["exercises"]}
        assert statuses["cross_entropy_loss"] == "timeout" and statuses["Net"] == "passed", output
    finally:
        for process in reversed(started):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout=30)


def test_the_audit_hook_alone_still_stops_a_program_and_every_output_says_which_walls_were_missing(tmp_path):
    """A container without CAP_SYS_ADMIN (Gradescope's): no namespaces, yet the worker runs as nobody behind seccomp,
    a started `cat` of the reference gets nothing, and the instructor is told which walls were missing."""
    submission = tmp_path / "submission"
    code = dict(ATTACKS_BY_KIND)["starts_a_program"]
    write_notebook(submission / "mlp.ipynb", _cells(code))
    results_file = tmp_path / "results.json"
    env = {**os.environ, sandbox.NO_NAMESPACES_ENV: "1"}
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "gradescope", "mlp", "--submission-dir", str(submission),
         "--results-file", str(results_file), "--device", "cpu"],
        capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(results_file.read_text())
    lost = [t for t in results["tests"] if t["name"].startswith("cross_entropy_loss") and t["score"] < t["max_score"]]
    assert lost and "Operation not permitted" in lost[0]["output"]
    assert results["score"] <= 30
    assert results["extra_data"]["missing_walls"] == ["namespaces", "quota", "tasks"]
    assert results["extra_data"]["walls"]["unprivileged"] is True and results["extra_data"]["walls"]["seccomp"]
    assert "ran without these walls: namespaces, quota, tasks" in done.stdout  # the instructor's view of the run
    graded = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "mlp", str(submission), "-o", str(tmp_path / "out"), "-q"],
        capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT, env=env,
    )  # fmt: skip
    assert "Note: 1 of 1 submission(s) ran without these walls: namespaces, quota, tasks." in graded.stdout


def test_a_correct_notebook_keeps_full_marks_with_the_audit_hook_alone(tmp_path):
    """Without namespaces a root grader's workers run as nobody in the grader's own file system, where the Python
    environment may not be readable by nobody (here it is under /root): a worker can then import nothing the fork
    server did not. The preload must hold what grading needs (numpy.random, which numpy 2 imports only when the
    checks first seed it), or every check of a correct notebook fails with ModuleNotFoundError."""
    env = {**os.environ, sandbox.NO_NAMESPACES_ENV: "1"}
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "mlp", "examples/submissions/mlp/correct.ipynb",
         "-o", str(tmp_path / "out"), "-q"],
        capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "out" / "correct.json").read_text())
    lost = [(t["name"], t["message"]) for e in result["exercises"] for t in e["tests"] if not t["passed"]]
    assert lost == []
    assert result["score"] == result["max_score"]


def test_the_seccomp_program_is_built_once_per_kind_however_it_is_asked_for(monkeypatch):
    """The fork server builds the allow-list once (preload) and every worker loads that one: a worker that asks
    for it another way (positionally, by keyword, by default) must not build its own (~1.6 ms a worker)."""
    built = []

    def build(own_pid, cuda=False):
        built.append((own_pid, cuda))
        return f"program {cuda}".encode()

    monkeypatch.setattr(seccomp, "_PROGRAMS", {})
    monkeypatch.setattr(seccomp, "build", build)
    cpu = seccomp.in_pid_namespace(cuda=False)  # as preload asks
    assert seccomp.in_pid_namespace() is cpu and seccomp.in_pid_namespace(False) is cpu  # as setup.py asks
    gpu = seccomp.in_pid_namespace(cuda=True)
    assert seccomp.in_pid_namespace(True) is gpu and gpu != cpu
    assert built == [(None, False), (None, True)]


PROCESS_ONE = """
import os, signal

def reach():
    seen = {}
    for what, attempt in [
        ("mem", lambda: open('/proc/1/mem', 'rb').read(1)),
        ("fds", lambda: os.listdir('/proc/1/fd')),
        ("its input", lambda: open('/proc/1/fd/0', 'wb').write(b'x')),
        ("exe", lambda: os.readlink('/proc/1/exe')),
        ("environ", lambda: open('/proc/1/environ', 'rb').read()),
        ("SIGKILL", lambda: os.kill(1, signal.SIGKILL)),
        ("SIGTERM", lambda: os.kill(1, signal.SIGTERM)),
        ("SIGSTOP", lambda: os.kill(1, signal.SIGSTOP)),
    ]:
        try:
            seen[what] = repr(attempt())
        except OSError as e:
            seen[what] = type(e).__name__
    return seen

def processes():
    states = {}
    for pid in sorted(p for p in os.listdir('/proc') if p.isdigit()):
        with open(f'/proc/{pid}/stat') as f:
            states[pid] = f.read().rsplit(')', 1)[1].split()[0]
    return states
"""


def test_process_one_of_the_workers_namespace_is_out_of_its_reach():
    """Process 1 keeps the worker's PID namespace alive (and its end ends every process in it): the worker can
    neither end, stop, read, nor write it, even past the audit hook."""
    with started(WorkerConfig(audit_hook=False), PROCESS_ONE) as worker:
        layer = worker.request("load", [], "all", timeout=60)["value"]["sandbox"]
        if layer not in (sandbox.NAMESPACES, sandbox.USER_NAMESPACES):
            pytest.skip("this machine gives workers no PID namespace of their own")
        seen = _call(worker, "reach")
        signals = {seen.pop(name) for name in ("SIGKILL", "SIGTERM", "SIGSTOP")}
        # refused (another id), or, under a user namespace (its id), sent and ignored: a namespace's process 1
        # gets only the signals it handles, and process 1 here handles none
        assert signals <= {"PermissionError", "None"}, signals
        assert seen == dict.fromkeys(("mem", "fds", "its input", "exe", "environ"), "PermissionError"), seen
        time.sleep(0.2)
        assert _call(worker, "processes") == {"1": "S", "2": "R"}  # still there, asleep, not stopped


def test_process_one_holds_only_its_pipe_and_ends_when_the_keeper_does(monkeypatch):
    """Under a root grader process 1 is spawned, not forked from the keeper: it must hold nothing of the keeper's
    (its output, the worker's progress file) and end as soon as the keeper's end of its pipe closes, however the
    keeper ends. Where it cannot be spawned, a copy of the keeper stands in."""
    from autograder.runner import keeper

    if not keeper.INIT_PROGRAM:
        pytest.skip("no cat on this machine: process 1 is always the keeper's copy here")
    handed = os.open(os.devnull, os.O_RDONLY)  # as the fork server hands descriptors over: inheritable
    os.set_inheritable(handed, True)
    before = set(os.listdir("/proc/self/fd"))
    pid = keeper._spawn_init(keeper.INIT_PROGRAM)
    try:
        # posix_spawn returns once exec has begun: argv is in place (and close-on-exec done) a moment later
        deadline = time.monotonic() + 10
        while not Path(f"/proc/{pid}/cmdline").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"ag-init\0"
        fds = {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        assert fds.keys() == {"0", "1", "2"} and fds["1"] == fds["2"] == os.devnull, fds
        assert fds["0"].startswith("pipe:")
        [write_end] = [int(fd) for fd in set(os.listdir("/proc/self/fd")) - before  # the keeper's end of it
                       if os.path.exists(f"/proc/self/fd/{fd}") and os.readlink(f"/proc/self/fd/{fd}") == fds["0"]]
        assert os.waitpid(pid, os.WNOHANG) == (0, 0)  # alive while the keeper is
        os.close(write_end)  # the keeper ending
        deadline = time.monotonic() + 10
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            assert time.monotonic() < deadline, "process 1 outlived its keeper"
            time.sleep(0.01)
        pid = 0
    finally:
        os.close(handed)
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    monkeypatch.setattr(keeper, "INIT_PROGRAM", "/nonexistent/cat")
    monkeypatch.setattr(keeper, "_fork_init", lambda: -7)
    assert keeper._start_init(sandbox.NAMESPACES) == -7


UMASK_SCRIPT = """
import json, os
os.umask(0o027)
from autograder.runner.proxy import Worker
from autograder.runner.worker import GlobalRef
worker = Worker()
try:
    code = "import sys\\nPRELOADED = 'wave' in sys.modules\\nimport wave\\ndef preloaded():\\n    return PRELOADED"
    reply = worker.request("load", [(0, code)], "all", timeout=60)["value"]
    preloaded = worker.request("call", GlobalRef("preloaded"), (), {}, None, timeout=60)["value"]
    print(json.dumps({"errors": reply["errors"], "layer": reply["walls"]["layer"], "preloaded": preloaded}))
finally:
    worker.stop()
"""


def test_a_worker_imports_what_the_server_did_not_preload_whatever_the_graders_umask():
    """A grader run under umask 027 (a hardened account): its workers, another id, must still read the Python
    environment through the folders their view is built of, or every module the fork server did not preload
    (here `wave`) is a ModuleNotFoundError in the student's code."""
    proc = subprocess.run(
        [sys.executable, "-c", UMASK_SCRIPT], capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert seen["errors"] == [] and seen["preloaded"] is False, seen
