"""Grading a batch: chunks of submissions, each chunk one pytest session in a scoring process."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import multiprocessing
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
import torch

from autograder import devices, messages, phases
from autograder.errors import GradingError
from autograder.options import GradingOptions
from autograder.pytest_plugin import GradingPlugin
from autograder.results import (
    SubmissionResult,
    atomic_write,
    grades_csv,
    not_graded_result,
    one_assignment,
    ordered,
    read_result,
    results_in,
    write_json,
)
from autograder.runner import (
    FORK_SERVER_PRELOAD,
    SCORING_PRELOAD,
    MessageLost,
    Worker,
    bare_main_module,
    end_this_process,
    fork_server_context,
    fork_server_failure,
    guard_this_process,
    name_this_process,
    preload_modules,
    receive_message,
    scoring_ended,
    short_stacks,
)
from autograder.session import WorkerFactory
from autograder.spec import AssignmentSpec, load_assignment
from autograder.submission import Submission, load_submissions

GRADING_INI = Path(__file__).with_name("grading_pytest.ini")
MAX_CHUNK = 8
_STOP_SCORING_S = 10.0  # for scoring processes to end after an interrupt


# A LocalCluster of one thread per process, no dashboard, and its scheduler's HTTP server (which runs without the
# dashboard too) on a free port: on its default, 8787, a second cluster on the machine starts with a warning.
LOCAL_CLUSTER: dict[str, Any] = {
    "threads_per_worker": 1,
    "processes": True,
    "dashboard_address": None,
    "scheduler_kwargs": {"dashboard_address": "127.0.0.1:0"},
}


class ClusterLost(Exception):
    """The cluster the chunks were sent to can no longer be reached (`grade` says what was written)."""

    def __init__(self, scheduler: str, problem: str) -> None:
        super().__init__(scheduler, problem)
        self.scheduler, self.problem = scheduler, problem


class Executor(Protocol):
    """Runs chunks of submissions and hands each result to `on_result` exactly once, in the submitting process,
    as soon as it is known there: a scoring process of this machine hands over each result as it finishes it, a
    cluster's with its chunk. The submitting process is the results folder's one writer."""

    def run(
        self,
        spec: AssignmentSpec,
        chunks: Sequence[list[Submission]],
        options: GradingOptions,
        on_result: Callable[[SubmissionResult], None],
    ) -> None: ...


@dataclass
class Batch:
    spec: AssignmentSpec
    results: list[SubmissionResult] = field(default_factory=list)  # in submission-name order once grade returns
    out_dir: Path | None = None
    # Results already in `out_dir` when the batch started, by stem; of them: those --resume reused instead of
    # grading again, those the batch left alone (grades.csv lists them), and the names of submissions whose result
    # there came from another source file (graded over).
    in_folder: dict[str, SubmissionResult] = field(default_factory=dict)
    reused: list[SubmissionResult] = field(default_factory=list)
    overwritten: list[str] = field(default_factory=list)
    stems: dict[str, str] = field(default_factory=dict)  # submission name -> its result file's stem

    @property
    def untouched(self) -> list[SubmissionResult]:
        """Results in `out_dir` before the batch whose file it has not written over; grades.csv lists them."""
        written = {self.stems.get(r.submission) for r in self.results}
        return [r for stem, r in self.in_folder.items() if stem not in written]


def grade_chunk(
    spec: AssignmentSpec,
    submissions: list[Submission],
    options: GradingOptions,
    on_result: Callable[[SubmissionResult], None] | None = None,
    public_only: bool = False,
    exercises: Sequence[str] | None = None,
    worker_factory: WorkerFactory = Worker,
) -> list[SubmissionResult]:
    """Grade submissions in one pytest session in this process; student code runs in worker processes (made by
    `worker_factory`). `public_only` runs the public checks only; `exercises` only those exercises' checks."""
    phases.mark("chunk")
    preload_modules(spec.preload)  # where this process starts the fork server (a Dask worker's process)
    submissions = [s.read() for s in submissions]  # listed by `grade`; read here, a chunk at a time
    if submissions:
        # here, where the GPUs are (a Dask node's, not the submitting laptop's): which one, and each worker's share
        share = options.gpu_memory_fraction or devices.memory_share(options.device, options.jobs)
        device = devices.place(options.device, submissions[0].name)
        options = dataclasses.replace(options, device=device, gpu_memory_fraction=share)
    if options.device.is_cuda:
        devices.exact_float32()  # the checks' own GPU arithmetic (references, comparisons) as exact as the CPU's
    plugin = GradingPlugin(
        submissions,
        options,
        on_result=on_result,
        spec=spec,
        public_only=public_only,
        exercises=exercises,
        worker_factory=worker_factory,
    )
    targets = [str(spec.checks_dir / f"test_{e}.py") for e in exercises] if exercises else [str(spec.checks_dir)]
    args = [
        *targets,
        "-c",
        str(GRADING_INI),
        "--rootdir",
        str(spec.folder),
        "--confcutdir",
        str(spec.folder),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:terminal",
        "-p",
        "no:randomly",
        # Student code never runs in this process, so log capture and unraisable-exception hunting (two full
        # garbage collections per session) only cost time; failures are explained by explain_failure, so pytest's
        # own report needs no source-annotated traceback (GradingPlugin sets the native style).
        "-p",
        "no:logging",
        "-p",
        "no:unraisableexception",
        "-s",  # no output capture: a progress display must keep drawing while checks run
        "--import-mode=importlib",
    ]
    global _imported_checks
    checks = _check_sources(spec)
    if _imported_checks != checks:  # another assignment's checks, or these edited: import them afresh
        _forget_check_modules(spec)
        _imported_checks = None
    before = set(sys.modules)
    code = None
    # One thread for the checks' own torch work, as in every worker: the checks compute on small tensors, the
    # scoring processes are the parallelism (--jobs), and with more, torch's idle OpenMP threads spin between
    # operations on cores the other scoring processes and workers need (~5% of all CPU time, --jobs 2 on 2 cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with short_stacks():  # torch.manual_seed in references and checks: see runner/deferred_seeding.py
            code = pytest.main(args, plugins=[plugin])
    finally:
        torch.set_num_threads(threads)
        if code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and not plugin.fatal_error:
            _imported_checks = checks  # the next chunk's session finds them in sys.modules, as pytest left them
        else:
            _forget_check_modules(spec, [name for name in sys.modules if name not in before])
            _imported_checks = None
    if plugin.interrupted:  # pytest swallowed a Ctrl-C: pass it on, with what was graded already written
        raise KeyboardInterrupt
    if plugin.fatal_error:
        raise GradingError(plugin.fatal_error)
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and not plugin.results:
        raise GradingError(messages.PYTEST_FAILED.format(code=int(code), checks=spec.checks_dir))
    graded = {r.submission for r in plugin.results}
    for sub in submissions:  # a submission pytest never reached still gets a result that says why
        if sub.name not in graded:
            lost = not_graded_result(spec, sub.name, sub.path, messages.NOT_GRADED, options.device)
            plugin.results.append(lost)
            if on_result:
                on_result(lost)
    return plugin.results


# The check modules this process has imported and kept, as (folder, the sources of its files): a later chunk of
# the same checks reuses them (pytest's importlib mode takes a module already in sys.modules) rather than parsing,
# rewriting and compiling every check file again, ~70 ms a chunk where bytecode is not cached.
_imported_checks: tuple[str, tuple[tuple[str, bytes], ...]] | None = None


def _check_sources(spec: AssignmentSpec) -> tuple[str, tuple[tuple[str, bytes], ...]]:
    files = sorted(p for p in spec.checks_dir.rglob("*.py") if "__pycache__" not in p.parts)
    return str(spec.checks_dir), tuple((str(p), p.read_bytes()) for p in files)


def _forget_check_modules(spec: AssignmentSpec, names: Sequence[str] | None = None) -> None:
    """Drop imported check modules: pytest names them `checks.test_<id>` whatever the assignment, so a later
    session in this process (another assignment, or the same one edited) must not find the old ones. `names`:
    only these modules need looking at (those a session imported), not all of sys.modules."""
    for name in list(sys.modules) if names is None else names:
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None) or ""
        if name == "checks" or name.startswith("checks.") or file.startswith(str(spec.checks_dir)):
            sys.modules.pop(name, None)


# In a scoring process of `--jobs N`: the pipe (and the lock its writers share) through which it hands each result
# to the submitting process as it finishes it
_handed_over: tuple[Any, Any] | None = None
HANDED_OVER_BUDGET = 256 * 2**20  # bytes of one result as JSON: far past any result the grader's caps allow
HANDED_OVER_WAIT_S = 30.0  # for the rest of a result whose start has arrived (a scoring process killed mid-write)


def _hand_over(result: SubmissionResult) -> None:
    if _handed_over is not None:
        writer, lock = _handed_over
        data = json.dumps(result.to_dict()).encode()
        with lock:
            writer.send_bytes(data)


def _grade_chunk_in_subprocess(
    folder: str,
    submissions: list[Submission],
    options: GradingOptions,
    worker_factory: WorkerFactory = Worker,
) -> list[dict]:
    spec = load_assignment(folder)
    results = grade_chunk(spec, submissions, options, on_result=_hand_over, worker_factory=worker_factory)
    return [r.to_dict() for r in results]


def _grade_chunk_on_dask(folder: str, submissions: list[Submission], options: GradingOptions) -> list[dict]:
    """A chunk as a Dask task. If this Dask worker closes while it grades (SIGTERM or Ctrl-C of `dask worker`,
    a cluster shut down), `EndWorkersWithDask` has ended its workers: what this chunk graded after that is not
    the students' doing, so the task never returns (its thread is a daemon's, gone with the process) and the
    scheduler hands the chunk to another Dask worker, as it does when one is killed."""
    if multiprocessing.current_process().daemon:  # every worker would fail to start: the batch must stop
        raise GradingError(messages.DASK_DAEMONIC)
    results = _grade_chunk_in_subprocess(folder, submissions, options)
    if scoring_ended():
        threading.Event().wait()
    return results


class LocalExecutor:
    """`--jobs N` scoring processes on this machine (N=1: in this process). `worker_factory` makes the workers
    (picklable by name when N > 1)."""

    def __init__(self, jobs: int, worker_factory: WorkerFactory = Worker) -> None:
        self.jobs = _at_least_one(jobs)
        self.worker_factory = worker_factory

    def run(
        self,
        spec: AssignmentSpec,
        chunks: Sequence[list[Submission]],
        options: GradingOptions,
        on_result: Callable[[SubmissionResult], None],
    ) -> None:
        if self.jobs == 1:
            self._run_here(spec, chunks, options, on_result)
            return
        # Scoring processes are forks of a fork server that has imported torch, pytest and the grader once,
        # instead of N fresh interpreters importing them each (~2.5 s apiece). The fork server holds no
        # assignment, reference or submission: those reach each scoring process with its chunk.
        context = fork_server_context([FORK_SERVER_PRELOAD, SCORING_PRELOAD])
        # Each result, as its scoring process finishes it (read within a deadline: a scoring process killed
        # halfway through a write must not hold this one; its chunk's results are then taken from the pool).
        reader, writer = context.Pipe(duplex=False)
        os.set_blocking(reader.fileno(), False)
        pool = ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=context,
            initializer=_start_scoring_process,
            initargs=(os.getpid(), writer, context.Lock(), _cores_to_pin(self.jobs, context)),
        )
        delivered: set[str] = set()
        broken: list[str] = []

        def deliver(result: dict) -> None:
            if result["submission"] not in delivered:  # handed over, and returned again with its chunk
                delivered.add(result["submission"])
                on_result(SubmissionResult.from_dict(result))

        def take_handed_over() -> None:
            while not broken and reader.poll(0):
                try:
                    data = receive_message(reader.fileno(), time.monotonic() + HANDED_OVER_WAIT_S, HANDED_OVER_BUDGET)
                except (MessageLost, OSError) as exc:
                    broken.append(type(exc).__name__)
                    return
                deliver(json.loads(data))

        try:
            with bare_main_module():  # the pool starts its processes here: not from an instructor's script
                try:
                    pending: set[Future[Any]] = {
                        pool.submit(_grade_chunk_in_subprocess, str(spec.folder), chunk, options, self.worker_factory)
                        for chunk in chunks
                    }
                except (EOFError, ConnectionError):  # the fork server died before it could fork (a preload)
                    raise GradingError(fork_server_failure()) from None
            while pending:
                # Never an untimed wait: a Ctrl-C that the kernel delivers to another of this process's threads
                # (the pool's) only runs its handler once the main thread wakes up, and an untimed lock wait never
                # does: the grader went on after Ctrl-C.
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                take_handed_over()
                for future in done:
                    for result in future.result():
                        deliver(result)
        except BaseException:  # Ctrl-C, or a caller that stopped early: stop now, not after every queued chunk
            with contextlib.suppress(Exception):  # what was finished before the stop is still recorded
                take_handed_over()
            processes = list((getattr(pool, "_processes", None) or {}).values())  # shutdown forgets them
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()  # it ends its workers and their scratch folders, then itself
            # The pool's own thread joins them without a time limit as this process exits: one that does not end
            # within seconds is killed (its workers' keepers see its pipe close; the next grader sweeps its folder).
            deadline = time.monotonic() + _STOP_SCORING_S
            for process in processes:
                process.join(max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
            raise
        pool.shutdown(wait=True)
        take_handed_over()
        reader.close()
        writer.close()

    def _run_here(
        self,
        spec: AssignmentSpec,
        chunks: Sequence[list[Submission]],
        options: GradingOptions,
        on_result: Callable[[SubmissionResult], None],
    ) -> None:
        """`--jobs 1`: each chunk in this process. `on_result` runs inside the chunk's pytest session, which would
        take an error it raises (a results file that cannot be written) for a check's: it is raised after."""
        failed: list[BaseException] = []

        def deliver(result: SubmissionResult) -> None:
            if not failed:
                try:
                    on_result(result)
                except BaseException as exc:
                    failed.append(exc)

        for chunk in chunks:
            grade_chunk(spec, chunk, options, on_result=deliver, worker_factory=self.worker_factory)
            if failed:
                raise failed[0]


PIN_JOBS_ENV = "AUTOGRADER_PIN_JOBS"  # "0": scoring processes (and their workers) run on any core


def _cores_to_pin(jobs: int, context: Any) -> tuple[tuple[int, ...], Any] | None:
    """(this process's cores, a shared count of the scoring processes that took one) where each of `jobs`
    scoring processes can have a core of its own; None where they cannot (more jobs than cores), or where
    PIN_JOBS_ENV says not to.

    A scoring process and its worker take turns, ~70 requests a notebook, each waking the other. Left to the
    scheduler, two such pairs on two cores often share one core while the other idles until the load balancer
    moves one (~10% of the machine idle, `--jobs 2` on 2 cores); pinned, each pair has its core."""
    if os.environ.get(PIN_JOBS_ENV) == "0" or not hasattr(os, "sched_getaffinity"):
        return None
    cores = tuple(sorted(os.sched_getaffinity(0)))
    if jobs > len(cores):
        return None
    return cores, context.Value("i", 0)


def _pin_to_a_core(cores: tuple[tuple[int, ...], Any] | None) -> None:
    """Take the next free core of `_cores_to_pin` (the first scoring process the first core, ...)."""
    if cores is None:
        return
    allowed, taken = cores
    with taken.get_lock():
        index = taken.value
        taken.value += 1
    with contextlib.suppress(OSError):  # a cpuset changed under us: stay where the scheduler puts us
        os.sched_setaffinity(0, {allowed[index % len(allowed)]})


def _start_scoring_process(
    submitter: int, writer: Any, lock: Any, cores: tuple[tuple[int, ...], Any] | None = None
) -> None:
    """A scoring process forked from the fork server is not the submitting process's child: when that process
    is killed (SIGKILL, OOM killer), nothing would stop this one. A watcher thread ends it then; what it had
    handed over is already on disk, and `--resume` grades the rest. `writer`: the pipe each result goes to;
    `cores`: a core of its own to take (`_cores_to_pin`), where its workers run too."""
    global _handed_over
    _handed_over = (writer, lock)
    phases.mark("scoring process")
    name_this_process("ag-scoring")
    _pin_to_a_core(cores)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the submitter decides
    # The pool terminates its processes on an error exit: their workers and scratch folders end with them.
    signal.signal(signal.SIGTERM, lambda signum, frame: end_this_process(143))

    def watch() -> None:
        try:
            handle = os.pidfd_open(submitter)
        except (AttributeError, OSError):  # no pidfd (old kernel): poll
            while True:
                time.sleep(1.0)
                try:
                    os.kill(submitter, 0)
                except ProcessLookupError:
                    end_this_process(1)
                except PermissionError:
                    pass
        select.select([handle], [], [])  # readable once the submitting process has exited
        end_this_process(1)

    threading.Thread(target=watch, name="watch-submitter", daemon=True).start()


class DaskExecutor:
    """Chunks as tasks on a Dask distributed cluster (`scheduler` address), or on a `LocalCluster` of `jobs`
    worker processes. Each Dask worker is a scoring process: it starts its own fork server and runs student code
    in isolated workers exactly as on one machine. The assignment folder must exist at the same path on every
    Dask worker (install the project there); submissions travel with the tasks. Dask workers must be allowed
    child processes: `distributed.worker.daemon: false` (env DASK_DISTRIBUTED__WORKER__DAEMON=False)."""

    def __init__(self, scheduler: str | None = None, jobs: int = 1, client: Any = None) -> None:
        self.scheduler = scheduler
        self.jobs = _at_least_one(jobs)
        self.client = client  # an existing distributed.Client to use (and leave open)

    def run(
        self,
        spec: AssignmentSpec,
        chunks: Sequence[list[Submission]],
        options: GradingOptions,
        on_result: Callable[[SubmissionResult], None],
    ) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster, as_completed
        except ImportError:
            raise GradingError(messages.NO_DASK) from None
        stack = contextlib.ExitStack()
        with dask.config.set({"distributed.worker.daemon": False}):
            if self.client is not None:
                client, cluster = self.client, None
            elif self.scheduler:
                client = Client(self.scheduler)
                cluster = None
            else:
                cluster = LocalCluster(n_workers=self.jobs, **LOCAL_CLUSTER)
                client = Client(cluster)
        try:
            from autograder.dask_plugin import EndWorkersWithDask, quiet_client

            stack.enter_context(quiet_client())

            client.register_plugin(EndWorkersWithDask())
            # Results are written here, by this process: a cluster's workers need not share the results folder.
            futures = [
                client.submit(_grade_chunk_on_dask, str(spec.folder), chunk, options, pure=False) for chunk in chunks
            ]
            for future in as_completed(futures):
                try:
                    chunk = future.result()
                except (CancelledError, OSError, TimeoutError) as exc:  # the scheduler is gone or unreachable
                    problem = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                    raise ClusterLost(self.scheduler or "LocalCluster", problem) from None
                for result in chunk:
                    on_result(SubmissionResult.from_dict(result))
        finally:
            if client is not self.client:
                with contextlib.suppress(Exception):  # a client whose scheduler is gone closes with errors
                    client.close()
            if cluster is not None:
                cluster.close()
            stack.close()


def _at_least_one(jobs: int) -> int:
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    return jobs


def chunked(submissions: list[Submission], jobs: int) -> list[list[Submission]]:
    """Small enough chunks to keep every scoring process busy and the progress bar moving."""
    if not submissions:
        return []
    size = max(1, min(MAX_CHUNK, math.ceil(len(submissions) / (4 * jobs))))
    return [submissions[i : i + size] for i in range(0, len(submissions), size)]


def grade(
    assignment: str | Path | AssignmentSpec,
    paths: Sequence[str | Path],
    *,
    out_dir: Path | None,
    options: GradingOptions,
    executor: Executor | None = None,
    jobs: int = 1,
    on_result: Callable[[SubmissionResult], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    resume: bool = False,
) -> Batch:
    """Grade every submission under `paths`, writing `<name>.json` as each is graded and `grades.csv`.
    `out_dir` holds one assignment's results: results of earlier runs there are kept and listed in grades.csv
    too (a submission graded again replaces its own), and a folder of another assignment's results is refused.
    With `resume`, submissions that already have a readable result in `out_dir` are not graded again."""
    jobs = _at_least_one(jobs)
    guard_this_process()  # with --jobs N this process starts no worker, yet SIGTERM must still stop the batch
    spec = assignment if isinstance(assignment, AssignmentSpec) else load_assignment(assignment)
    preload_modules(spec.preload)  # before the fork server starts
    absent = [str(p) for p in paths if not Path(p).exists()]
    if absent:  # a mistyped path is the instructor's mistake, not a student's result
        raise GradingError(messages.NO_SUCH_INPUT.format(paths=", ".join(absent)))
    submissions = load_submissions(paths, read=False)  # names and places: each is read where it is graded
    phases.mark("listed")
    if not submissions:
        raise GradingError(messages.NO_SUBMISSIONS.format(paths=", ".join(str(p) for p in paths)))
    lock = _hold_out_dir(out_dir) if out_dir is not None else None  # before anything is graded
    try:
        return _grade_into(spec, paths, submissions, out_dir, options, executor, jobs, on_result, on_start, resume)
    finally:
        if out_dir is not None and lock is not None:
            _release_out_dir(out_dir, lock)


def _grade_into(
    spec: AssignmentSpec,
    paths: Sequence[str | Path],
    submissions: list[Submission],
    out_dir: Path | None,
    options: GradingOptions,
    executor: Executor | None,
    jobs: int,
    on_result: Callable[[SubmissionResult], None] | None,
    on_start: Callable[[int], None] | None,
    resume: bool,
) -> Batch:
    batch = Batch(spec, out_dir=out_dir, in_folder=_earlier_results(out_dir, spec))
    stems = batch.stems = {s.name: s.stem for s in submissions}
    batch.overwritten = sorted(s.name for s in submissions if _from_elsewhere(batch.in_folder.get(s.stem), s))
    if resume and out_dir is not None:
        batch.reused = _graded_before(out_dir, spec, submissions, stems)
        batch.results.extend(batch.reused)
        done = {r.submission for r in batch.reused}
        submissions = [s for s in submissions if s.name not in done]
    if on_start:
        on_start(len(submissions))
    # What this batch adds to the options, once: workers must not see the inputs, the results, or this assignment's
    # checks and references; the scoring processes that share this machine's GPUs. The scoring process adds the GPU
    # it grades a chunk on (grade_chunk), nothing else changes them.
    sealed = (*(str(p) for p in paths), spec.folder, spec.reference_path, out_dir)
    options = dataclasses.replace(options, sealed=tuple(str(p) for p in (*options.sealed, *sealed) if p), jobs=jobs)
    # One scoring process per chunk at most: a single submission is scored here, its checks collected while the
    # fork server imports, instead of waiting for a scoring process forked from it.
    executor = executor or LocalExecutor(max(1, min(jobs, len(submissions))))
    record = _Recorder(batch, on_result)
    try:
        executor.run(spec, chunked(submissions, jobs), options, record)
    except ClusterLost as lost:
        graded = len(batch.results) - len(batch.reused)
        written = f"{graded} result(s) written to {out_dir}/" if out_dir else f"{graded} graded, none kept"
        text = messages.CLUSTER_LOST.format(scheduler=lost.scheduler, problem=lost.problem, written=written)
        raise GradingError(text) from None
    finally:
        if out_dir is not None and batch.results:
            with contextlib.suppress(GradingError):  # a failure here is already being reported
                _write_csv(out_dir, batch, rebuilt=True)
    batch.results = ordered(batch.results)
    return batch


class _Recorder:
    """Each result as the executor hands it over: kept in the batch, written to `<stem>.json` (this process is
    the results folder's one writer), passed on; grades.csv rewritten every few seconds and at the end."""

    CSV_EVERY_S = 2.0

    def __init__(self, batch: Batch, on_result: Callable[[SubmissionResult], None] | None) -> None:
        self.batch, self.on_result = batch, on_result
        self.csv_written = time.monotonic()

    def __call__(self, result: SubmissionResult) -> None:
        batch, out_dir = self.batch, self.batch.out_dir
        batch.results.append(result)
        if out_dir is not None:
            stem = batch.stems[result.submission]
            _written(batch, out_dir / f"{stem}.json", write_json, out_dir, stem, result)
            if time.monotonic() - self.csv_written > self.CSV_EVERY_S:
                _write_csv(out_dir, batch)
                self.csv_written = time.monotonic()
        if self.on_result:
            self.on_result(result)


LOCK_FILE = ".autograder-lock"


def _hold_out_dir(out_dir: Path) -> int:
    """Make `out_dir` if needed and hold its lock for the batch: one writer at a time (another `grade` into the
    same folder stops at once, naming the holder). The lock's file is this run's proof that the folder is
    writable, before anything is graded. Released when the descriptor is closed, or the process ends."""
    path = out_dir / LOCK_FILE
    while True:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise GradingError(messages.OUT_UNWRITABLE.format(out=out_dir, problem=exc.strerror or exc)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 500, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise GradingError(messages.OUT_LOCKED.format(out=out_dir, holder=holder)) from None
        except OSError:  # a file system without locks: graded without one
            return fd
        try:  # the file the last holder removed as it finished is not the lock any more: take the new one
            if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    holder = f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode() + b"\n", 0)
    except OSError as exc:
        os.close(fd)
        raise GradingError(messages.OUT_UNWRITABLE.format(out=out_dir, problem=exc.strerror or exc)) from None
    return fd


def _release_out_dir(out_dir: Path, fd: int) -> None:
    """Remove the lock's file, then let the lock go (a run that opened the file just before sees it removed)."""
    with contextlib.suppress(OSError):
        os.unlink(out_dir / LOCK_FILE)
    os.close(fd)


def _written(batch: Batch, path: Path, write: Callable[..., Any], *args: Any) -> None:
    """Write one results file; a failure (disk full, folder gone) stops the batch with the file named."""
    try:
        write(*args)
    except OSError as exc:
        kept = len(batch.results) - 1
        raise GradingError(messages.CANNOT_WRITE.format(path=path, problem=exc.strerror or exc, n=kept)) from None


def _earlier_results(out_dir: Path | None, spec: AssignmentSpec) -> dict[str, SubmissionResult]:
    """The results already in `out_dir`, by stem; a GradingError when they are another assignment's."""
    if out_dir is None:
        return {}
    earlier = results_in(out_dir)
    try:
        other = one_assignment(out_dir, earlier)
    except ValueError as exc:
        raise GradingError(str(exc)) from None
    if other is not None and other != spec.name:
        example = next(f"{stem}.json" for stem, r in sorted(earlier.items()) if r.assignment == other)
        raise GradingError(
            messages.OUT_HOLDS_OTHER.format(out=out_dir, other=other, example=example, assignment=spec.name)
        )
    return earlier


def _graded_before(
    out_dir: Path, spec: AssignmentSpec, submissions: list[Submission], stems: dict[str, str]
) -> list[SubmissionResult]:
    """Results already in `out_dir` for these submissions; an unreadable or foreign file is graded again."""
    found = []
    for sub in submissions:
        result = read_result(out_dir / f"{stems[sub.name]}.json")
        if result is None:
            continue
        # one the grader did not grade (never reached, or a worker that could not start) is graded again
        if result.assignment == spec.name and result.submission == sub.name and result.graded:
            found.append(result)
    return found


def _from_elsewhere(earlier: SubmissionResult | None, submission: Submission) -> bool:
    """Whether grading `submission` writes over the result of another file (another section's alice.ipynb)."""
    if earlier is None:
        return False
    moved = bool(earlier.path) and Path(earlier.path).resolve() != Path(submission.path).resolve()
    return moved or earlier.submission != submission.name


def _write_csv(out_dir: Path, batch: Batch, rebuilt: bool = False) -> None:
    """grades.csv of the whole folder: this batch's results and those of earlier runs it did not grade again;
    `rebuilt`, at the end: from the result files in the folder, whoever wrote them."""
    results = [*batch.results, *batch.untouched]
    if rebuilt:  # what the folder holds: a result whose file could not be written is not a grade yet
        results = [r for r in results_in(out_dir).values() if r.assignment == batch.spec.name]
    path = out_dir / "grades.csv"
    _written(batch, path, atomic_write, path, grades_csv(batch.spec, ordered(results)))


__all__ = ["Batch", "GradingError", "LocalExecutor", "grade", "grade_chunk"]
