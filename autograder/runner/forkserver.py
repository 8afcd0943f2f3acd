"""multiprocessing's fork server, which every worker (and, with `--jobs N`, every scoring process) is forked from:
which modules it imports before it forks, where its socket lives, and starting it early. Light on purpose (no
torch): a command starts the server first thing, so that the server's imports and the command's own run at the
same time on two cores instead of one after the other."""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.util
import os
import sys
import tempfile
import types
from collections.abc import Iterator, Sequence

from autograder import messages, phases
from autograder.errors import GradingError
from autograder.runner.scratch import SOCKET_PATH_MAX, remove_tree, socket_folder

FORK_SERVER_PRELOAD = "autograder.runner.preload"
PRELOAD_ENV = "AUTOGRADER_PRELOAD"  # more modules for the fork server to import, space-separated
SCORING_PRELOAD = "autograder.grader"  # what scoring processes need besides (`--jobs N`)
HUGE_PAGES_ENV = "AUTOGRADER_HUGE_PAGES"  # "off": the server does not collapse its memory into huge pages
# Collapsing (preload.collapse_into_huge_pages) costs the server's start ~4 s of system time on these machines and
# saves ~35 ms per worker started: worth it from about this many workers on.
HUGE_PAGES_FROM = 100
DEFER_COMPILER_ENV = "AUTOGRADER_DEFER_COMPILER"  # "1": one worker to start, torch's compiler left to it (preload)


def preload_modules(names: Sequence[str]) -> None:
    """Have this process's fork server import `names` too (an assignment's `preload`), so that every worker
    inherits them. The server reads them when it starts: with the first worker or scoring process of this process;
    a server already running (an earlier assignment graded by the same process) keeps what it has."""
    wanted = [*os.environ.get(PRELOAD_ENV, "").split(), *names]
    if wanted:
        os.environ[PRELOAD_ENV] = " ".join(dict.fromkeys(wanted))


def _own_socket_folder() -> None:
    """multiprocessing's fork server listens on a socket in a folder it would make under TMPDIR as pymp-*: left
    behind should this process be killed, and too long a path for a socket under a long TMPDIR. The folder is
    made here instead (see `socket_folder`), removed when this process ends, or swept if it is killed."""
    from multiprocessing import forkserver

    config = multiprocessing.process.current_process()._config  # type: ignore[attr-defined]
    if config.get("tempdir") is not None or getattr(forkserver._forkserver, "_forkserver_address", None):  # type: ignore[attr-defined]
        return  # a folder made already, or a fork server running (this process's or, inherited, its parent's)
    folder = socket_folder()
    if folder is None:
        raise GradingError(messages.TMPDIR_TOO_LONG.format(folder=tempfile.gettempdir(), limit=SOCKET_PATH_MAX))
    # removed at this process's end, after its workers (as multiprocessing removes the folder it makes itself)
    multiprocessing.util.Finalize(None, remove_tree, args=(folder,), exitpriority=-100)
    config["tempdir"] = folder


def fork_server_context(preload: Sequence[str]) -> multiprocessing.context.ForkServerContext:
    """multiprocessing's fork server context: it imports `preload` before it forks; its socket is where one fits."""
    context = multiprocessing.get_context("forkserver")
    assert isinstance(context, multiprocessing.context.ForkServerContext)
    context.set_forkserver_preload(list(preload))
    _own_socket_folder()
    return context


@contextlib.contextmanager
def bare_main_module() -> Iterator[None]:
    """multiprocessing re-imports the parent's main script in a new process; an instructor's script that calls
    `grade()` would then run again inside the worker. Starting the worker with a bare `__main__` prevents it."""
    real = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = real


def start_early(preload: Sequence[str], workers: int | None = None) -> None:
    """Start this process's fork server now, importing `preload` (FORK_SERVER_PRELOAD, and SCORING_PRELOAD for a
    pool of scoring processes) and the modules of `preload_modules`, while this process goes on with its own
    imports. Later contexts find it running and use it as it is. `workers`: about how many it will start (one per
    submission); under HUGE_PAGES_FROM, the server skips collapsing its memory into huge pages; for one, it
    leaves torch's compiler for the worker to import if its notebook uses it (preload.import_torchvision)."""
    from multiprocessing import forkserver

    told: dict[str, str] = {}
    if workers is not None and workers < HUGE_PAGES_FROM:
        told[HUGE_PAGES_ENV] = "off"
    if workers == 1 and os.environ.get(DEFER_COMPILER_ENV) != "0":  # "0": import it anyway
        told[DEFER_COMPILER_ENV] = "1"
    phases.mark("fork server started")
    fork_server_context(preload)
    with bare_main_module(), _told_to_the_server(told):  # an instructor's script is not the server's to import
        forkserver.ensure_running()


@contextlib.contextmanager
def _told_to_the_server(settings: dict[str, str]) -> Iterator[None]:
    """`settings` in the environment the fork server starts with, and only there: left in this process's, they
    would reach every process it starts later (a test run's `grade` subprocess, whose server would then leave the
    compiler to each of its many workers)."""
    before = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
