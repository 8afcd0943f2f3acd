"""The keeper: the process the fork server starts for a worker, which makes its namespaces, starts it, watches it
and ends it. It never runs student code, and student code cannot reach it: the worker is its child in a PID
namespace of its own (the keeper lies outside it, so it cannot be named), runs as another id or without
capabilities, and has none of the keeper's descriptors.

While the worker lives, the keeper
- counts its memory whole: resident memory, plus what it stores in its tmpfs (scratch folder and /dev/shm), which
  no resident-memory figure shows; past the limit it kills the worker and exits with `MEMORY_EXIT`;
- ends it the moment the scoring process goes (its end of the pipe closes: a finished submission, Ctrl-C, a
  crash, SIGKILL), and dies with the fork server;
- exits as the worker did (its exit status, or the signal that killed it), which is what the scoring process
  learns of the worker's end. Process 1 of the worker's namespace is a third, idle process (`_start_init`): when
  the keeper kills it, the kernel ends every process left in the namespace.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

from autograder.runner import namespaces, sandbox
from autograder.runner.scratch import remove_tree

MEMORY_EXIT = 71  # the keeper stopped the worker for holding more memory than allowed
SETUP_FAILED_EXIT = 70  # the worker could not be set up (EX_SOFTWARE): the grader's fault, not the student's
POLL_S = 0.05
MEMORY_STATUS = MEMORY_EXIT << 8  # the wait status of a process that exited with MEMORY_EXIT


def run(
    conn: Any,
    output_fd: int,
    memory_mb: int | None,
    scratch: str,
    tmpfs: tuple[int, int, int],
    start_worker: Callable[[sandbox.Entered], None],
) -> None:
    """The keeper's life (never returns). `scratch`: the worker's folder on this machine, removed once the worker
    has ended (the scoring process may be gone by then); `tmpfs`: bytes and files of the scratch folder, bytes of
    /dev/shm; `start_worker` runs in the worker, once it is forked, and must not return."""
    os.dup2(output_fd, 1)  # what the keeper or the worker says while setting up reaches the instructor's detail
    os.dup2(output_fd, 2)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the scoring process's to handle; it then stops us
    sandbox.name_this_process("ag-keeper")
    # The fork server's end (the grader killed) is told with SIGTERM, not SIGKILL, as is a scoring process's
    # (`proxy.end_this_process`): the keeper then kills and waits for its worker before it goes. A worker whose
    # keeper died first would be left to the machine's process 1 to reap, and until then its PID namespace's
    # process 1 cannot end.
    signal.signal(signal.SIGTERM, _parent_gone)
    namespaces.die_with_parent(signal.SIGTERM)
    proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the host's, before any namespace
    # The scratch folder's parent as this machine sees it: bwrap's view of it is read-only.
    parent = os.open(os.path.dirname(scratch), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        entered = sandbox.enter(*tmpfs)
    except BaseException:  # a layer failed half way: no worker may run behind walls other than the result says
        _fail()
    try:
        init = _start_init(entered.layer) if entered.layer in (sandbox.NAMESPACES, sandbox.USER_NAMESPACES) else None
    except BaseException:  # no process 1 (out of processes or memory): the grader's fault, never the student's
        _fail()
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.close(proc)
            os.close(parent)
            start_worker(entered)
        except BaseException:
            _fail()
        os._exit(0)
    status = _watch(conn, pid, proc, memory_mb, entered.mounts)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # ending already
    if init is not None:
        os.kill(init, signal.SIGKILL)  # from outside its namespace: the one signal its process 1 cannot ignore
        os.waitpid(init, 0)
    if entered.holder is not None:  # bwrap's namespaces may go now
        try:
            entered.holder.stdin.close()  # type: ignore[union-attr]
            entered.holder.wait(timeout=5)
        except Exception:  # noqa: BLE001 - the keeper ends anyway; bwrap dies with it
            pass
    remove_tree(os.path.basename(scratch), dir_fd=parent)
    _exit_as(status)


def _start_init(layer: str) -> int:
    """Process 1 of the worker's PID namespace: it only keeps the namespace alive, so that the worker is an
    ordinary process (a process 1 ignores the signals it sends itself: a student's abort() or raise() would not
    end it). The keeper's next child, the worker, is process 2; it can neither signal nor trace process 1."""
    if layer == sandbox.NAMESPACES and INIT_PROGRAM:
        try:
            return _spawn_init(INIT_PROGRAM)
        except OSError:  # the program gone since the server started, no /proc to list descriptors from
            pass
    return _fork_init()


# Process 1 under a root grader: a program that reads its input until the keeper's end of it closes. Started
# without a copy of the keeper (posix_spawn: the ~600 MB it maps is neither copied nor torn down again, ~5 ms of
# CPU a worker). It runs as root: the worker runs as another id (nobody) without capabilities and behind seccomp,
# so it cannot signal it (nor could it as process 1's own namespace), trace it, or read it through /proc.
INIT_PROGRAM = next((p for p in ("/usr/bin/cat", "/bin/cat") if os.access(p, os.X_OK)), "")


def _spawn_init(program: str) -> int:
    """`program` as process 1, its input a pipe only the keeper writes to: when the keeper ends, however it
    ends, the pipe closes, process 1 ends, and with it every process left in the namespace."""
    read_end, write_end = os.pipe()  # both close on exec; the keeper holds the write end until it exits
    inherited = [int(fd) for fd in os.listdir("/proc/self/fd") if int(fd) > 2 and int(fd) != read_end]
    try:
        return os.posix_spawn(
            program,
            ["ag-init"],
            {},
            file_actions=[
                (os.POSIX_SPAWN_DUP2, read_end, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_DUP2, 1, 2),
                # descriptors handed to the keeper without close-on-exec (its output, the worker's progress)
                *((os.POSIX_SPAWN_CLOSE, fd) for fd in inherited),
            ],
            setsigdef=(signal.SIGINT, signal.SIGTERM, signal.SIGPIPE),
        )
    finally:
        os.close(read_end)


def _fork_init() -> int:
    """Process 1 as a copy of the keeper, without capabilities, and non-dumpable as the fork server is: under a
    user namespace the worker has process 1's id, and an exec'd program would be dumpable, so readable and
    writable through /proc by a process of the same id."""
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            namespaces.die_with_parent()
            sandbox.name_this_process("ag-init")
            namespaces.drop_privileges(None)
            os.write(ready_write, b"1")
            os.closerange(0, 2**31 - 1)
            while True:
                signal.pause()
        finally:
            os._exit(0)
    os.close(ready_write)
    os.read(ready_read, 1)  # its privileges are gone before the worker exists (or init is gone: then so is it)
    os.close(ready_read)
    return pid


class _ParentGone(Exception):
    pass


def _parent_gone(signum: int, frame: Any) -> None:
    raise _ParentGone


def _fail() -> NoReturn:
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(SETUP_FAILED_EXIT)


def _held(pid: int, proc: int, mounts: namespaces.Mounts) -> int:
    """Bytes the worker holds: resident memory and its files in memory."""
    try:
        fd = os.open(f"{pid}/statm", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc)
        try:
            resident = int(os.read(fd, 200).split()[1]) * os.sysconf("SC_PAGE_SIZE")
        finally:
            os.close(fd)
    except (OSError, ValueError, IndexError):
        resident = 0
    stored = sum(namespaces.used_bytes(fd) for fd in (mounts.scratch, mounts.shm) if fd is not None)
    return resident + stored


def _watch(conn: Any, pid: int, proc: int, memory_mb: int | None, mounts: namespaces.Mounts) -> int:
    """Until the worker ends: its wait status, or MEMORY_EXIT's if the keeper stopped it for its memory."""
    poller = select.poll()
    # Only its hang-up: requests are the worker's to read (where POLLRDHUP is missing, POLLHUP is always reported).
    poller.register(conn.fileno(), getattr(select, "POLLRDHUP", 0))
    try:
        ended = os.pidfd_open(pid)
        poller.register(ended, select.POLLIN)
    except (AttributeError, OSError):  # a kernel before 5.3: look every POLL_S
        ended = -1
    limit = memory_mb * 2**20 if memory_mb else None
    wait_ms = int(POLL_S * 1000) if limit or ended < 0 else None
    try:
        while True:
            events = poller.poll(wait_ms)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            if any(fd == conn.fileno() for fd, _ in events):  # the scoring process is gone, or done with it
                break
            if limit and _held(pid, proc, mounts) > limit:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return MEMORY_STATUS
    except _ParentGone:  # the fork server is gone, or the scoring process is ending (SIGTERM)
        pass
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


def _exit_as(status: int) -> None:
    """End as the worker ended: its exit status, or killed by the signal that killed it."""
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        os._exit(code)
    try:
        signal.signal(-code, signal.SIG_DFL)
    except (OSError, ValueError):  # SIGKILL and SIGSTOP have no handler to reset
        pass
    os.kill(os.getpid(), -code)
    os._exit(128 - code)  # a signal this process could not die of
