"""Walls around a worker: what student code may see, write, reach and start.

Two layers, both entered by the worker itself before it runs any student code:

1. **Namespaces** (namespaces.py): a private mount namespace in which the sealed paths (references, checks,
   results, other submissions) are covered, the user's home folder and /tmp are emptied but for the installed
   environment and the worker's scratch folder, and every other filesystem is read-only except that scratch
   folder; a network namespace with no interfaces; then an unprivileged id without capabilities, so none of it
   can be undone. As root the namespaces are made directly (`namespaces`, the worker then runs as nobody); as any
   other user in a new user namespace (`user-namespaces`), or, where those are refused, bubblewrap's
   (`bubblewrap`).
2. **An audit hook** (always): refuses, at the Python level, opening or listing sealed paths, writing outside the
   scratch folder, sockets, starting or signalling processes, and loading native code that is not part of the
   installed environment (a library or extension module of the student's own), or reaching into any native
   library's functions or memory through ctypes. Audit hooks cannot be removed from Python; where no namespace
   can be made this is the only wall (documented in the README).

The fork server (as it imports runner/preload.py) and every scoring process (as it starts its first worker) make
themselves non-dumpable, so a worker cannot read their memory or their view of the filesystem through /proc.
"""

from __future__ import annotations

import ctypes
import os
import site
import sys
import sysconfig
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from autograder.runner import namespaces

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

DENIED = "the grader's sandbox does not allow {what}"

_PROCESS_EVENTS = {
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
    "ctypes.cdata": "reading raw memory",
    "sys.remote_exec": "attaching to processes",
}
_LISTING_EVENTS = ("os.listdir", "os.scandir", "glob.glob", "os.chdir", "shutil.copytree")
_MUTATING_EVENTS = (
    "os.remove",
    "os.rmdir",
    "os.rename",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.link",
    "os.symlink",
    "os.truncate",
    "os.utime",
    "shutil.rmtree",
    "shutil.move",
)


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


# -- namespaces -------------------------------------------------------------------------------------------------
def kept_paths() -> tuple[str, ...]:
    """What a worker must still see inside a hidden folder (a home folder, /tmp): the installed environment, the
    interpreter's own installation, and the grader's package (the worker's code)."""
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    return (*environment_roots(), sys.base_prefix, sys.base_exec_prefix, package, *import_roots())


def import_roots() -> tuple[str, ...]:
    """The other folders this Python imports from (a `pip install --target` folder, a PYTHONPATH entry): a module
    that a worker imports lazily from them must still be there. Never the working folder (dropped from a worker's
    sys.path), nor a folder that holds a home or the temporary folder (keeping it would hide nothing)."""
    cwd = os.path.realpath(os.getcwd())
    folders = (*namespaces.home_folders(), tempfile.gettempdir(), "/tmp", "/var/tmp")
    covered = [os.path.realpath(p) for p in folders]
    roots = []
    for entry in sys.path:
        path = os.path.realpath(entry) if entry and os.path.isdir(entry) else ""
        if path and path != cwd and not any(c == path or c.startswith(path.rstrip("/") + "/") for c in covered):
            roots.append(path)
            roots += _link_targets(entry)
    return tuple(dict.fromkeys(roots))


def _link_targets(folder: str) -> list[str]:
    """The folders that the links in an import folder lead into (a folder of links into a virtual environment)."""
    try:
        links = [e.path for e in os.scandir(folder) if e.is_symlink()]
    except OSError:
        return []
    return list(dict.fromkeys(os.path.dirname(os.path.realpath(link)) for link in links))


def _layers_to_try() -> tuple[str, ...]:
    """Root makes namespaces directly; any other user through a user namespace, or else bubblewrap's."""
    if os.environ.get(NO_NAMESPACES_ENV) == "1" or not sys.platform.startswith("linux"):
        return ()
    wanted = os.environ.get(LAYER_ENV, "")
    allowed = LAYERS[LAYERS.index(wanted) :] if wanted in LAYERS else LAYERS
    possible = (NAMESPACES,) if os.geteuid() == 0 else (USER_NAMESPACES, BUBBLEWRAP)
    return tuple(layer for layer in possible if layer in allowed)


def confine(sealed: Sequence[str], scratch: str) -> str:
    """The first layer, before the worker opens its own files: the strongest namespaces this process may make.
    Returns the layer reached; `install_audit_hook` must follow once the worker is set up. Raises OSError where a
    layer failed half way (the worker must then stop: its walls are not what the result would say)."""
    layers = _layers_to_try()
    if not layers:
        return AUDIT_ONLY
    view = namespaces.make_view(sealed, scratch, kept_paths(), namespaces.home_folders())
    for layer in layers:
        try:
            if layer == NAMESPACES:
                namespaces.enter_as_root(view)
            elif layer == USER_NAMESPACES:
                namespaces.enter_user_namespace(view)
            else:
                bwrap = namespaces.bubblewrap()
                if bwrap is None:
                    continue
                namespaces.enter_bubblewrap(view, bwrap)
            return layer
        except namespaces.Refused:
            continue  # e.g. user namespaces refused (EPERM, ENOSPC), nothing changed: the next layer
    return AUDIT_ONLY


# -- audit hook ------------------------------------------------------------------------------------------------
def environment_roots() -> tuple[str, ...]:
    """Folders of the installed environment (real paths): the interpreter's standard library and lib-dynload,
    site-packages, the (virtual) environment's prefix. Native code in them came with the installation."""
    paths = sysconfig.get_paths()
    found = [paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths]
    found += [sys.prefix, sys.exec_prefix, *site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        found.append(site.getusersitepackages())
    return tuple(dict.fromkeys(os.path.realpath(p) for p in found))


def install_audit_hook(sealed: Sequence[str], scratch: str) -> None:
    sealed_roots = tuple(os.path.realpath(p) for p in sealed)
    writable = (os.path.realpath(scratch), "/dev/null")
    installed = (*environment_roots(), *import_roots())

    def inside(path: str, roots: tuple[str, ...]) -> bool:
        return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)

    def resolve(raw: Any) -> str | None:
        if isinstance(raw, int) or raw is None:
            return None
        try:
            return os.path.realpath(os.fsdecode(raw))
        except (TypeError, ValueError):
            return None

    def native_code_allowed(raw: Any) -> bool:
        """Whether a native library (ctypes, torch.ops.load_library) or extension module may be loaded: only one
        the environment installed, e.g. torchvision's compiled operators or Pillow's decoders.

        Refused: a file in the scratch folder (written by the student) or anywhere outside the environment,
        a bare name (`CDLL("libc.so.6")`, searched by the dynamic loader, so its file is unknown here) and
        `CDLL(None)` (the program itself). With namespaces the environment is read-only, so nothing the
        student wrote can sit inside it. Where the environment is a system prefix (/usr), a system library
        such as libc loads by absolute path; that gives the student nothing: dlopen of a library the process
        already maps runs no new code, and every way from a ctypes handle to a callable or to raw memory
        (`lib.func`, `lib["func"]`, `from_address`) raises ctypes.dlsym or ctypes.cdata, which stay refused."""
        if raw is None or (isinstance(raw, (str, bytes)) and os.sep not in os.fsdecode(raw)):
            return False
        path = resolve(raw)
        # Inside the environment by its real path, or by the path it was found on: a folder of links into an
        # environment on the import path (its real path is then checked against the scratch and the sealed paths).
        found = os.path.abspath(os.fsdecode(raw)) if isinstance(raw, (str, bytes)) else None
        return (
            path is not None
            and (inside(path, installed) or (found is not None and inside(found, installed)))
            and not inside(path, writable)
            and not inside(path, sealed_roots)
        )

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path = resolve(args[0])
            if path is None:
                return
            if inside(path, sealed_roots):
                raise PermissionError(DENIED.format(what=f"reading {args[0]}"))
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
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
        elif event in _PROCESS_EVENTS:
            raise PermissionError(DENIED.format(what=_PROCESS_EVENTS[event]))
        elif event in _LISTING_EVENTS and args:
            path = resolve(args[0])
            if path is not None and inside(path, sealed_roots):
                raise PermissionError(DENIED.format(what=f"looking into {args[0]}"))
        elif event in _MUTATING_EVENTS:
            for raw in args[:2]:
                path = resolve(raw) if isinstance(raw, (str, bytes, os.PathLike)) else None
                if path is not None and not inside(path, writable):
                    raise PermissionError(DENIED.format(what=f"changing {raw} (only the working folder is yours)"))

    sys.addaudithook(hook)
