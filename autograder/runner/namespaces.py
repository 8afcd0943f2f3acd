"""The namespaces of a worker's process tree and the view of the files built inside them (policy.py says what).

A worker is two processes (see keeper.py): the keeper, which makes the namespaces and stays outside the student's
reach, and the worker proper, its child, which builds the view and then runs student code. The namespaces, made by
the keeper with `enter` and entered by the worker when it is forked:

- PID: the worker is in a process tree of its own: it sees and can signal nothing else, and when the tree's
  process 1 (an idle process of the keeper's) ends, the kernel ends everything left in it;
- mount: the view below; network: no interfaces; IPC: no System V or POSIX queue of anyone else; UTS, cgroup;
- user, where the grader is not root: the worker keeps its own (unprivileged) id, and the namespaces are owned by
  a user namespace in which only it has capabilities, until it drops them.

How they are made depends on who grades: as root directly (`ROOT`; the worker then runs as nobody), as any other
user in a new user namespace (`USER`), or, where user namespaces are refused to plain processes (Ubuntu's
AppArmor allows them to bubblewrap only), bwrap makes them and the keeper joins them (`BUBBLEWRAP`).

The view (`build_view`, in the worker) is a new root: an empty read-only tmpfs into which only the granted paths
are bound, read-only, plus a fresh /proc, /sys, a /dev of a few nodes, a private /dev/shm and the scratch folder
(tmpfs mounts the keeper made and can measure). Nothing else exists in it: no home folder, no other course folder,
no checkout, no /tmp but its own folder, no host /proc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
import pwd
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from typing import Any

from autograder.runner.policy import Grants

ROOT = "namespaces"
USER = "user-namespaces"
BUBBLEWRAP = "bubblewrap"

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
TREE_NAMESPACES = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
_ST_NOATIME = 1024  # statvfs's flags, the same bits as mount's
_ST_NODIRATIME = 2048
_MS_RELATIME = 1 << 21
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
_CAP_VERSION_3 = 0x20080522
_COVER = MS_NOSUID | MS_NODEV | MS_NOEXEC
UNPRIVILEGED_USER = "nobody"
# System calls glibc has no wrapper for, by machine: (pivot_root, move_mount, fsopen, fsconfig, fsmount,
# mount_setattr). The new mount calls have one number on every architecture.
_NEW_MOUNT_API = {"move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "mount_setattr": 442}
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "ppc64le": 203, "s390x": 217, "riscv64": 41}


class Refused(OSError):
    """This layer cannot be made here (e.g. user namespaces refused) and nothing was changed: try the next one.
    Any other OSError leaves the worker half confined: it must not run student code."""


@functools.cache
def c_library() -> Any:
    """The C library, found once per process tree: `find_library` runs `ldconfig -p` in a subprocess, which every
    worker would pay (the fork server finds it first, and its forks inherit it)."""
    found = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    found.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    found.syscall.restype = ctypes.c_long
    return found


def _check(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")
    return result


def _syscall(name: str, *args: Any) -> int:
    number = _PIVOT_ROOT.get(platform.machine()) if name == "pivot_root" else _NEW_MOUNT_API[name]
    if number is None:
        raise OSError(38, f"{name}: not known on {platform.machine()}")
    converted = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    return _check(c_library().syscall(ctypes.c_long(number), *converted), name)


def home_folders() -> tuple[str, ...]:
    """The real user's home folder, from the password database and $HOME (as the grader was started)."""
    found = [os.environ.get("HOME", "")]
    try:
        found.append(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        pass
    return tuple(dict.fromkeys(os.path.realpath(p) for p in found if p and os.path.isdir(p)))


def unprivileged_ids() -> tuple[int, int]:
    """(uid, gid) a root grader's workers run as: nobody's."""
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


# -- the keeper: making the namespaces ---------------------------------------------------------------------------
def _unshare(flags: int) -> None:
    if c_library().unshare(flags) != 0:
        errno = ctypes.get_errno()
        raise Refused(errno, f"unshare: {os.strerror(errno)}")


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write(text)


def enter_as_root() -> None:
    """The namespaces of a root grader's worker; this process's next child is process 1 of the new PID namespace."""
    _unshare(TREE_NAMESPACES)


def enter_user_namespace() -> None:
    """A user namespace that maps this process's own id to itself (the one id an unprivileged process may map),
    owning the other namespaces: inside, the same unprivileged user, with capabilities only over them."""
    uid, gid = os.getuid(), os.getgid()
    _unshare(CLONE_NEWUSER | TREE_NAMESPACES)
    libc = c_library()
    # A non-dumpable process's /proc/self files belong to root: this one (a fork of the non-dumpable fork server)
    # could not write its own maps. Dumpable for these three writes only, before any student code exists.
    libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    try:
        _write("/proc/self/setgroups", "deny")  # the kernel requires it before an unprivileged gid_map
        _write("/proc/self/uid_map", f"{uid} {uid} 1\n")
        _write("/proc/self/gid_map", f"{gid} {gid} 1\n")
    finally:
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def bubblewrap() -> str | None:
    return shutil.which("bwrap")


BWRAP_ARGUMENTS = (
    "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
    "--die-with-parent", "--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc",
)  # fmt: skip


def enter_bubblewrap(bwrap: str) -> subprocess.Popen:
    """bwrap makes the namespaces around a shell that says so once they exist and then waits on a pipe (bwrap gives
    its pid on --info-fd, as the host numbers it); this
    process joins them (as the owner of bwrap's user namespace it may, with every capability in it), and its next
    child is a process of bwrap's PID namespace. The shell must live while the worker does (its PID namespace ends
    with bwrap): the caller closes its stdin when the worker has ended. bwrap builds no view: the worker builds it
    as in the other layers."""
    info_read, info_write = os.pipe()
    try:
        holder = subprocess.Popen(
            [bwrap, "--info-fd", str(info_write), *BWRAP_ARGUMENTS, "--", "/bin/sh", "-c", "echo ready; read _"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(info_write,),
        )
    finally:
        os.close(info_write)
    assert holder.stdin is not None and holder.stdout is not None and holder.stderr is not None
    try:
        ready = holder.stdout.readline().strip() == b"ready"  # the shell runs once the namespaces exist
        found = re.search(rb'"child-pid"\s*:\s*(\d+)', os.read(info_read, 4096) if ready else b"")
    finally:
        os.close(info_read)
    if not found:
        problem = holder.stderr.read().decode(errors="replace").strip()
        holder.stdin.close()
        problem = problem or f"exit status {holder.wait()}"
        raise Refused(0, f"bubblewrap: {problem}")
    line = found.group(1)
    names = ("user", "mnt", "net", "ipc", "uts", "cgroup", "pid")
    fds = [os.open(f"/proc/{int(line)}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC) for ns in names]
    libc = c_library()
    try:
        if libc.setns(fds[0], 0) != 0:
            errno = ctypes.get_errno()
            holder.stdin.close()
            raise Refused(errno, f"join bubblewrap's user namespace: {os.strerror(errno)}")
        for name, fd in zip(names[1:], fds[1:], strict=True):
            _check(libc.setns(fd, 0), f"join bubblewrap's {name} namespace")
    finally:
        for fd in fds:
            os.close(fd)
        holder.stdout.close()
        holder.stderr.close()
    return holder


# -- the keeper: tmpfs it can measure --------------------------------------------------------------------------
def detached_tmpfs(options: dict[str, str]) -> int | None:
    """A tmpfs not mounted anywhere yet (the new mount API): the keeper keeps its descriptor to measure what the
    worker stores in it (`used_bytes`), the worker attaches it in its view. None where the kernel cannot."""
    try:
        fs = _syscall("fsopen", b"tmpfs", 1)  # FSOPEN_CLOEXEC
    except OSError:
        return None
    try:
        for key, value in options.items():
            _syscall("fsconfig", fs, FSCONFIG_SET_STRING, key.encode(), value.encode(), 0)
        _syscall("fsconfig", fs, FSCONFIG_CMD_CREATE, None, None, 0)
        return _syscall("fsmount", fs, 1, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
    except OSError:
        return None
    finally:
        os.close(fs)


def used_bytes(mount_fd: int) -> int:
    """Bytes stored in a tmpfs, through the keeper's descriptor of it."""
    try:
        found = os.fstatvfs(mount_fd)
    except OSError:
        return 0
    return (found.f_blocks - found.f_bfree) * found.f_frsize


# -- the worker: building the view -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Mounts:
    """The tmpfs the keeper made for the worker (descriptors), or None where the worker mounts its own."""

    scratch: int | None
    shm: int | None


def tmpfs_options(size: int, files: int | None, uid: int, gid: int, mode: str) -> dict[str, str]:
    options = {"size": str(size), "mode": mode, "uid": str(uid), "gid": str(gid)}
    if files:
        options["nr_inodes"] = str(files)
    return options


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    libc = c_library()
    result = libc.mount(
        source.encode() if source else None,
        target.encode(),
        fstype.encode() if fstype else None,
        flags,
        data.encode() if data else None,
    )
    _check(result, f"mount {target}")


def _attach_tmpfs(fd: int | None, target: str, options: dict[str, str]) -> None:
    if fd is not None:
        _syscall("move_mount", fd, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH)
    else:
        _mount("tmpfs", target, "tmpfs", _COVER, ",".join(f"{k}={v}" for k, v in options.items()))


def _read_only(target: str, keep_devices: bool = False) -> None:
    """Make a bind mount and every mount under it read-only (and without set-uid programs or device nodes)."""
    attributes = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | (0 if keep_devices else MOUNT_ATTR_NODEV)
    attr = (ctypes.c_uint64 * 4)(attributes, 0, 0, 0)
    try:
        _syscall("mount_setattr", AT_FDCWD, target.encode(), AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr))
    except OSError:  # a kernel before 5.12: the top mount at least, repeating the flags a user namespace locked
        kept = os.statvfs(target).f_flag
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | (0 if keep_devices else MS_NODEV)
        flags |= kept & (MS_NODEV | MS_NOEXEC | _ST_NOATIME | _ST_NODIRATIME) | (_MS_RELATIME if kept & 4096 else 0)
        _mount(None, target, None, flags)


def _place(root: str, path: str, like: str) -> str:
    """Make the mount point for `like` at `path` inside `root`: a folder, or an empty file."""
    target = root + path
    if os.path.isdir(like):
        os.makedirs(target, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if not os.path.lexists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    return target


def _bind(root: str, source: str, path: str, keep_devices: bool = False) -> None:
    target = _place(root, path, source)
    _mount(source, target, None, MS_BIND | MS_REC)
    _read_only(target, keep_devices)


def _make_dev(root: str, grants: Grants, mounts: Mounts, shm: dict[str, str], as_root: bool) -> None:
    """A /dev of the granted nodes only. Under a root grader a GPU's nodes are made afresh, open to the
    unprivileged worker (MIG's capability nodes are root's alone on the host); otherwise they are bound."""
    dev = root + "/dev"
    os.makedirs(dev, mode=0o755, exist_ok=True)
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k")
    for node in grants.devices:
        info = os.stat(node)
        if as_root and stat.S_ISCHR(info.st_mode) and os.path.basename(node).startswith("nvidia"):
            os.makedirs(os.path.dirname(root + node), mode=0o755, exist_ok=True)
            os.mknod(root + node, stat.S_IFCHR | 0o666, info.st_rdev)
            os.chmod(root + node, 0o666)  # whatever the umask
        else:
            _bind(root, node, node, keep_devices=True)
    os.makedirs(dev + "/shm", mode=0o755, exist_ok=True)
    _attach_tmpfs(mounts.shm, dev + "/shm", shm)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):  # fmt: skip
        os.symlink(target, f"{dev}/{name}")
    _mount(None, dev, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)


def _make_sys(root: str) -> None:
    """/sys read-only (CPU counts, a GPU's PCI details): a fresh sysfs of the worker's network namespace, or where
    the kernel refuses, the host's bound read-only with its cgroup tree covered."""
    target = root + "/sys"
    os.makedirs(target, mode=0o755, exist_ok=True)
    try:
        _mount("sysfs", target, "sysfs", MS_RDONLY | _COVER)
    except OSError:
        _mount("/sys", target, None, MS_BIND | MS_REC)
        _read_only(target)
        if os.path.isdir(target + "/fs/cgroup"):
            _mount("tmpfs", target + "/fs/cgroup", "tmpfs", MS_RDONLY | _COVER, "size=4k")


def _cover(root: str, path: str) -> None:
    target = root + path
    if not os.path.lexists(target):
        return
    if os.path.isdir(target):
        _mount("tmpfs", target, "tmpfs", MS_RDONLY | _COVER, "size=4k")
    else:
        _mount("/dev/null", target, None, MS_BIND)  # reads as empty; what is written there goes nowhere


def build_view(grants: Grants, mounts: Mounts, scratch_owner: tuple[int, int], as_root: bool) -> None:
    """In a mount namespace of its own (the worker's, made here) in which this process may mount, inside its PID
    namespace (for /proc): the new root described in the module docstring, entered with pivot_root. The root is
    a tmpfs mounted on the scratch folder's host path (an empty folder the grader made); the scratch folder is at
    the same path inside it."""
    _unshare(CLONE_NEWNS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    root = grants.scratch
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m,nr_inodes=4096")
    for path, target in grants.links:
        os.symlink(target, root + path)
    for path in grants.read_only:
        _bind(root, path, path)
    for alias, real in grants.aliases:
        if not os.path.lexists(root + alias):  # not already there through a granted folder or a link
            _bind(root, real, alias)
    for path in grants.sealed:
        _cover(root, path)
    uid, gid = scratch_owner
    shm = tmpfs_options(grants.shm_bytes, 1024, uid, gid, "1777")
    _make_dev(root, grants, mounts, shm, as_root)
    os.makedirs(root + "/proc", mode=0o555, exist_ok=True)
    _mount("proc", root + "/proc", "proc", _COVER)
    _make_sys(root)
    os.makedirs(root + grants.scratch, mode=0o755, exist_ok=True)
    scratch = tmpfs_options(grants.scratch_bytes, grants.scratch_files, uid, gid, "700")
    _attach_tmpfs(mounts.scratch, root + grants.scratch, scratch)
    os.makedirs(root + "/.old", mode=0o700)
    os.chdir(root)
    _syscall("pivot_root", b".", b".old")
    os.chdir("/")
    _check(c_library().umount2(b"/.old", MNT_DETACH), "detach the old root")
    os.rmdir("/.old")
    _mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir(grants.scratch)


def view_paths(grants: Grants) -> tuple[str, ...]:
    """Every path the view holds at its top (for the README's table and the tests): what is granted and made."""
    made = ("/dev", "/proc", "/sys", grants.scratch)
    return tuple(sorted({*grants.read_only, *(a for a, _ in grants.aliases), *(p for p, _ in grants.links), *made}))


# -- the worker: dropping what it may not keep ------------------------------------------------------------------
def drop_privileges(become: tuple[int, int] | None) -> None:
    """No capability in any set, no way to gain one (no_new_privs), and, given `become`, that (uid, gid) from now
    on: the mounts can no longer be undone, nor namespaces made."""
    libc = c_library()
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows, or none may be dropped (no CAP_SETPCAP)
    if become is not None:
        uid, gid = become
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)  # clears the permitted and effective sets too

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header = Header(_CAP_VERSION_3, 0)
    data = (Data * 2)()
    _check(libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")


PID_MAX = "/proc/sys/kernel/pid_max"


PER_NAMESPACE_PID_MAX = (6, 14)  # before it, pid_max is the machine's: never written then


def kernel_version(release: str | None = None) -> tuple[int, int]:
    numbers = re.match(r"(\d+)\.(\d+)", release or platform.release())
    return (int(numbers.group(1)), int(numbers.group(2))) if numbers else (0, 0)


def bound_tasks(count: int) -> None:
    """At most `count` processes and threads in this process's PID namespace, where the kernel keeps a pid_max per
    namespace (Linux 6.14+; on an older kernel the same file is the whole machine's, and is left alone). Best
    effort: where refused, the worker's result says its tasks were not bounded."""
    if kernel_version() < PER_NAMESPACE_PID_MAX:
        return
    try:
        with open(PID_MAX, "w", encoding="ascii") as f:
            f.write(str(count + 1))  # pids 1 .. count
    except OSError:
        pass


def tasks_bound() -> int | None:
    """This PID namespace's bound on tasks, if `bound_tasks` set one (None otherwise)."""
    try:
        with open(PID_MAX, encoding="ascii") as f:
            found = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return found - 1 if found <= 100_000 else None


def die_with_parent(signum: int = 9) -> None:
    """`signum` (SIGKILL) when the parent ends (the keeper, or the fork server for the keeper); at once if it
    already has."""
    parent = os.getppid()
    try:
        c_library().prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    except AttributeError:  # not Linux
        return
    if os.getppid() != parent:
        os._exit(1)
