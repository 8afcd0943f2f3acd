"""What a worker is granted: the one list of paths, devices, variables and limits its walls are built from.

Everything here is decided in the grader's own process, from the worker's configuration, and handed to the worker
as frozen data; nothing that is not granted exists in the worker's view of the files. The grant:

- the Python environment it runs on (the interpreter's installation, the virtual environment, site-packages,
  the folders on its import path, the grader's own package) and the system's libraries and programs (/usr and the
  folders the dynamic loader searches), read-only;
- a few files of /etc that libraries read (the loader's cache, time zone, user names, fonts);
- /dev/null, zero, full, random and urandom, and, for a worker on a GPU, the NVIDIA device nodes;
- a fresh /proc of its own process tree, /sys read-only, a private /dev/shm;
- its own scratch folder, the one place it can write, bounded in bytes and in files;
- an environment built from `ENVIRONMENT_PASSED` and the worker's own settings, never the grader's variables
  (an LMS token set for an export stays in the grader).

Sealed paths (the assignment's checks and references, results, other submissions) that lie inside something
granted (an installed grader keeps its built-in assignments in site-packages) are covered in the view.
"""

from __future__ import annotations

import functools
import glob
import os
import site
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# The system's libraries and programs; merged-/usr systems make the top-level ones links into /usr.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
LOADER_CONFIG = "/etc/ld.so.conf.d"  # more library folders (e.g. CUDA's), listed one a line in *.conf files
ETC_PATHS = tuple(
    "/etc/" + name
    for name in (
        "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "passwd", "group", "nsswitch.conf",
        "alternatives", "fonts", "mime.types", "matplotlibrc", "os-release",
    )
)  # fmt: skip
STANDARD_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
# What the CUDA driver opens: the control and memory-manager nodes, every GPU, and MIG's capability nodes.
CUDA_DEVICE_PATTERNS = (
    "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset", "nvidia[0-9]*", "nvidia-caps/nvidia-cap*",
)  # fmt: skip
# Variables a worker may inherit from the grader by name (the values of these names only): locale, the libraries'
# own tuning, and where CUDA and its libraries are. Everything else is dropped.
ENVIRONMENT_PASSED = (
    "LANG", "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
    "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES",
    "CUDA_MODULE_LOADING", "PYTORCH_CUDA_ALLOC_CONF",
)  # fmt: skip
# Variables that name a folder to write caches in: matplotlib, torch hub, tempfile, torch.compile, CUDA's JIT. All
# point into the scratch folder, whatever the grader's environment said.
SCRATCH_VARIABLES = (
    "HOME", "TMPDIR", "MPLCONFIGDIR", "XDG_CACHE_HOME", "TORCH_HOME", "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR",
    "TORCH_EXTENSIONS_DIR", "CUDA_CACHE_PATH",
)  # fmt: skip
WORKER_ENVIRONMENT = {"MPLBACKEND": "Agg", "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}

DEFAULT_SCRATCH_MB = 256  # options.DEFAULT_SCRATCH_MB, the --scratch default
DEFAULT_SCRATCH_FILES = 10_000
SHM_MB = 64  # /dev/shm: POSIX shared memory and semaphores (glibc's sem_open, Python's SharedMemory)
MAX_TASKS = 512  # processes and threads of one worker's tree, where the kernel can count them


@dataclass(frozen=True)
class Grants:
    """What one worker's view holds. Paths are real paths, bound at the same path in the view; `aliases` are the
    other paths the grader's Python knows them by (a link into a virtual environment), bound too."""

    read_only: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...]  # (path as the grader's Python names it, the real path)
    links: tuple[tuple[str, str], ...]  # (path, target): symbolic links made in the view (/bin -> usr/bin)
    devices: tuple[str, ...]
    sealed: tuple[str, ...]  # inside something granted, yet covered
    scratch: str
    scratch_bytes: int
    scratch_files: int
    shm_bytes: int


def within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@functools.cache  # found once, in the fork server (preload.py), and inherited by every worker
def environment_roots() -> tuple[str, ...]:
    """Folders of the installed environment (real paths): the interpreter's standard library and lib-dynload,
    site-packages, the (virtual) environment's prefix. Native code in them came with the installation."""
    paths = sysconfig.get_paths()
    found = [paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths]
    found += [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix, *site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        found.append(site.getusersitepackages())
    return tuple(dict.fromkeys(os.path.realpath(p) for p in found if os.path.exists(p)))


def package_root() -> str:
    """The grader's own package (the worker's code): `autograder/`, never the checkout around it."""
    return os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def import_roots(excluded: Sequence[str], holders: Sequence[str]) -> tuple[str, ...]:
    """The other folders this Python imports from (a `pip install --target` folder, a PYTHONPATH entry), so that a
    module a worker imports lazily from them is there. Never one of `excluded` (the working folder, a checkout's
    root), nor a folder that holds one of `holders` (a home folder, /tmp, a sealed path): granting it would grant
    them too."""
    excluded_real = {os.path.realpath(p) for p in excluded}
    holders_real = [os.path.realpath(p) for p in holders]
    roots = []
    for entry in sys.path:
        if not entry or not os.path.exists(entry):
            continue
        path = os.path.realpath(entry)
        if path in excluded_real or any(within(h, path) for h in holders_real):
            continue
        roots.append(path)
        if os.path.isdir(path):
            roots += _link_targets(entry)
    return tuple(dict.fromkeys(roots))


def _link_targets(folder: str) -> list[str]:
    """The folders that the links in an import folder lead into (a folder of links into a virtual environment)."""
    try:
        links = [e.path for e in os.scandir(folder) if e.is_symlink()]
    except OSError:
        return []
    return list(dict.fromkeys(os.path.dirname(os.path.realpath(link)) for link in links))


@functools.cache
def loader_folders(config_dir: str = LOADER_CONFIG) -> tuple[str, ...]:
    """The library folders the dynamic loader's configuration names (CUDA's, a vendor's under /opt)."""
    found = []
    for conf in sorted(glob.glob(os.path.join(config_dir, "*.conf"))):
        try:
            with open(conf, encoding="utf-8", errors="replace") as f:
                lines = [line.split("#")[0].strip() for line in f]
        except OSError:
            continue
        found += [line for line in lines if line.startswith("/") and os.path.isdir(line)]
    library_path = os.environ.get("LD_LIBRARY_PATH", "")
    found += [p for p in library_path.split(":") if p.startswith("/") and os.path.isdir(p)]
    return tuple(dict.fromkeys(os.path.realpath(p) for p in found))


def cuda_devices(dev: str = "/dev") -> tuple[str, ...]:
    """The NVIDIA device nodes present under `dev`, as a GPU worker needs them."""
    found: list[str] = []
    for pattern in CUDA_DEVICE_PATTERNS:
        found += sorted(glob.glob(os.path.join(dev, pattern)))
    return tuple(found)


@functools.cache
def system_paths() -> tuple[tuple[tuple[str, str], ...], tuple[str, ...], tuple[str, ...]]:
    """(links, folders) of the system's programs and libraries, and the granted files of /etc that exist."""
    links, folders = [], []
    for path in SYSTEM_PATHS:
        if os.path.islink(path):
            links.append((path, os.readlink(path)))
        elif os.path.isdir(path):
            folders.append(path)
    return tuple(links), tuple(folders), tuple(p for p in ETC_PATHS if os.path.exists(p))


def _outermost(paths: Iterable[str]) -> tuple[str, ...]:
    """The paths that lie in no other one of them (binding a folder grants what is inside)."""
    unique = sorted(set(paths))
    return tuple(p for p in unique if not any(o != p and within(p, o) for o in unique))


def grant(
    *,
    scratch: str,
    sealed: Sequence[str],
    excluded: Sequence[str],
    holders: Sequence[str],
    cuda: bool,
    scratch_mb: int = DEFAULT_SCRATCH_MB,
    scratch_files: int = DEFAULT_SCRATCH_FILES,
) -> Grants:
    """The grant for a worker whose scratch folder is `scratch`. `sealed` stays covered wherever it lies;
    `excluded` (the grader's working folder, a checkout's root) and any import folder holding one of `holders`
    are left out."""
    links, system, etc = system_paths()
    python = (*environment_roots(), package_root(), *import_roots(excluded, (*holders, *sealed)))
    wanted = [os.path.realpath(p) for p in (*system, *loader_folders(), *python)]
    read_only = _outermost(p for p in wanted if os.path.exists(p))
    # The grader's Python may know a granted folder by another path (a link on the way): bind it there too.
    aliases = []
    for known in (*sys.path, sys.prefix, sys.base_prefix):
        if known and os.path.exists(known) and os.path.abspath(known) != os.path.realpath(known):
            real = os.path.realpath(known)
            if any(within(real, r) for r in read_only) and not any(within(known, r) for r in read_only):
                aliases.append((os.path.abspath(known), real))
    real_sealed = tuple(os.path.realpath(p) for p in sealed)
    covered = tuple(p for p in real_sealed if any(within(p, r) and p != r for r in (*read_only, *etc)))
    return Grants(
        read_only=(*read_only, *(p for p in etc if not any(within(os.path.realpath(p), r) for r in read_only))),
        aliases=tuple(dict.fromkeys(aliases)),
        links=links,
        devices=(*(d for d in STANDARD_DEVICES if os.path.exists(d)), *(cuda_devices() if cuda else ())),
        sealed=covered,
        scratch=os.path.realpath(scratch),
        scratch_bytes=scratch_mb * 2**20,
        scratch_files=scratch_files,
        shm_bytes=SHM_MB * 2**20,
    )


def environment(scratch: str, threads: int, extra: dict[str, str], inherited: dict[str, str]) -> dict[str, str]:
    """A worker's whole environment: what it needs, the `ENVIRONMENT_PASSED` names of `inherited` (the grader's),
    the worker configuration's `extra`, and every cache folder in the scratch folder."""
    env = {name: inherited[name] for name in ENVIRONMENT_PASSED if name in inherited}
    env.update(WORKER_ENVIRONMENT)
    count = str(max(1, threads))
    env.update({"OMP_NUM_THREADS": count, "MKL_NUM_THREADS": count, "OPENBLAS_NUM_THREADS": count})
    env.update(extra)
    env.update({name: scratch for name in SCRATCH_VARIABLES})
    return env
