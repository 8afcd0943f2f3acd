"""The parent's side of a worker: starting it, asking it things with a time limit, and the `student` proxy."""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
import tempfile
import threading
import time
import weakref
from typing import Any

from autograder import messages
from autograder.paths import ASSIGNMENTS_DIR, PROJECT_ROOT, REFERENCE_DIR
from autograder.runner import channel, sandbox, wire
from autograder.runner.forkserver import (
    FORK_SERVER_PRELOAD,
    PRELOAD_ENV,
    bare_main_module,
    fork_server_context,
)
from autograder.runner.scratch import (
    remove_scratch_parent,
    remove_tree,
    scratch_parent,
    sweep_stale,
)
from autograder.runner.worker import (
    DESCRIPTION_FIELDS,
    MAX_REPLY_BYTES,
    MEMORY_EXIT,
    PROGRESS_BYTES,
    SETUP_FAILED_EXIT,
    GlobalRef,
    Handle,
    PassedFd,
    WorkerConfig,
    read_progress,
    worker_main,
)
from autograder.text import decoded

# multiprocessing's fork server can only import modules before it forks; this one prepares it (see its docstring).
OUTPUT_LINE_LIMIT = 500  # characters of one printed line shown to the instructor
_STOP_WAIT_S = 5.0  # for the keeper to end the worker once told, before it is killed itself


class StudentError(Exception):
    """The student's code raised while the grader was calling it."""

    def __init__(self, call: str, error: dict[str, Any]) -> None:
        self.call = call
        self.error = error
        super().__init__(messages.student_raised(call, error))


class MissingSymbol(Exception):
    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__(messages.missing_symbols(names))


class WorkerLost(Exception):
    """The worker stopped answering: a time limit, a crash, or a reply the grader will not read. `detail` is for
    the instructor: the last lines the worker wrote to its stdout and stderr (e.g. a CUDA error)."""

    def __init__(self, kind: str, message: str, detail: str = "") -> None:
        self.kind = kind  # "timeout", "budget", "memory", "crash", "setup", "too_large", "bad_reply"
        self.detail = detail
        super().__init__(message)


class SubmissionUnreadable(Exception):
    pass


def default_sealed() -> tuple[str, ...]:
    """What no worker may see whatever is being graded: the project's references, checks and examples."""
    project = (PROJECT_ROOT / name for name in ("reference_solutions", "assignments", "examples", "results"))
    return tuple(str(p) for p in (*project, ASSIGNMENTS_DIR, REFERENCE_DIR))


def sealed_sys_path() -> tuple[str, ...]:
    """The sys.path entries a worker drops: a checkout's root (from which `reference_solutions` would import) and
    the grader's working folder. An installed grader's root is site-packages, which the student's own imports
    need: it stays (the data inside the installed package is sealed by path instead, see `default_sealed`)."""
    checkout = (PROJECT_ROOT / "assignments").is_dir()
    return (*((str(PROJECT_ROOT),) if checkout else ()), os.getcwd())


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds:g} s"


def _reuse_parent_fork_server() -> None:
    """In a scoring process that is itself a child of a fork server (`--jobs N`), start workers from that same
    server instead of launching a new one (a fresh interpreter importing torch: ~2.5 s per scoring process).
    Python 3.11-3.13 hand a fork server's children its address and liveness pipe but not its pid, so
    `ensure_running` would launch another; the server is known to be alive, as this process holds its pipe."""
    from multiprocessing import forkserver, resource_tracker

    server = forkserver._forkserver  # type: ignore[attr-defined]
    if (
        sys.version_info < (3, 14)  # 3.14 adds an auth key to the handshake: not relied upon there
        and getattr(server, "_forkserver_pid", 0) is None
        and getattr(server, "_forkserver_address", None)
        and getattr(server, "_forkserver_alive_fd", None) is not None
        and "ensure_running" not in vars(server)
    ):
        server.ensure_running = resource_tracker.ensure_running  # type: ignore[method-assign]


class ForkServerFailed(RuntimeError):
    """The fork server ended before it could start a worker or scoring process: nothing can be graded."""


def fork_server_failure() -> str:
    modules = os.environ.get(PRELOAD_ENV, "").split()
    return messages.FORK_SERVER_FAILED.format(modules=", ".join(modules) or "none")


def _context() -> multiprocessing.context.ForkServerContext:
    # A fork server that has already imported torch makes each worker a cheap fork of a clean process: no
    # re-import per submission, and none of the scoring process's state (references, checks) in the child.
    context = fork_server_context([FORK_SERVER_PRELOAD])
    _reuse_parent_fork_server()
    return context


_live_workers: weakref.WeakSet[Worker] = weakref.WeakSet()


_ending = threading.Event()


def _stop_all() -> None:
    workers = list(_live_workers)
    for worker in workers:  # all at once: each keeper kills its worker, waits for it and removes its scratch
        if not worker.closed:
            worker.signal(signal.SIGTERM)
    for worker in workers:
        worker.stop()
    remove_scratch_parent()


_ending_process = threading.Lock()


def end_this_process(code: int) -> None:
    """End this process now (`os._exit`), its workers and their scratch folders first. Called again while it
    ends (a second signal, the parent-death watcher), it leaves the ending to the first call."""
    if not _ending_process.acquire(blocking=False):
        if threading.current_thread() is threading.main_thread():
            return  # a signal handler run inside the first call: that call goes on and exits
        threading.Event().wait()  # another thread: the first call's os._exit ends this one too
    try:
        _stop_all()
    finally:
        os._exit(code)


class ScoringEnded(Exception):
    """This scoring process is being shut down (see `end_every_worker`): it starts no more workers."""


def end_every_worker() -> None:
    """This scoring process is ending while it may be grading in another thread (a Dask worker that is closing):
    no worker starts from now on, and every live one ends with its process tree. A call in flight then finds its
    worker lost, so whatever was being graded must not be recorded (`scoring_ended`)."""
    _ending.set()
    _stop_all()


def scoring_ended() -> bool:
    return _ending.is_set()


def _stop_all_and_exit(signum: int, frame: Any) -> None:
    end_this_process(128 + signum)


@functools.cache
def guard_this_process() -> None:
    """Once per process, as it starts its first worker: make it non-dumpable (a worker must not read the scoring
    process's memory or files through /proc), stop its workers when it exits, and, in a main process whose
    SIGTERM and SIGHUP nobody else handles, on those too, so that no worker or scratch folder is left."""
    sandbox.protect_this_process()
    # Scratch folders of graders that were killed before they could remove them: in the background, at low
    # priority, as what a killed grader left may be a tree of many thousands of files, and grading must not wait.
    threading.Thread(target=_sweep_quietly, name="sweep-stale-scratch", daemon=True).start()
    atexit.register(_stop_all)
    # A process that multiprocessing started (a scoring process) ends with os._exit, after its finalizers but
    # without atexit's handlers.
    multiprocessing.util.Finalize(None, _stop_all, exitpriority=100)
    if (
        multiprocessing.current_process().name == "MainProcess"
        and threading.current_thread() is threading.main_thread()  # only the main thread may set a handler
    ):
        for signum in (signal.SIGTERM, signal.SIGHUP):  # a terminal closed: as SIGTERM
            if signal.getsignal(signum) is signal.SIG_DFL:
                signal.signal(signum, _stop_all_and_exit)


def _sweep_quietly() -> None:
    with contextlib.suppress(Exception):  # a sweep that fails leaves folders for the next one, nothing else
        sweep_stale()


class Worker:
    """One worker (its keeper process, see keeper.py) and the pipe to it. Everything that comes back is read as
    hostile: within a deadline, within a size budget, from descriptors this process made (the worker's output
    and progress are memory files handed to it, never paths it could replace with a link or a FIFO)."""

    def __init__(self, config: WorkerConfig | None = None) -> None:
        if _ending.is_set():
            raise ScoringEnded("this scoring process is shutting down")
        guard_this_process()
        # stop() may come from another thread (end_every_worker) or from a signal handler run inside stop()
        self._stopping = threading.RLock()
        config = config or WorkerConfig()
        # The host folder the worker's view is mounted on (its scratch folder lies at the same path inside it);
        # where no namespace can be made, the scratch folder itself.
        self.scratch = os.path.realpath(tempfile.mkdtemp(prefix="worker-", dir=scratch_parent()))
        self.memory_mb = config.memory_mb
        self.output, self.progress = _memory_file("ag-output"), _memory_file("ag-progress")
        os.ftruncate(self.progress, PROGRESS_BYTES)
        config = dataclasses.replace(
            config,
            scratch=self.scratch,
            sealed_sys_path=sealed_sys_path(),
            # A scoring process pinned to a core (LocalExecutor) keeps its worker there: the two take turns
            # (~70 requests a notebook), and on the same core neither waits for the scheduler to move it.
            cpus=tuple(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else (),
            sealed=sandbox.sealable((*config.sealed, *default_sealed())),
        )
        context = _context()
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=worker_main,
            args=(child, config, PassedFd(self.output), PassedFd(self.progress)),
            name="autograder-worker",
        )
        try:
            with bare_main_module():
                self.process.start()
        except (EOFError, ConnectionError):  # the fork server died before it could fork (a preload killed it)
            self._release()
            raise ForkServerFailed(fork_server_failure()) from None
        finally:
            child.close()
        try:  # the keeper is the fork server's child: its pid is only safe to signal through a pidfd
            self.pidfd = os.pidfd_open(self.process.pid or -1)
        except (AttributeError, OSError):  # not Linux 5.3+: it is ended through its pipe only
            self.pidfd = -1
        self.fd = self.conn.fileno()
        os.set_blocking(self.fd, False)  # every read and write below has a deadline
        self.seq = 0
        self.stopped_at: tuple[int, int, int] | None = None  # (cell, statement, line) loading when it stopped
        self.last_output = ""  # the tail of its output, kept when it stops (its memory file is closed)
        self.last_output_size = 0
        self.closed = False
        _live_workers.add(self)

    @property
    def alive(self) -> bool:
        return not self.closed and self.process.is_alive()

    def request(self, op: str, *args: Any, timeout: float) -> Any:
        """Send one request and wait at most `timeout` seconds for its whole answer."""
        self.seq += 1
        deadline = time.monotonic() + timeout
        try:
            # Pickle (wire.py), not multiprocessing's: tensors travel as bytes, not as shared memory handed over a
            # socket, which the worker's sandbox does not allow.
            channel.send(self.fd, wire.dumps_request((self.seq, op, args)), deadline)
            data = channel.receive(self.fd, deadline, MAX_REPLY_BYTES)
        except channel.Closed:
            raise self._lost() from None
        except channel.TimedOut:
            self.stop()
            raise WorkerLost("timeout", messages.TIMEOUT.format(seconds=_fmt_seconds(timeout))) from None
        except channel.TooLarge:
            self.stop()
            raise WorkerLost("too_large", messages.TOO_LARGE.format(limit=MAX_REPLY_BYTES // 2**20)) from None
        try:
            reply = wire.loads_reply(data)
        except wire.BadReply as exc:
            self.stop()
            raise WorkerLost("bad_reply", messages.BAD_REPLY.format(problem=str(exc).split("\n")[0][:200])) from None
        if not isinstance(reply, dict) or reply.get("seq") != self.seq:
            self.stop()
            raise WorkerLost("bad_reply", messages.BAD_REPLY.format(problem="it did not answer the question asked"))
        return reply

    def _lost(self) -> WorkerLost:
        self.process.join(timeout=_STOP_WAIT_S)
        code = self.process.exitcode
        self.stop()
        if code == MEMORY_EXIT:
            return WorkerLost("memory", messages.MEMORY.format(limit=self.memory_mb))
        detail = messages.WORKER_OUTPUT.format(code=code, output=self.last_output.strip() or "(nothing)")
        if code == SETUP_FAILED_EXIT:
            return WorkerLost("setup", messages.WORKER_SETUP_FAILED, detail)
        return WorkerLost("crash", messages.crashed(code), detail)

    def stop(self) -> None:
        """End the worker and its whole process tree: closing the pipe tells its keeper, which kills the worker
        (the kernel then ends the rest of its PID namespace) and exits; a keeper that does not is killed."""
        with self._stopping:
            self._stop()

    def _stop(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.stopped_at is None:
            self.stopped_at = read_progress(self.progress)
        self.conn.close()
        self.process.join(timeout=_STOP_WAIT_S)
        if self.process.exitcode is None:
            self.signal(signal.SIGKILL)
            self.process.join(timeout=_STOP_WAIT_S)
        self.last_output, self.last_output_size = self.output_tail(), self.output_size()
        self._release()

    def signal(self, signum: int) -> None:
        """Signal the keeper through its pidfd: its pid may already name another process (pids are reused, and
        fast where many processes come and go), its pidfd never does."""
        if self.pidfd < 0:
            return
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(self.pidfd, signum)

    def _release(self) -> None:
        if getattr(self, "pidfd", -1) >= 0:
            os.close(self.pidfd)
            self.pidfd = -1
        for fd in (self.output, self.progress):
            try:
                os.close(fd)
            except OSError:
                pass
        self.output = self.progress = -1
        remove_tree(self.scratch)

    def output_tail(self, limit: int = 2000) -> str:
        if self.output < 0:
            return self.last_output[-limit:]
        size = self.output_size()
        return decoded(os.pread(self.output, limit, max(0, size - limit)), line_limit=OUTPUT_LINE_LIMIT)

    def output_size(self) -> int:
        """Bytes the worker has printed so far."""
        if self.output < 0:
            return self.last_output_size
        return os.fstat(self.output).st_size


def _memory_file(name: str) -> int:
    """A file only this process and the worker it is handed to hold (no path anyone could replace)."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create(name, os.MFD_CLOEXEC)
    handle = tempfile.TemporaryFile()  # not Linux: created and unlinked at once
    fd = os.dup(handle.fileno())
    handle.close()
    return fd


class RemoteObject:
    """Something that lives in the worker: a student's function or class, or an object made from them."""

    def __init__(self, session: Any, ref: GlobalRef | Handle, label: str) -> None:
        self._session = session
        self._ref = ref
        self._label = label

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.call(*args, **kwargs)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """Call it in the worker, after seeding torch, numpy and random there with the check's seed."""
        description = functools.partial(messages.describe_call, self._label, args, kwargs)
        return self._session.ask("call", self._ref, args, kwargs, self._seed(), self._watch(), call=description)

    def call_keeping_args(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Call; returns {"result", "args", "kwargs"} with the arguments as the call left them. The call itself is
        made as every other is (the worker cannot tell that its arguments will be looked at)."""
        description = functools.partial(messages.describe_call, self._label, args, kwargs)
        result = self._session.ask("call", self._ref, args, kwargs, self._seed(), self._watch(), call=description)
        after = self._session.ask("arguments", call=description)
        return {"result": result, "args": after["args"], "kwargs": after["kwargs"]}

    def grad(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Call it and backpropagate sum(output): {"output", "input_grads", "param_grads"}."""
        description = functools.partial(messages.describe_call, self._label, args, kwargs)
        return self._session.ask("grad", self._ref, args, kwargs, self._seed(), self._watch(), call=description)

    def _watch(self) -> tuple[str, ...]:
        # The forbidden functions of the exercise being checked: the same for every call of its checks.
        return tuple(getattr(self._session, "watch", ()))

    def _seed(self) -> int:
        # Every call is seeded with the check's own seed, so a student's model initialises the same way on every
        # run and grading is repeatable.
        return int(self._session.call_seed)

    def describe(self, *fields: str) -> dict[str, Any]:
        """Type, repr, signature and, for a torch module, its layers and parameter shapes (worker.DESCRIPTION_FIELDS);
        only `fields` where given."""
        unknown = [f for f in fields if f not in DESCRIPTION_FIELDS]
        if unknown:
            raise ValueError(f"describe() has no field {unknown[0]!r}; it has {', '.join(DESCRIPTION_FIELDS)}")
        return self._session.ask("describe", self._ref, fields or DESCRIPTION_FIELDS, call=self._label)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._session.ask("getattr", self._ref, name, call=f"{self._label}.{name}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self._ref), tuple(self._ref.__reduce__()[1]))

    def __repr__(self) -> str:
        return f"<student {self._label}>"


def decode(session: Any, value: Any) -> Any:
    """Turn handles in a reply into RemoteObjects; everything else is already plain data."""
    if isinstance(value, dict):
        if "__remote__" in value and isinstance(value["__remote__"], int):
            return RemoteObject(session, Handle(value["__remote__"]), str(value.get("type", "object")))
        return {k: decode(session, v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(session, v) for v in value]
    if isinstance(value, tuple):
        return tuple(decode(session, v) for v in value)
    return value


class StudentProxy:
    """`student.loss(x, labels)` runs the student's function `loss` in the worker."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def __getattr__(self, name: str) -> RemoteObject:
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in self._session.defined:
            raise MissingSymbol([name])
        return RemoteObject(self._session, GlobalRef(name), name)

    def put(self, value: Any, label: str = "object") -> RemoteObject:
        """Send a picklable object (e.g. a small network the check built, or a function of the assignment's
        helpers module to run there) to the worker; returns a handle, callable when the object is."""
        remote = self._session.ask("put", value, call=f"sending {label}")
        assert isinstance(remote, RemoteObject)
        remote._label = label
        return remote

    @property
    def forbidden_calls(self) -> list[str]:
        """The forbidden functions (the exercise's `forbidden`) that the student's code called during this
        exercise's checks so far, found while it ran, however they were reached."""
        return list(self._session.forbidden_seen.get(self._session.exercise, []))

    @property
    def cells(self) -> list[str]:
        """The submission's code cells, for static checks made in the parent (never executed here)."""
        return [cell.source for cell in self._session.submission.cells]
