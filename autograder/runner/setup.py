"""The worker walls itself in, once its keeper has forked it and before any student code exists: its view of the
files, its id, its descriptors, its environment, its limits, CUDA, then seccomp and the audit hook (sandbox.py
says what each wall is). Nothing here runs in the scoring process.
"""

from __future__ import annotations

import ctypes
import importlib.abc
import io
import os
import resource
import sys
import tempfile
from typing import TYPE_CHECKING, Any

import torch

from autograder.devices import start_cuda
from autograder.runner import namespaces, policy, sandbox, seccomp
from autograder.runner.forkserver import DEFER_COMPILER_ENV

if TYPE_CHECKING:
    from autograder.runner.worker import WorkerConfig

MAX_FILE_BYTES = 16 * 1024 * 1024  # what the worker may print or write to any one file
OUTPUT_TRUNCATED = b"\n[output truncated: more than 16 MiB was printed; the rest was dropped]\n"


class _BlockImports(importlib.abc.MetaPathFinder):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self.prefixes = prefixes

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.split(".")[0] in self.prefixes:
            raise ImportError(f"No module named {fullname!r}")
        return None


class _CappedOutput(io.TextIOBase):
    """sys.stdout and sys.stderr of a worker: text up to `limit` bytes reaches the output file, the rest is dropped
    (once, with a note) instead of failing the print that went past it."""

    def __init__(self, fd: int, limit: int) -> None:
        self.fd = fd
        self.left = limit - len(OUTPUT_TRUNCATED)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.left > 0:
            data = text.encode("utf-8", "replace")
            if len(data) > self.left:
                data = data[: self.left] + OUTPUT_TRUNCATED
                self.left = 0
            else:
                self.left -= len(data)
            try:
                os.write(self.fd, data)
            except OSError:
                self.left = 0
        return len(text)

    def fileno(self) -> int:
        return self.fd


def _address_space() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _clean_slate(keep: tuple[int, ...]) -> None:
    """Close every descriptor but 0-2 and `keep`: nothing the fork server or the keeper held (pipes of helpers,
    the fork server's own) reaches student code."""
    low = 3
    for fd in sorted(set(k for k in keep if k >= 3)):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 2**31 - 1)


def _zero_initial_environment() -> None:
    """Overwrite the environment the fork server was started with, still in this process's memory (where
    /proc/self/environ reads it) after os.environ has been replaced: a grader's token must not be found there."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # env_start and env_end, fields 50 and 51
    except (OSError, ValueError, IndexError):
        return
    if 0 < start < end:
        ctypes.memset(start, 0, end - start)


def _only_environment(env: dict[str, str]) -> None:
    """`env` and nothing else: os.environ, the C library's environ, posix.environ (the copy os.environ was made
    from) and the memory the first one came from."""
    import posix

    os.environ.clear()
    posix.environ.clear()
    os.environ.update(env)
    _zero_initial_environment()


def _limit(config: WorkerConfig, layer: str) -> int:
    """The worker's resource limits; returns the bound on its processes and threads (0: none)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # A print flood must not fill the disk: past the limit a write fails (Python ignores SIGXFSZ) with EFBIG.
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
    if config.cpu_seconds:  # past the soft limit the kernel sends SIGXCPU, at the hard limit SIGKILL
        resource.setrlimit(resource.RLIMIT_CPU, (config.cpu_seconds, config.cpu_seconds + 5))
    if config.memory_mb and config.cap_address_space:
        # A hard ceiling on address space, above what the worker already maps: an allocation past it fails in
        # the student's code (MemoryError, "can't allocate memory"). The keeper also counts what it holds.
        limit = _address_space() + config.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if layer in (sandbox.USER_NAMESPACES, sandbox.BUBBLEWRAP):
        # Counted per user namespace, and each worker has its own: this worker's tasks alone.
        resource.setrlimit(resource.RLIMIT_NPROC, (policy.MAX_TASKS, policy.MAX_TASKS))
        return policy.MAX_TASKS
    if layer == sandbox.NAMESPACES:  # one id for every worker: its PID namespace's own pid_max instead
        return namespaces.tasks_bound() or 0
    return 0


def _import_what_the_server_deferred() -> None:
    """A root grader's worker without namespaces becomes nobody in the grader's own file system, where the Python
    environment may be closed to it (under /root): what a one-worker command's fork server left for the worker to
    import when needed (torch's compiler: preload.import_torchvision) is imported now, while it still can."""
    if os.environ.get(DEFER_COMPILER_ENV) == "1" and "torch._dynamo" not in sys.modules:
        import torch._dynamo  # noqa: F401, PLC0415 - what an optimizer's first step imports


def set_up(config: WorkerConfig, entered: sandbox.Entered, conn_fd: int, progress_fd: int) -> sandbox.Walls:
    """In the worker, the keeper's child, before any student code: its view, its id, its descriptors, its
    environment, its limits, then seccomp and the audit hook. Returns the walls it got."""
    os.setsid()  # a session and process group of its own: kill(0) names only itself
    # The folders its view is built of are made here, and it reads through them as another id: not 0750 under
    # a grader's umask of 027, or nothing the server did not preload could be imported (ModuleNotFoundError).
    os.umask(0o022)
    namespaces.die_with_parent()
    if entered.layer == sandbox.NAMESPACES:
        # Under a root grader every worker has one id, so the id's process limit cannot tell them apart: the
        # namespace's own pid_max bounds its tasks instead (Linux 6.14+), set while this process is still root.
        namespaces.bound_tasks(policy.MAX_TASKS)
    sandbox.name_this_process("ag-worker")
    holders = (*namespaces.home_folders(), tempfile.gettempdir(), "/tmp", "/var/tmp", *config.sealed_sys_path)
    grants = policy.grant(
        scratch=config.scratch,
        sealed=config.sealed,
        excluded=config.sealed_sys_path,
        holders=holders,
        cuda=config.cuda_index is not None,
        scratch_mb=config.scratch_mb,
        scratch_files=config.scratch_files,
    )
    if entered.pid_namespace:
        namespaces.build_view(grants, entered.mounts, entered.owner, as_root=entered.become is not None)
    else:
        os.chdir(config.scratch)
        if entered.become is not None:
            os.chown(config.scratch, *entered.become)
    if entered.become is not None and not entered.pid_namespace:
        _import_what_the_server_deferred()
    try:
        namespaces.drop_privileges(entered.become)
    except OSError:  # the audit hook alone as root, where even changing ids is refused (a locked-down container)
        if entered.pid_namespace:
            raise
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # input() fails at once instead of waiting for a keyboard
    _clean_slate((conn_fd, progress_fd))
    # Python's own printing goes through a cap that drops what is past it: a correct function with a huge debug
    # print keeps its points. Native code writing to fds 1 and 2 meets RLIMIT_FSIZE instead.
    sys.stdout = sys.stderr = _CappedOutput(1, MAX_FILE_BYTES)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    _only_environment(policy.environment(config.scratch, config.threads, config.env, dict(os.environ)))
    sealed = {os.path.realpath(p) for p in config.sealed_sys_path}
    sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) not in sealed]
    # Only where such a package was imported (never, in the fork server): walking all of sys.modules touches
    # thousands of objects inherited copy-on-write, ~8 ms of page copies in every worker.
    if any(name in sys.modules for name in config.blocked_modules):
        for name in list(sys.modules):
            if name.split(".")[0] in config.blocked_modules:
                del sys.modules[name]
    sys.meta_path.insert(0, _BlockImports(config.blocked_modules))
    torch.set_num_threads(config.threads)
    tempfile.tempdir = config.scratch
    tasks = _limit(config, entered.layer)
    if config.cuda_index is not None:
        start_cuda(config.cuda_index, config.gpu_memory_fraction, config.memory_mb)
    cuda = config.cuda_index is not None
    program = seccomp.in_pid_namespace(cuda) if entered.pid_namespace else seccomp.build(os.getpid(), cuda)
    filtered = False
    if program is not None:
        try:
            seccomp.load(program)
            filtered = True
        except OSError:  # a kernel without seccomp filters: the result names the wall as missing
            pass
    if config.audit_hook:
        sandbox.install_audit_hook(config.sealed, config.scratch, grants.read_only, entered.pid_namespace)
    return sandbox.Walls(
        audit_hook=config.audit_hook,
        layer=entered.layer,
        quota=entered.pid_namespace,
        seccomp=filtered,
        unprivileged=os.geteuid() != 0,
        tasks=tasks,
        memory="watchdog" if config.memory_mb else "",
    )
