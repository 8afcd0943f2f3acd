"""The system calls a worker may make: an allow-list, default deny (EPERM), loaded with seccomp as the last step
of its set-up, so that it holds for student code whatever Python's audit hook sees.

Built with libseccomp (through `pyseccomp`, a small ctypes binding) once per fork server, exported as a BPF
program, and loaded by each worker with one system call. Where libseccomp is not installed, or the kernel refuses
filters, workers run without this wall and every result names it as missing.

What it grants is what a PyTorch worker was measured to need on the course's notebooks (see the README's isolation
table): files, memory, threads, time, signals, pipes and Unix sockets. What it refuses, among the rest: starting
programs (execve, execveat) and processes (fork, vfork, clone without CLONE_THREAD; clone3 answers ENOSYS so that
the C library falls back to clone, whose flags can be read), new namespaces and mounts, ptrace and reading other
processes' memory, io_uring, userfaultfd, keyrings, personality, BPF, perf events, memfd_create (memory no limit
counts), System V IPC, network sockets (only AF_UNIX), and, where the worker has no PID namespace of its own,
signals to any process but itself.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from typing import Any

from autograder.runner.namespaces import c_library

ALLOWED = (
    # files and descriptors
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
    "open", "openat", "openat2", "close", "close_range", "lseek", "fstat", "stat", "lstat", "newfstatat", "statx",
    "statfs", "fstatfs", "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getdents", "getdents64",
    "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat",
    "renameat2", "link", "linkat", "symlink", "symlinkat", "chmod", "fchmod", "fchmodat", "chown", "fchown",
    "lchown", "fchownat", "truncate", "ftruncate", "fsync", "fdatasync", "sync_file_range", "fallocate",
    "fadvise64", "flock", "utime", "utimes", "utimensat", "futimesat", "umask", "dup", "dup2", "dup3", "fcntl",
    "ioctl", "pipe", "pipe2", "select", "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "timerfd_create", "timerfd_settime",
    "timerfd_gettime", "signalfd", "signalfd4", "inotify_init", "inotify_init1", "inotify_add_watch",
    "inotify_rm_watch", "sendfile", "copy_file_range", "splice", "tee", "getxattr", "lgetxattr", "fgetxattr",
    "listxattr", "llistxattr", "flistxattr",
    # memory
    "mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "msync", "mincore", "mlock", "munlock",
    "get_mempolicy", "set_mempolicy", "mbind", "membarrier",
    # threads, time, identity, limits
    "exit", "exit_group", "wait4", "waitid", "set_tid_address", "set_robust_list", "get_robust_list", "rseq",
    "futex", "futex_waitv", "gettid", "getpid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getgroups",
    "getresuid", "getresgid", "getpgrp", "getpgid", "getsid", "arch_prctl", "prctl", "sched_yield",
    "sched_getaffinity", "sched_getparam", "sched_getscheduler", "sched_get_priority_min",
    "sched_get_priority_max", "sched_getattr", "getpriority", "getrlimit", "getrusage", "times", "sysinfo", "uname",
    "capget", "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time", "alarm",
    "setitimer", "getitimer", "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete",
    "pause", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending",
    "rt_sigtimedwait", "sigaltstack", "getrandom", "getcpu", "restart_syscall", "setrlimit",
    # Unix sockets (socket and socketpair are limited to AF_UNIX below)
    "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "sendto", "recvfrom", "shutdown", "getsockname", "getpeername",
    "getsockopt", "setsockopt", "connect", "bind", "listen", "accept", "accept4",
)  # fmt: skip
# Calls that name a process: free within the worker's own PID namespace (nothing else exists there); without one,
# only the worker itself (the pid given) or 0 (itself, or its own process group once it has its own session).
ABOUT_A_PROCESS = ("kill", "tgkill", "tkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "prlimit64", "setpriority",
                   "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr")  # fmt: skip
# What a GPU worker may also need: the CUDA driver pins host memory and may share memory with its own helpers.
# Not yet measured on a GPU (the allow-list was measured on the CPU): wider than needed rather than a driver that
# fails. Memory held this way is outside the keeper's count, as a GPU worker's address space is outside the cap.
CUDA_ALLOWED = ("memfd_create", "mlock2", "mlockall", "munlockall", "shmget", "shmat", "shmdt", "shmctl")
CLONE_THREAD = 0x00010000
CLONE_NAMESPACES = 0x7E020080  # NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME
AF_UNIX = 1
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_SECCOMP_SYSCALL = {"x86_64": 317, "aarch64": 277, "ppc64le": 358, "s390x": 348, "riscv64": 277}
DEFAULT_ACTION_ENV = "AUTOGRADER_SECCOMP_LOG"  # "1": log refused calls to the kernel log instead (to measure)


def _library() -> Any:
    """pyseccomp, or None where it or libseccomp is missing (it looks for libseccomp when imported)."""
    try:
        import pyseccomp
    except (ImportError, RuntimeError, OSError):
        return None
    return pyseccomp


def build(own_pid: int | None, cuda: bool = False) -> bytes | None:
    """The BPF program of the allow-list. `own_pid`: the worker's pid where it has no PID namespace of its own
    (calls that name a process may name only it); None within one. `cuda`: a GPU worker's (CUDA_ALLOWED too).
    None where libseccomp is not available."""
    library = _library()
    if library is None:
        return None
    refuse = library.ERRNO(errno.EPERM)
    default = library.LOG if os.environ.get(DEFAULT_ACTION_ENV) == "1" else refuse
    rules = library.SyscallFilter(default)
    rules.set_attr(library.Attr.ACT_BADARCH, refuse)  # a 32-bit call on a 64-bit kernel: refused, not a kill

    def add(action: int, name: str, *args: Any) -> None:
        if library.resolve_syscall(library.Arch.NATIVE, name) >= 0:  # absent on this architecture: nothing to allow
            rules.add_rule(action, name, *args)

    for name in (*ALLOWED, *(CUDA_ALLOWED if cuda else ())):
        add(library.ALLOW, name)
    for name in ABOUT_A_PROCESS:
        if own_pid is None:
            add(library.ALLOW, name)
        else:
            add(library.ALLOW, name, library.Arg(0, library.EQ, own_pid))
            add(library.ALLOW, name, library.Arg(0, library.EQ, 0))
    threads_only = library.Arg(0, library.MASKED_EQ, CLONE_THREAD | CLONE_NAMESPACES, CLONE_THREAD)
    add(library.ALLOW, "clone", threads_only)
    add(library.ERRNO(errno.ENOSYS), "clone3")  # its flags are out of reach: glibc then uses clone
    for name in ("socket", "socketpair"):
        add(library.ALLOW, name, library.Arg(0, library.EQ, AF_UNIX))
    return _export(rules)


def _export(rules: Any) -> bytes:
    fd = os.memfd_create("ag-seccomp", os.MFD_CLOEXEC)
    try:

        class _File:
            def fileno(self) -> int:
                return fd

        rules.export_bpf(_File())
        size = os.lseek(fd, 0, os.SEEK_CUR)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


_PROGRAMS: dict[bool, bytes | None] = {}


def in_pid_namespace(cuda: bool = False) -> bytes | None:
    """The program for workers in a PID namespace of their own, built once per process and kind (the fork server
    builds both: preload) however it is called. (A functools.cache here kept `in_pid_namespace()`, the server's
    call, and `in_pid_namespace(False)`, the worker's, apart: every worker built its own, ~1.6 ms.)"""
    key = bool(cuda)
    if key not in _PROGRAMS:
        _PROGRAMS[key] = build(None, key)
    return _PROGRAMS[key]


def load(program: bytes) -> None:
    """Install the filter in this process and all its threads (a GPU worker's driver threads too). Raises
    OSError where the kernel refuses."""

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(program, len(program))
    prog = Program(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    libc = c_library()
    number = _SECCOMP_SYSCALL.get(platform.machine())
    if number is not None:
        result = libc.syscall(
            ctypes.c_long(number),
            ctypes.c_long(_SECCOMP_SET_MODE_FILTER),
            ctypes.c_long(_SECCOMP_FILTER_FLAG_TSYNC),
            ctypes.byref(prog),
        )
    else:  # one thread only, which is all a CPU worker has
        result = libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0)
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"seccomp: {os.strerror(code)}")
