"""Walls around a worker: which ones this machine allows, entering them, and the audit hook.

The walls, each independent of the others, and the result's `walls` field names those a worker got:

1. **namespaces** (namespaces.py): a process tree of its own (PID namespace), a view of the files that holds only
   what policy.py grants, no network interfaces, no IPC of anyone else. As root they are made directly
   (`namespaces`), as any other user in a user namespace (`user-namespaces`), or where those are refused, bwrap
   makes them (`bubblewrap`); `isolation` names the layer, and `audit-hook` where none could be made.
2. **quota**: the scratch folder is a tmpfs bounded in bytes and files (with the namespaces).
3. **seccomp** (seccomp.py): an allow-list of system calls; no programs, no processes, no new namespaces.
4. **unprivileged**: the worker runs as nobody under a root grader (as the grader's own user otherwise), with no
   capability and no way to gain one.
5. **memory**: what the worker holds is counted whole, its private files in memory included (keeper.py).
6. **audit hook** (always): Python refuses, inside the worker, opening or listing sealed paths, writing outside
   the scratch folder, sockets, starting or signalling processes, native code the environment did not bring, and
   ctypes' and gc's ways to raw memory and to the grader's objects. Audit hooks cannot be removed from Python
   code, but native code gets past them: it is a second line, and where it is the only one, every summary says so.

The fork server (as it imports runner/preload.py) and every scoring process (as it starts its first worker) make
themselves non-dumpable, so a worker cannot read their memory or their view of the filesystem through /proc.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.runner import namespaces
from autograder.runner.policy import environment_roots

PR_SET_NAME = 15
PR_SET_DUMPABLE = 4

NO_NAMESPACES_ENV = "AUTOGRADER_NO_NAMESPACES"  # "1": the audit hook alone, as where no namespace can be made
# The strongest layer to try, e.g. "bubblewrap" to behave as where user namespaces are refused (for tests).
LAYER_ENV = "AUTOGRADER_SANDBOX"
NAMESPACES = namespaces.ROOT
USER_NAMESPACES = namespaces.USER
BUBBLEWRAP = namespaces.BUBBLEWRAP
AUDIT_ONLY = "audit-hook"
LAYERS = (NAMESPACES, USER_NAMESPACES, BUBBLEWRAP, AUDIT_ONLY)  # strongest first
WALLS = ("namespaces", "quota", "seccomp", "unprivileged", "memory", "audit-hook")

DENIED = "the grader's sandbox does not allow {what}"

_REFUSED_EVENTS = {
    "os.system": "starting programs",
    "subprocess.Popen": "starting programs",
    "os.exec": "starting programs",
    "os.posix_spawn": "starting programs",
    "os.spawn": "starting programs",
    "os.fork": "starting processes",
    "os.forkpty": "starting processes",
    "pty.spawn": "starting programs",
    "os.kill": "signalling other processes",
    "os.killpg": "signalling other processes",
    "signal.pthread_kill": "signalling other processes",
    "socket.__new__": "network access",
    "socket.connect": "network access",
    "socket.bind": "network access",
    "socket.getaddrinfo": "network access",
    "socket.gethostbyname": "network access",
    "socket.sendto": "network access",
    "ctypes.dlsym": "loading native functions",
    "ctypes.dlsym/handle": "loading native functions",
    "ctypes.call_function": "calling native functions",
    "ctypes.cdata": "reading raw memory",
    "ctypes.cdata/buffer": "reading raw memory",
    "ctypes.string_at": "reading raw memory",
    "ctypes.wstring_at": "reading raw memory",
    "sys.remote_exec": "attaching to processes",
    # The garbage collector's lists reach every object of the worker, the grader's set-up included.
    "gc.get_objects": "looking through the grader's objects",
    "gc.get_referrers": "looking through the grader's objects",
    "gc.get_referents": "looking through the grader's objects",
}
_LISTING_EVENTS = frozenset(("os.listdir", "os.scandir", "glob.glob", "os.chdir", "shutil.copytree"))
_MUTATING_EVENTS = frozenset(
    (
        "os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.chmod", "os.chown", "os.link", "os.symlink",
        "os.truncate", "os.utime", "shutil.rmtree", "shutil.move",
    )
)  # fmt: skip


@dataclass(frozen=True)
class Walls:
    """Which walls a worker got (see the module docstring); `missing` names the others, for every summary."""

    layer: str = AUDIT_ONLY
    quota: bool = False
    seccomp: bool = False
    unprivileged: bool = False
    memory: str = ""  # "watchdog" (the keeper counts it whole), "" (no limit asked for)
    audit_hook: bool = True
    tasks: int = 0  # the bound on its processes and threads (0: none)

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "quota": self.quota, "seccomp": self.seccomp, "unprivileged": self.unprivileged,
                "memory": self.memory, "audit_hook": self.audit_hook, "tasks": self.tasks}  # fmt: skip

    def missing(self) -> tuple[str, ...]:
        absent = [
            ("namespaces", self.layer == AUDIT_ONLY),
            ("quota", not self.quota),
            ("seccomp", not self.seccomp),
            ("unprivileged", not self.unprivileged),
            ("audit-hook", not self.audit_hook),
            ("tasks", not self.tasks),
        ]
        return tuple(name for name, gone in absent if gone)


def missing_walls(walls: dict[str, Any] | None) -> tuple[str, ...]:
    """The walls a result's `walls` field says were missing (none known for an empty or old result)."""
    if not walls:
        return ()
    names = ("layer", "quota", "seccomp", "unprivileged", "memory", "audit_hook", "tasks")
    known = {k: walls[k] for k in names if k in walls}
    return Walls(**known).missing()


def protect_this_process() -> None:
    """Make this process non-dumpable: same-user processes then cannot read its memory or /proc/<pid>/root."""
    try:
        namespaces.c_library().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def name_this_process(name: str) -> None:
    """The name `ps`, `top` and /proc/<pid>/comm show (15 bytes at most): "ag-scoring", "ag-worker"."""
    try:
        namespaces.c_library().prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def sealable(paths: Iterable[str | Path]) -> tuple[str, ...]:
    """The paths a worker must not see, less any that would seal off the Python it runs on."""
    needed = [Path(p).resolve() for p in (sys.prefix, sys.base_prefix, os.path.dirname(os.__file__), __file__)]
    kept = []
    for raw in paths:
        path = Path(raw).resolve()
        if any(n == path or path in n.parents for n in needed):
            continue
        kept.append(str(path))
    return tuple(dict.fromkeys(kept))


# -- entering the namespaces (in the keeper) -------------------------------------------------------------------
@dataclass
class Entered:
    """What the keeper made: the layer, the tmpfs it can measure, bwrap's holder (kept alive while the worker
    lives), and whom the worker becomes."""

    layer: str = AUDIT_ONLY
    mounts: namespaces.Mounts = field(default_factory=lambda: namespaces.Mounts(None, None))
    holder: subprocess.Popen | None = None
    owner: tuple[int, int] = (0, 0)  # who owns the scratch folder and /dev/shm
    become: tuple[int, int] | None = None  # the unprivileged ids a root grader's worker takes

    @property
    def pid_namespace(self) -> bool:
        return self.layer != AUDIT_ONLY


def layers_to_try() -> tuple[str, ...]:
    """Root makes namespaces directly; any other user through a user namespace, or else bubblewrap's."""
    if os.environ.get(NO_NAMESPACES_ENV) == "1" or not sys.platform.startswith("linux"):
        return ()
    wanted = os.environ.get(LAYER_ENV, "")
    allowed = LAYERS[LAYERS.index(wanted) :] if wanted in LAYERS else LAYERS
    possible = (NAMESPACES,) if os.geteuid() == 0 else (USER_NAMESPACES, BUBBLEWRAP)
    return tuple(layer for layer in possible if layer in allowed)


def enter(scratch_bytes: int, scratch_files: int, shm_bytes: int) -> Entered:
    """The strongest namespaces this process may make, and the tmpfs mounts for the worker. Raises OSError where a
    layer failed half way (the worker must then not start: its walls are not what the result would say)."""
    root = os.geteuid() == 0
    become = namespaces.unprivileged_ids() if root else None
    entered = Entered(owner=become or (os.getuid(), os.getgid()), become=become)
    for layer in layers_to_try():
        try:
            if layer == NAMESPACES:
                namespaces.enter_as_root()
            elif layer == USER_NAMESPACES:
                namespaces.enter_user_namespace()
            else:
                bwrap = namespaces.bubblewrap()
                if bwrap is None:
                    continue
                entered.holder = namespaces.enter_bubblewrap(bwrap)
            entered.layer = layer
            break
        except namespaces.Refused:
            continue  # e.g. user namespaces refused (EPERM, ENOSPC), nothing changed: the next layer
    if entered.layer != AUDIT_ONLY:
        uid, gid = entered.owner
        entered.mounts = namespaces.Mounts(
            namespaces.detached_tmpfs(namespaces.tmpfs_options(scratch_bytes, scratch_files, uid, gid, "700")),
            namespaces.detached_tmpfs(namespaces.tmpfs_options(shm_bytes, 1024, uid, gid, "1777")),
        )
    return entered


# -- audit hook ------------------------------------------------------------------------------------------------
def install_audit_hook(sealed: Sequence[str], scratch: str, installed: Sequence[str], private_shm: bool) -> None:
    """The second line (see the module docstring). Everything the hook consults is an immutable copy made here,
    out of the student's reach: tuples of paths and events, frozen sets. `private_shm`: /dev/shm is the worker's
    own (with namespaces), and may be written too."""
    sealed_roots = tuple(os.path.realpath(p) for p in sealed)
    writable = (os.path.realpath(scratch), "/dev/null", *(("/dev/shm",) if private_shm else ()))
    trusted = tuple(dict.fromkeys((*environment_roots(), *(os.path.realpath(p) for p in installed))))
    refused = tuple(sorted(_REFUSED_EVENTS.items()))
    refused_names = frozenset(name for name, _ in refused)
    listing, mutating = _LISTING_EVENTS, _MUTATING_EVENTS
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    realpath, fsdecode, sep = os.path.realpath, os.fsdecode, os.sep

    def inside(path: str, roots: tuple[str, ...]) -> bool:
        return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)

    def resolve(raw: Any) -> str | None:
        if isinstance(raw, int) or raw is None:
            return None
        try:
            return realpath(fsdecode(raw))
        except (TypeError, ValueError):
            return None

    def native_code_allowed(raw: Any) -> bool:
        """Whether a native library (ctypes, torch.ops.load_library) or extension module may be loaded: only one
        the environment installed, e.g. torchvision's compiled operators or Pillow's decoders.

        Refused: a file in the scratch folder (written by the student) or anywhere outside the environment,
        a bare name (`CDLL("libc.so.6")`, searched by the dynamic loader, so its file is unknown here) and
        `CDLL(None)` (the program itself). With namespaces the environment is read-only, so nothing the
        student wrote can sit inside it; every way from a ctypes handle to a callable or to raw memory
        stays refused."""
        if raw is None or (isinstance(raw, (str, bytes)) and sep not in fsdecode(raw)):
            return False
        path = resolve(raw)
        # Inside the environment by its real path, or by the path it was found on: a folder of links into an
        # environment on the import path (its real path is then checked against the scratch and the sealed paths).
        found = os.path.abspath(fsdecode(raw)) if isinstance(raw, (str, bytes)) else None
        return (
            path is not None
            and (inside(path, trusted) or (found is not None and inside(found, trusted)))
            and not inside(path, writable)
            and not inside(path, sealed_roots)
        )

    def what_is_refused(event: str) -> str:
        for name, what in refused:
            if name == event:
                return what
        return event

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path = resolve(args[0])
            if path is None:
                return
            if inside(path, sealed_roots):
                raise PermissionError(DENIED.format(what=f"reading {args[0]}"))
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & write_flags
            )
            if writing and not inside(path, writable):
                raise PermissionError(DENIED.format(what=f"writing {args[0]} (write in the working folder)"))
        elif event == "ctypes.dlopen":
            if not native_code_allowed(args[0]):
                raise PermissionError(DENIED.format(what=f"loading native libraries ({args[0]})"))
        elif event == "import" and len(args) > 1 and args[1] is not None and args[2] is None:
            # An extension module being loaded from its file (CPython's _imp.create_dynamic): native code too.
            if not native_code_allowed(args[1]):
                raise PermissionError(DENIED.format(what=f"loading native libraries ({args[1]})"))
        elif event in refused_names:
            raise PermissionError(DENIED.format(what=what_is_refused(event)))
        elif event in listing and args:
            path = resolve(args[0])
            if path is not None and inside(path, sealed_roots):
                raise PermissionError(DENIED.format(what=f"looking into {args[0]}"))
        elif event in mutating:
            for raw in args[:2]:
                path = resolve(raw) if isinstance(raw, (str, bytes, os.PathLike)) else None
                if path is not None and not inside(path, writable):
                    raise PermissionError(DENIED.format(what=f"changing {raw} (only the working folder is yours)"))

    sys.addaudithook(hook)
