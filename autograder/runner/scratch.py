"""Removing a worker's scratch folder: files a student's code left, read as hostile."""

from __future__ import annotations

import os
import re
import tempfile


def remove_tree(path: str, dir_fd: int | None = None) -> None:
    """Remove a worker's scratch folder whatever it left there (links, FIFOs, folders nested thousands deep)
    without following a link, without recursion, with two descriptors open at most, and without ever raising:
    each folder's subfolders are first moved up to the top, then it is emptied and removed. Where the worker had
    namespaces, the folder is only the empty mount point of its view. `dir_fd`: `path` is relative to it."""
    try:
        os.rmdir(path, dir_fd=dir_fd)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        top = os.open(path, flags, dir_fd=dir_fd)
    except OSError:
        return
    moved = 0
    kept: set[str] = set()  # folders that could not be removed (not ours): never looked at again
    try:
        while True:
            folders = [name for name in _emptied(top) if name not in kept]
            if not folders:
                break
            for name in folders:
                try:
                    inner = os.open(name, flags, dir_fd=top)
                except OSError:
                    kept.add(name)
                    continue
                try:
                    for sub in _emptied(inner):
                        moved += 1
                        os.rename(sub, f".ag-{moved}", src_dir_fd=inner, dst_dir_fd=top)
                except OSError:
                    pass
                finally:
                    os.close(inner)
                try:
                    os.rmdir(name, dir_fd=top)
                except OSError:
                    kept.add(name)
    finally:
        os.close(top)
    try:
        os.rmdir(path, dir_fd=dir_fd)
    except OSError:
        pass


def _emptied(folder: int) -> list[str]:
    """Unlink everything but folders in the open folder `folder`; return the names of its folders."""
    folders = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
                    continue
                try:
                    os.unlink(entry.name, dir_fd=folder)
                except OSError:
                    pass
    except OSError:
        pass
    return folders


# Every process that starts workers keeps their scratch folders in one folder of its own, named after the
# process (its PID namespace, pid and start time, so that a reused pid is not taken for it, nor a process of
# another container sharing this folder): whatever way that process ends, the next grader to start on this
# machine can tell its folder is stale and remove it.
_PARENT = re.compile(r"^autograder-(\d+)-(\d+)-(\d+)-[A-Za-z0-9_]+$")
_parent: tuple[int, str] | None = None


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat, field 22); None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat.rsplit(b")", 1)[1].split()[19])  # after the command name, which may hold spaces and ")"


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _prefix() -> str:
    pid = os.getpid()
    return f"autograder-{_pid_namespace()}-{pid}-{start_time(pid) or 0}-"


def scratch_parent() -> str:
    """This process's folder for its workers' scratch folders (made on first use). Others may pass through it to
    a scratch folder they own (a root grader's workers run as nobody) but not list it."""
    global _parent
    pid = os.getpid()
    if _parent is None or _parent[0] != pid:
        path = os.path.realpath(tempfile.mkdtemp(prefix=_prefix()))
        os.chmod(path, 0o711)
        _parent = (pid, path)
    return _parent[1]


def remove_scratch_parent() -> None:
    """At this process's end (any way it ends that runs code): its scratch folders' folder and what is left in it."""
    global _parent
    if _parent is not None and _parent[0] == os.getpid():
        remove_tree(_parent[1])
        _parent = None


SOCKET_PATH_MAX = 107  # bytes of an AF_UNIX socket's path on Linux (sun_path less its terminating NUL)
SHORT_BASES = ("/tmp", "/var/tmp", "/dev/shm")
_LISTENER = len("/abcdefgh/listener-abcdefgh")  # the folder's random suffix and the socket multiprocessing names


def socket_folder() -> str | None:
    """A new folder for the sockets of this process (multiprocessing's fork server listens on one), named as the
    scratch folders' folders are, so that a later grader's sweep removes it should this process be killed. Under
    TMPDIR where a socket's path fits (at most 107 bytes), else under the first of SHORT_BASES where it does: a
    long TMPDIR (a cluster job's, a CI runner's, pytest's) would otherwise keep every worker from starting. None
    where no such folder can be made."""
    prefix = _prefix()
    for base in dict.fromkeys((tempfile.gettempdir(), *SHORT_BASES)):
        if len(os.fsencode(os.path.join(base, prefix))) + _LISTENER > SOCKET_PATH_MAX:
            continue
        try:
            return tempfile.mkdtemp(prefix=prefix, dir=base)
        except OSError:
            continue
    return None


def sweep_stale(folder: str | None = None) -> list[str]:
    """Remove the scratch folders' folders (and socket folders) of grader processes that no longer exist (killed,
    or on a machine that lost power), if this user owns them; returns their paths. Folders of running graders
    are left alone. `folder`: where to look; by default TMPDIR and SHORT_BASES."""
    removed: list[str] = []
    for where in (folder,) if folder else dict.fromkeys((tempfile.gettempdir(), *SHORT_BASES)):
        removed += _sweep(where)
    return removed


def _sweep(folder: str) -> list[str]:
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _PARENT.match(name)
        if not match:
            continue
        path = os.path.join(folder, name)
        try:
            if os.lstat(path).st_uid != os.geteuid():
                continue
        except OSError:
            continue
        namespace, pid, started = (int(group) for group in match.groups())
        if namespace != _pid_namespace() or start_time(pid) == started:
            continue  # another PID namespace's (it cannot be told from here), or its process still runs
        remove_tree(path)
        removed.append(path)
    return removed
