"""The namespace layers of a worker's walls (see sandbox.py for the order they are tried in).

Each layer gives the worker the same view of the files, built once by `_build_view` in a private mount namespace:

- the sealed paths (references, checks, results, other submissions) are covered by empty read-only mounts;
- the real user's home folder and the folder that holds the scratch folders (/tmp) are covered by empty read-only
  folders in which only the installed environment (the Python it runs on, site-packages) and its own scratch
  folder are bound back: the user's other files, the other workers' scratch folders, the grader's temporary files
  are not there;
- every other filesystem is read-only; the scratch folder is the one place it can write;

and the same network namespace with no interfaces. Then the worker runs as an unprivileged id with no capability
left, so nothing of it can be undone:

1. as root (`ROOT`): the namespaces are made directly, then the worker becomes `nobody`;
2. as any other user (`USER`): a new user namespace first, in which the worker keeps its own (unprivileged) id;
3. where user namespaces are refused to plain processes (Ubuntu's AppArmor allows them to bubblewrap only)
   (`BUBBLEWRAP`): `bwrap` builds the same view, and the worker joins its namespaces.

A user namespace must be made by a process with one thread: a worker, freshly forked from the fork server, has
only the thread that forked it, whatever threads torch's import started in the server.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import pwd
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ROOT = "namespaces"
USER = "user-namespaces"
BUBBLEWRAP = "bubblewrap"

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
# Flags a user namespace may not clear on a mount it inherited: a read-only remount must repeat them.
_LOCKED_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
_CAP_VERSION_3 = 0x20080522
_KEEP_WRITABLE_FS = ("proc", "sysfs", "devtmpfs", "devpts", "mqueue", "cgroup", "cgroup2")
_COVER = MS_NOSUID | MS_NODEV | MS_NOEXEC
UNPRIVILEGED_USER = "nobody"


@dataclass(frozen=True)
class View:
    """What a worker sees: `sealed` covered, `hidden` folders emptied but for the `kept` paths inside them, and
    `scratch` the only writable folder. Real paths throughout."""

    sealed: tuple[str, ...]
    scratch: str
    kept: tuple[str, ...]
    hidden: tuple[str, ...]


def home_folders() -> tuple[str, ...]:
    """The real user's home folder, from the password database and $HOME (as the grader was started)."""
    found = [os.environ.get("HOME", "")]
    try:
        found.append(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        pass
    return tuple(dict.fromkeys(os.path.realpath(p) for p in found if p and os.path.isdir(p)))


def make_view(sealed: Sequence[str], scratch: str, kept: Sequence[str], homes: Sequence[str]) -> View:
    """The view for a worker. A folder that is, or lies inside, a kept path (a home folder that is itself the
    environment's prefix, say) is not hidden."""
    scratch = os.path.realpath(scratch)
    kept_paths = tuple(dict.fromkeys(os.path.realpath(p) for p in (*kept, scratch)))
    candidates = [*homes, os.path.dirname(scratch)]
    hidden = tuple(
        dict.fromkeys(
            path
            for path in (os.path.realpath(p) for p in candidates)
            if path != "/" and not any(_within(path, k) for k in kept_paths)
        )
    )
    return View(tuple(os.path.realpath(p) for p in sealed), scratch, kept_paths, hidden)


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _holes(view: View, folder: str) -> list[str]:
    """The kept paths to bind back into a hidden folder: the outermost of those inside it."""
    inside = sorted(k for k in view.kept if _within(k, folder) and k != folder and os.path.exists(k))
    return [k for k in inside if not any(_within(k, other) and k != other for other in inside)]


def _shown(view: View, path: str) -> bool:
    """Whether `path` is still there once the hidden folders are covered (sealed paths that are not need no cover)."""
    return os.path.exists(path) and all(
        not _within(path, folder) or any(_within(path, hole) for hole in _holes(view, folder)) for folder in view.hidden
    )


@functools.cache
def c_library() -> Any:
    """The C library, found once per process tree: `find_library` runs `ldconfig -p` in a subprocess, which every
    worker paid twice as it isolated itself (the fork server finds it first, and its forks inherit it)."""
    found = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    found.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    return found


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


# -- the view --------------------------------------------------------------------------------------------------
def _mounts() -> list[tuple[str, str, int]]:
    """(mount point, filesystem type, locked flags) of every mount in this namespace, from /proc/self/mountinfo."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            separator = fields.index("-")
            mountpoint = fields[4].encode().decode("unicode_escape")
            flags = sum(_LOCKED_FLAGS.get(option, 0) for option in fields[5].split(","))
            found.append((mountpoint, fields[separator + 1], flags))
    return found


def _read_only_everywhere(libc: Any, scratch: str) -> None:
    for mountpoint, fstype, flags in _mounts():
        if mountpoint == scratch or fstype in _KEEP_WRITABLE_FS or mountpoint.startswith(("/proc/", "/sys/")):
            continue
        flags |= MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID
        libc.mount(None, mountpoint.encode(), None, flags, None)  # best effort: some mounts refuse, e.g. nsfs


def _hide(libc: Any, folder: str, holes: Sequence[str]) -> None:
    """Cover `folder` with an empty read-only tmpfs, and bind the holes back into it."""
    handles = {hole: os.open(hole, os.O_PATH | os.O_CLOEXEC) for hole in holes}  # reachable once covered
    # The folders leading to a hole must be traversable by the worker's unprivileged id whatever the grader's
    # umask (under 027 they were not, and no worker could import anything from the environment).
    umask = os.umask(0o022)
    try:
        _check(libc.mount(b"tmpfs", folder.encode(), b"tmpfs", _COVER, b"mode=755,size=64k"), f"cover {folder}")
        for hole, fd in handles.items():
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(hole, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(hole), exist_ok=True)
                open(hole, "a").close()  # noqa: SIM115 - a mount point, empty
            _check(libc.mount(f"/proc/self/fd/{fd}".encode(), hole.encode(), None, MS_BIND | MS_REC, None), hole)
        _check(libc.mount(None, folder.encode(), None, MS_REMOUNT | MS_RDONLY | _COVER, None), f"seal {folder}")
    finally:
        os.umask(umask)
        for fd in handles.values():
            os.close(fd)


def _seal(libc: Any, view: View) -> None:
    for path in view.sealed:
        if not _shown(view, path):
            continue
        target = path.encode()
        if os.path.isdir(path):
            _check(libc.mount(b"tmpfs", target, b"tmpfs", MS_RDONLY | _COVER, b"size=4k"), path)
        elif os.path.exists(path):
            _check(libc.mount(b"/dev/null", target, None, MS_BIND, None), path)


def _build_view(libc: Any, view: View) -> None:
    """In a fresh mount namespace in which this process may mount: the walls described in the module docstring."""
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
    # The scratch folder becomes its own (writable) mount before everything else turns read-only.
    _check(libc.mount(view.scratch.encode(), view.scratch.encode(), None, MS_BIND, None), f"bind {view.scratch}")
    _read_only_everywhere(libc, view.scratch)
    for folder in view.hidden:
        _hide(libc, folder, _holes(view, folder))
    _seal(libc, view)  # after the hiding: a sealed path inside a kept one is covered on the new mount


def _drop_capabilities(libc: Any, uid: int | None = None, gid: int | None = None) -> None:
    """No capability in any set (and, given `uid`, that id from now on): the mounts can no longer be undone, nor
    new namespaces made."""
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    if uid is not None and gid is not None:
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


# -- the three ways in -----------------------------------------------------------------------------------------
def unprivileged_ids() -> tuple[int, int]:
    """(uid, gid) a root grader's workers run as: nobody's."""
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


class Refused(OSError):
    """This layer cannot be made here (e.g. user namespaces refused) and nothing was changed: try the next one.
    Any other OSError from an `enter_` function leaves the worker half confined: it must not run student code."""


def _unshare(libc: Any, flags: int) -> None:
    if libc.unshare(flags) != 0:
        errno = ctypes.get_errno()
        raise Refused(errno, f"unshare: {os.strerror(errno)}")


def enter_as_root(view: View) -> None:
    libc = c_library()
    _unshare(libc, CLONE_NEWNS | CLONE_NEWNET)
    _build_view(libc, view)
    uid, gid = unprivileged_ids()
    os.chown(view.scratch, uid, gid)  # its own folder, the one it writes in
    _drop_capabilities(libc, uid, gid)
    os.chdir(view.scratch)  # the bind mount, not the read-only folder underneath it


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write(text)


def enter_user_namespace(view: View) -> None:
    """The user namespace maps the worker's own id to itself (the one id an unprivileged process may map): inside,
    it is the same unprivileged user, with capabilities only over the namespaces it has just made."""
    libc = c_library()
    uid, gid = os.getuid(), os.getgid()
    _unshare(libc, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET)
    # A non-dumpable process's /proc/self files belong to root: the worker (a fork of the non-dumpable fork server)
    # could not write its own maps. Dumpable only for these three writes, before any student code exists.
    libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    try:
        _write("/proc/self/setgroups", "deny")  # the kernel requires it before an unprivileged gid_map
        _write("/proc/self/uid_map", f"{uid} {uid} 1\n")
        _write("/proc/self/gid_map", f"{gid} {gid} 1\n")
    finally:
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    _build_view(libc, view)
    _drop_capabilities(libc)
    os.chdir(view.scratch)


def bubblewrap() -> str | None:
    return shutil.which("bwrap")


def _bwrap_arguments(view: View) -> list[str]:
    """bwrap's options for the view `_build_view` makes (bwrap applies them in order)."""
    arguments = [
        "--unshare-user",
        "--unshare-net",
        "--die-with-parent",
        "--ro-bind",
        "/",
        "/",
        "--dev-bind",
        "/dev",
        "/dev",
    ]
    for folder in view.hidden:
        arguments += ["--tmpfs", folder]
        for hole in _holes(view, folder):
            arguments += ["--bind" if hole == view.scratch else "--ro-bind", hole, hole]
        arguments += ["--remount-ro", folder]
    for path in view.sealed:
        if not _shown(view, path):
            continue
        if os.path.isdir(path):
            arguments += ["--tmpfs", path, "--remount-ro", path]
        elif os.path.exists(path):
            arguments += ["--ro-bind", "/dev/null", path]
    if not any(_within(view.scratch, folder) for folder in view.hidden):
        arguments += ["--bind", view.scratch, view.scratch]
    return arguments


def enter_bubblewrap(view: View, bwrap: str) -> None:
    """bwrap builds the view in namespaces of its own around a shell that says its pid once the view is ready and
    then waits on a pipe; the worker joins those namespaces (as the owner of bwrap's user namespaces it may), then
    closes the pipe (the shell ends; the namespaces live on with the worker in them) and drops every capability."""
    script = "echo $$; read _"  # bwrap runs it only once every mount is made
    command = [bwrap, *_bwrap_arguments(view), "--", "/bin/sh", "-c", script]
    holder = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert holder.stdin is not None and holder.stdout is not None and holder.stderr is not None
    try:
        line = holder.stdout.readline().strip()
        if not line.isdigit():
            problem = holder.stderr.read().decode(errors="replace").strip() or f"exit status {holder.wait()}"
            raise Refused(0, f"bubblewrap: {problem}")
        fds = [os.open(f"/proc/{int(line)}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC) for ns in ("user", "mnt", "net")]
        libc = c_library()
        if libc.setns(fds[0], 0) != 0:
            errno = ctypes.get_errno()
            raise Refused(errno, f"join bubblewrap's user namespace: {os.strerror(errno)}")
        _check(libc.setns(fds[1], 0), "join bubblewrap's mount namespace")
        _check(libc.setns(fds[2], 0), "join bubblewrap's network namespace")
        for fd in fds:
            os.close(fd)
        _drop_capabilities(libc)
        os.chdir(view.scratch)
    finally:
        holder.stdin.close()
        holder.wait()
        holder.stdout.close()
        holder.stderr.close()
