"""The fork server's preload, and that is all this module is for.

multiprocessing's fork server can only import modules by name before it forks, so importing this module is what
prepares the server that every worker (and, with `--jobs N`, every scoring process) is forked from: the worker's
code, torch included, and the libraries course notebooks import (`COURSE_MODULES`) are imported once for all forks,
and the server is made non-dumpable, so that a worker can read neither its memory nor, through /proc/<pid>/root,
its view of the files. It is the one module whose import changes the process: import it nowhere else
(`proxy.FORK_SERVER_PRELOAD` names it).

Why the course's libraries: a worker that imports matplotlib.pyplot or torchvision itself pays for it on every
submission (pyplot also rebuilds its font list in the worker's empty scratch folder): seconds per notebook, most of
a realistic notebook's cost (bench.floor). Imported here, a worker's `import torchvision` is a dictionary lookup.
What a module does at import happens once, in the grader's own process before any student code exists, so it
hands a worker nothing it could not import itself; the checks seed torch, numpy and random before every call, so
module state inherited by every fork (numpy's global generator) cannot change a verdict.
"""

import ctypes
import encodings.ascii  # noqa: F401 - workers read /proc files as ascii while they set up, behind their walls
import gc
import importlib
import os
import sys
import types

import autograder.runner.worker  # noqa: F401 - imported once here, inherited by every fork
from autograder import phases
from autograder.runner import policy, sandbox, seccomp
from autograder.runner.deferred_seeding import install_short_stacks
from autograder.runner.forkserver import DEFER_COMPILER_ENV, HUGE_PAGES_ENV, PRELOAD_ENV

# What the course's notebooks import besides torch (see ../shared/seeds/); absent ones are skipped. An assignment
# adds its own with `preload = [...]` in its assignment.toml.
COURSE_MODULES = (
    "numpy",
    "numpy.random",  # numpy 2 imports it when first named: every check seeds it before every call
    "matplotlib",
    "matplotlib.pyplot",
    "torchvision",
    "torchvision.transforms",
    "torchvision.datasets",
    "torch.utils.data",
    "tqdm",
    "tqdm.auto",
    "IPython.display",
    "ipywidgets",
    "requests",
)


def import_quietly(names: tuple[str, ...]) -> list[str]:
    """Import what can be imported; a library that is missing or fails to import is the worker's to meet."""
    loaded = []
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001, S112 - a preload is an optimisation, never a reason to fail
            continue  # SystemExit too: a server that ended here would start no worker at all
        loaded.append(name)
    return loaded


_MADV_COLLAPSE = 25  # Linux 6.1+
_HUGE_PAGE = 1 << 21


def collapse_into_huge_pages() -> int:
    """Back this process's private anonymous memory (the heap and what torch's libraries allocated: ~400 MB once
    the course's modules are in) with 2 MiB pages where the kernel can; returns how many regions it took.

    Every fork copies the page tables of that memory and every exit tears them down: with 4 KiB pages that is
    ~100,000 entries, ~35 ms a worker (bench.floor's fork figure), the largest fixed cost of a submission once the
    checks are fast. Collapsed, a fork copies a few hundred. The pages stay shared copy-on-write; a worker that
    writes into one gets a 4 KiB copy, as before (the kernel splits a huge page on a copy-on-write fault). Nothing
    changes for later allocations (MADV_COLLAPSE does not mark the regions for huge pages). A kernel without
    MADV_COLLAPSE, or with transparent huge pages off, refuses, and forks cost what they did."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    collapsed = 0
    try:
        with open("/proc/self/maps", encoding="ascii") as maps:
            regions = [line.split() for line in maps]
    except OSError:  # no /proc: a fork server must start whatever this finds
        return 0
    for fields in regions:
        start, end = (int(address, 16) for address in fields[0].split("-"))
        anonymous = len(fields) < 6 or fields[5] == "[heap]"
        if not (anonymous and fields[1].startswith("rw") and fields[1].endswith("p")):
            continue
        start = (start + _HUGE_PAGE - 1) & ~(_HUGE_PAGE - 1)
        end &= ~(_HUGE_PAGE - 1)
        if end > start and madvise(start, end - start, _MADV_COLLAPSE) == 0:
            collapsed += 1
    return collapsed


_DEFERRED = "torch._dynamo.utils"


def _is_compile_supported(device_type):  # noqa: ANN001, ANN202 - torch's own signature, untyped here on purpose
    from torch._dynamo.utils import is_compile_supported  # noqa: PLC0415 - the deferred import itself

    return is_compile_supported(device_type)


_is_compile_supported.__module__ = _DEFERRED  # named as the function it stands for
_is_compile_supported.__name__ = _is_compile_supported.__qualname__ = "is_compile_supported"


def import_torchvision(defer_compiler: bool) -> None:
    """Import torchvision, without the compiler it names at import where `defer_compiler` (a command that starts
    one worker) and a worker could import it itself.

    torchvision's `ops/roi_align.py` does `from torch._dynamo.utils import is_compile_supported` at import, and
    that import is torch's whole compiler stack (torch._dynamo, sympy, torch.fx's symbolic shapes, parts of
    torch.distributed): ~1 s of a cold command's ~3.4 s here, paid before any worker can start. Deferred, that one
    name is bound to a function that imports the real one when first called and then does exactly what it does,
    so the compiler loads when the notebook uses it (roi_align, `torch.compile`, or any optimizer's first step:
    torch.optim imports it then) as in a kernel, and not for a notebook that only imports torchvision. For one
    worker it costs nothing: what the server would have imported before the worker could start, the worker
    imports instead, only if it needs it. For many workers (a class) it would cost each one that trains ~1 s, so
    the server imports it. The stand-in module is in `sys.modules` only while torchvision imports: anything else
    that imports torch._dynamo.utils gets the real module."""
    if not defer_compiler or _DEFERRED in sys.modules:
        import_quietly(("torchvision",))
        return
    stand_in = types.ModuleType(_DEFERRED)
    stand_in.is_compile_supported = _is_compile_supported  # type: ignore[attr-defined]
    sys.modules[_DEFERRED] = stand_in
    try:
        import_quietly(("torchvision",))
    finally:
        if sys.modules.get(_DEFERRED) is stand_in:
            del sys.modules[_DEFERRED]


os.environ.setdefault("MPLBACKEND", "Agg")  # before pyplot: plots render nowhere, as in the workers
import_torchvision(defer_compiler=os.environ.get(DEFER_COMPILER_ENV) == "1")
import_quietly(COURSE_MODULES + tuple(os.environ.get(PRELOAD_ENV, "").split()))
# What the server holds now lives as long as it does: kept out of every garbage collection in the server and in
# its forks. A full collection in a fork would otherwise walk (and so copy, page by page) all of it: ~0.5 s, which
# a worker meets once its student code has made some 70,000 lasting objects.
install_short_stacks()  # torch.manual_seed in student code and in scoring processes: see deferred_seeding.py
seccomp.in_pid_namespace(cuda=False), seccomp.in_pid_namespace(cuda=True)  # built once here, loaded by every worker
policy.environment_roots(), policy.loader_folders(), policy.system_paths()  # what every worker's view grants
gc.freeze()
if os.environ.get(HUGE_PAGES_ENV) != "off":  # a command with few workers to start says so (forkserver.start_early)
    collapse_into_huge_pages()
sandbox.protect_this_process()
phases.mark("fork server ready")
