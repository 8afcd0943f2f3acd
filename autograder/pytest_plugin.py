"""pytest plugin that turns `assignments/<a>/checks/test_<exercise>.py` into a grader.

Loaded through the `pytest11` entry point, so `pytest assignments/mlp/checks --submission nb.ipynb` works on
its own; the native grader registers a `GradingPlugin` itself. Checks receive the fixtures `student` (calls run
in the submission's worker), `reference`, `device`, `seed` and `gen`; markers `points(n)` and `public` give
points and visibility. Without `--submission` (and outside the grader) the plugin does nothing.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys
import time
import traceback
import zlib
from collections import defaultdict
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from autograder import messages
from autograder.proxy import (
    MissingSymbol,
    StudentError,
    StudentProxy,
    SubmissionUnreadable,
    Worker,
    WorkerLost,
    decode,
)
from autograder.results import CheckResult, SubmissionResult, error_result, exercise_result
from autograder.spec import AssignmentSpec, ExerciseSpec, load_assignment
from autograder.submission import Submission, load_submissions
from autograder.worker import MAX_FILE_BYTES

PLUGIN_NAME = "autograder-grading"
_PLUGIN_KEY = pytest.StashKey["GradingPlugin"]()
_POINTS_KEY = pytest.StashKey[float]()
SUBMISSION_ID = "submission{index}"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MEMORY_MB = 4096
DEFAULT_CPU_SECONDS = 900
DEFAULT_BUDGET = 600.0
MAX_SKIPPED_STATEMENTS = 5  # statements that hang or crash while loading, before the notebook counts as unloadable
MAX_RESTARTS = 20  # a backstop; normally an exercise that loses the worker is abandoned after one loss


@dataclass(frozen=True)
class GradingOptions:
    device: str = "cpu"  # already resolved: "cpu", "cuda" or "cuda:N"
    timeout: float = DEFAULT_TIMEOUT  # seconds for loading the code, and for each call a check makes
    execute: str = "definitions"  # or "all"
    threads: int = 1  # torch threads inside each worker
    memory_mb: int | None = DEFAULT_MEMORY_MB  # resident memory a worker may use (None: no limit)
    cpu_seconds: int | None = DEFAULT_CPU_SECONDS  # CPU time of one worker (None: no limit)
    budget: float | None = DEFAULT_BUDGET  # wall-clock seconds for all of one submission's checks (None: no limit)
    hidden: tuple[str, ...] = ()  # paths no worker may see: inputs, results, the assignment's checks and references
    gpu_memory_fraction: float | None = None  # each worker's share of its GPU (set by `grade` from --jobs)


def place_on_gpu(options: GradingOptions, key: str) -> GradingOptions:
    """With `--device cuda` and several GPUs, a chunk of submissions goes to one of them, chosen by `key`."""
    count = torch.cuda.device_count() if options.device == "cuda" else 0
    if count <= 1:
        return options
    return dataclasses.replace(options, device=f"cuda:{zlib.crc32(key.encode()) % count}")


def gpu_share(options: GradingOptions, jobs: int) -> GradingOptions:
    """Workers that share a GPU (more scoring processes than GPUs) each get an equal share of its memory."""
    if not options.device.startswith("cuda") or options.gpu_memory_fraction:
        return options
    count = max(1, torch.cuda.device_count()) if options.device == "cuda" else 1
    sharing = math.ceil(max(1, jobs) / count)
    return dataclasses.replace(options, gpu_memory_fraction=round(0.9 / sharing, 3)) if sharing > 1 else options


def cuda_index(device: str) -> int | None:
    """The GPU a worker grading on `device` uses: "cuda" is the first (torch.cuda.set_device needs an index)."""
    if not device.startswith("cuda"):
        return None
    return torch.device(device).index or 0


def resolve_device(requested: str) -> str:
    """'auto' is CUDA when present, else CPU; asking for CUDA without it is an error the user must see."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(messages.NO_CUDA)
    if requested != "cpu" and not requested.startswith("cuda"):
        raise ValueError(messages.BAD_DEVICE.format(device=requested))
    return requested


class SubmissionSession:
    """One submission being graded: its worker (restarted after a loss) and what its code defined."""

    def __init__(self, submission: Submission, options: GradingOptions) -> None:
        self.submission = submission
        self.options = options
        self.worker: Worker | None = None
        self.defined: set[str] = set()
        self.load_errors: list[str] = []
        self.fatal: WorkerLost | None = None  # set once the code cannot be loaded at all
        self.restarts = 0
        self.exercise = ""  # the exercise whose check is running
        self.call_seed = 0  # seeds every call into student code during the running check
        self.lost: dict[str, WorkerLost] = {}  # exercises abandoned after their check lost the worker
        self.started = time.perf_counter()
        self.output = ""
        self.output_truncated = False  # the worker printed past the cap, and the rest was dropped
        self.sandbox = ""
        self.skipped: list[tuple[int, int, int]] = []  # (cell, statement, line) left out after they stopped a worker
        self.skip_errors: list[str] = []
        self.peak_rss_mb = 0.0  # of the last worker, read when the submission is done
        self.helpers: tuple[tuple[str, str], ...] = ()  # the assignment's helpers module, for workers to rebuild

    def ensure_worker(self) -> None:
        if self.submission.error:
            raise SubmissionUnreadable(self.submission.error)
        if self.fatal is not None:
            raise WorkerLost(self.fatal.kind, self.fatal.args[0], self.fatal.detail)
        if self.worker is not None and self.worker.alive:
            return
        if self.worker is not None:
            self.restarts += 1
            if self.restarts > MAX_RESTARTS:
                self.fatal = WorkerLost("crash", messages.TOO_MANY_RESTARTS.format(n=MAX_RESTARTS))
                raise self.fatal
        options = self.options
        cells = [(cell.index, cell.source) for cell in self.submission.cells]
        while True:
            self.worker = Worker(
                threads=options.threads,
                hidden=options.hidden,
                memory_mb=options.memory_mb,
                cpu_seconds=options.cpu_seconds,
                cap_address_space=options.device == "cpu",
                cuda_index=cuda_index(options.device),
                gpu_memory_fraction=options.gpu_memory_fraction,
                helpers=self.helpers,
            )
            try:
                skip = tuple((cell, number) for cell, number, _ in self.skipped)
                reply = self.worker.request("load", cells, options.execute, skip, timeout=self._time_left())
                break
            except WorkerLost as lost:
                where = self.worker.stopped_at
                self._collect_output()
                if lost.kind == "budget" or where is None or len(self.skipped) >= MAX_SKIPPED_STATEMENTS:
                    self.fatal = WorkerLost(lost.kind, messages.WHILE_LOADING + " " + str(lost), lost.detail)
                    raise self.fatal from None
                # One statement hung or crashed the worker while the notebook was loading: leave it out, so
                # that only what it defines is lost, and tell the student which one it was.
                self.skipped.append(where)
                self.skip_errors.append(messages.LOAD_STOPPED.format(cell=where[0], line=where[2], problem=lost))
        if not reply["ok"]:
            self.fatal = WorkerLost("crash", messages.student_raised("your notebook", reply["error"]))
            raise self.fatal
        loaded = reply["value"]
        self.sandbox = loaded.get("sandbox", "")
        self.defined = set(loaded["defined"])
        if self.restarts == 0:
            self.load_errors = [*self.skip_errors, *(messages.load_error(e) for e in loaded["errors"])]

    def _time_left(self) -> float:
        """The per-call timeout, or less when the submission's time budget is nearly spent."""
        if self.options.budget is None:
            return self.options.timeout
        left = self.options.budget - (time.perf_counter() - self.started)
        if left <= 0:
            self.fatal = WorkerLost("budget", messages.BUDGET.format(seconds=f"{self.options.budget:g} s"))
            raise self.fatal
        return min(self.options.timeout, left)

    def ask(self, op: str, *args: Any, call: str) -> Any:
        assert self.worker is not None
        limit = self._time_left()
        try:
            reply = self.worker.request(op, *args, timeout=limit)
        except WorkerLost as lost:
            self._collect_output()
            if lost.kind == "timeout" and limit < self.options.timeout:
                assert self.options.budget is not None
                self.fatal = WorkerLost("budget", messages.BUDGET.format(seconds=f"{self.options.budget:g} s"))
                lost = self.fatal
            error = WorkerLost(lost.kind, f"{lost} (while the grader called {call})", lost.detail)
            self.lost.setdefault(self.exercise, error)
            raise error from None
        if not reply["ok"]:
            if reply["error"].get("type") == "OutOfMemoryError":
                # The worker's GPU memory may stay held by what the student's code kept: like a worker over its
                # memory limit on the CPU, it is replaced, and only this exercise pays.
                self._collect_output()
                self.worker.stop()
                error = WorkerLost("memory", f"{messages.GPU_MEMORY} (while the grader called {call})")
                self.lost.setdefault(self.exercise, error)
                raise error
            raise StudentError(call, reply["error"])
        return decode(self, reply["value"])

    def close(self) -> None:
        if self.worker is not None:
            self._collect_output()
            if self.worker.alive:
                try:
                    reply = self.worker.request("stats", timeout=5)
                    self.peak_rss_mb = max(self.peak_rss_mb, float(reply["value"]["peak_rss_mb"]))
                except (WorkerLost, KeyError, TypeError):
                    pass
            self.worker.stop()
            self.worker = None

    def _collect_output(self) -> None:
        if self.worker is not None:
            self.output = (self.output + self.worker.output_tail())[-2000:]
            self.output_truncated |= self.worker.output_size() >= MAX_FILE_BYTES


class GradingPlugin:
    """The state of one pytest session that grades a list of submissions."""

    def __init__(
        self,
        submissions: list[Submission],
        options: GradingOptions,
        on_result: Callable[[SubmissionResult], None] | None = None,
        spec: AssignmentSpec | None = None,
        public_only: bool = False,
        exercises: Sequence[str] | None = None,
    ) -> None:
        self.submissions = submissions
        self.public_only = public_only
        self.exercises = tuple(exercises) if exercises is not None else None  # grade only these
        self.fatal_error = ""  # a problem with the checks themselves: no submission can be graded
        self.options = options
        self.on_result = on_result or (lambda result: None)
        self.spec = spec
        self.results: list[SubmissionResult] = []
        self.interrupted = False
        self.checks: dict[str, dict[str, list[CheckResult]]] = defaultdict(lambda: defaultdict(list))

    def spec_for(self, path: Path) -> AssignmentSpec:
        if self.spec is None:
            self.spec = load_assignment(path.parent.parent)  # assignments/<a>/checks/test_x.py
        return self.spec

    # -- hooks ------------------------------------------------------------------------------------------
    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[_PLUGIN_KEY] = self
        # A failed check's report is built by explain_failure; pytest's default long traceback (source of every
        # frame, parsed per failure) would cost ~50 ms a failure and nobody reads it.
        config.option.tbstyle = "native"

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # pytest catches Ctrl-C and ends the session, tearing down fixtures (which finishes the submission in
        # flight with the checks it had run so far). Nothing from here on is a grade. The hook also reports
        # pytest's own stops (collection errors raise Session.Interrupted, a KeyboardInterrupt subclass; and
        # pytest.exit): those are not a person pressing Ctrl-C, and are reported as broken checks instead.
        if excinfo.type is KeyboardInterrupt:
            self.interrupted = True

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.fatal_error = messages.CHECKS_BROKEN.format(where=report.nodeid, problem=report.longreprtext[-3000:])

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if not items:
            return
        # points(n) on a parametrized check is n in total, shared evenly by its cases.
        cases: dict[tuple[Path, str], int] = defaultdict(int)
        for item in items:
            if _submission_index(item) == 0:
                cases[(item.path, _original_name(item))] += 1
        try:
            for item in items:
                item.stash[_POINTS_KEY] = _marker_points(item) / cases[(item.path, _original_name(item))]
        except pytest.UsageError as exc:
            self.fatal_error = str(exc)
            raise
        if self.public_only:
            kept = [item for item in items if item.get_closest_marker("public") is not None]
            config.hook.pytest_deselected(items=[item for item in items if item not in kept])
            items[:] = kept
            return
        if self.exercises is not None:
            return  # a subset of the exercises: their points cannot add up to the assignment's
        spec = self.spec_for(items[0].path)
        first = SUBMISSION_ID.format(index=0)
        totals: dict[str, float] = defaultdict(float)
        for item in items:
            if _submission_id(item) == first:
                totals[exercise_of(item)] += _points(item)
        for exercise in spec.exercises:
            if abs(totals.get(exercise.id, 0.0) - exercise.points) > 1e-6:
                self.fatal_error = messages.POINTS_MISMATCH.format(
                    checks=spec.checks_dir / f"test_{exercise.id}.py",
                    got=totals.get(exercise.id, 0.0),
                    want=exercise.points,
                    exercise=exercise.id,
                )
                raise pytest.UsageError(self.fatal_error)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if call.when == "call" or (call.when == "setup" and report.outcome != "passed"):
            name = self.submissions[_submission_index(item)].name
            self.checks[name][exercise_of(item)].append(check_result(item, call, report))
        return report

    # -- per submission ---------------------------------------------------------------------------------
    def finish(self, session: SubmissionSession) -> SubmissionResult | None:
        session.close()
        if self.interrupted:  # half graded: neither kept nor written; --resume grades it again
            return None
        sub = session.submission
        assert self.spec is not None
        if sub.error:
            result = error_result(self.spec, sub.name, sub.path, sub.error, self.options.device)
        else:
            exercises = []
            for exercise in self.spec.exercises:
                if self.exercises is not None and exercise.id not in self.exercises:
                    continue
                if self.public_only and exercise.id not in self.checks[sub.name]:
                    continue
                missing = [n for n in exercise.symbol_names if n not in session.defined]
                checks = self.checks[sub.name].get(exercise.id, [])
                exercises.append(exercise_result(exercise, checks, missing, session.load_errors))
            result = SubmissionResult(
                submission=sub.name,
                assignment=self.spec.name,
                score=round(sum(e.score for e in exercises), 6),
                max_score=sum(e.max_score for e in exercises),
                device=self.options.device,
                duration_s=round(time.perf_counter() - session.started, 3),
                errors=tuple(session.load_errors),
                exercises=tuple(exercises),
                path=sub.path,
                output=session.output,
                output_truncated=session.output_truncated,
                isolation=session.sandbox,
                worker_peak_mb=session.peak_rss_mb,
            )
        self.checks.pop(sub.name, None)
        self.results.append(result)
        self.on_result(result)
        return result


# -- the plugin module's own hooks (entry point) ------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("autograder", "grading submissions with the checks in this folder")
    group.addoption("--submission", action="append", default=[], metavar="PATH", help="notebook, .py, folder or zip")
    group.addoption("--grading-device", default="auto", help="auto, cpu or cuda (default auto)")
    group.addoption("--grading-timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per call (default 30)")
    group.addoption("--execute", choices=("definitions", "all"), default="definitions")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "points(n): points this check is worth")
    config.addinivalue_line("markers", "public: students see this check when they self-check")
    config.addinivalue_line("markers", "advisory: advice only; reported like any check, worth 0 points")
    paths = config.getoption("submission", default=[])
    if paths and not config.pluginmanager.has_plugin(PLUGIN_NAME):
        options = GradingOptions(
            device=resolve_device(config.getoption("grading_device")),
            timeout=config.getoption("grading_timeout"),
            execute=config.getoption("execute"),
        )
        config.pluginmanager.register(GradingPlugin(load_submissions(paths), options), PLUGIN_NAME)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    plugin = _plugin(metafunc.config)
    if plugin is not None and "submission_session" in metafunc.fixturenames:
        ids = [SUBMISSION_ID.format(index=i) for i in range(len(plugin.submissions))]
        metafunc.parametrize("submission_session", range(len(ids)), indirect=True, scope="session", ids=ids)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    plugin = _plugin(config)
    if plugin is None or not plugin.results:
        return
    terminalreporter.section("autograder scores")
    for result in plugin.results:
        scores = ", ".join(f"{e.id} {e.score:g}/{e.max_score:g} ({e.status})" for e in result.exercises)
        terminalreporter.write_line(f"{result.submission}: {result.score:g}/{result.max_score:g}  [{scores}]")


# -- fixtures ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def submission_session(request: pytest.FixtureRequest) -> Iterator[SubmissionSession]:
    plugin = _require_plugin(request.config)
    session = SubmissionSession(plugin.submissions[request.param], plugin.options)
    yield session
    plugin.finish(session)


@pytest.fixture
def student(request: pytest.FixtureRequest, submission_session: SubmissionSession) -> StudentProxy:
    """The submission's code; fails the check with the student's message when a needed symbol is missing."""
    spec = _require_plugin(request.config).spec_for(request.node.path)
    exercise = spec.exercise(exercise_of(request.node))
    lost = submission_session.lost.get(exercise.id)
    if lost is not None:  # one hang or crash per exercise is enough: its other checks are not run
        raise WorkerLost(lost.kind, messages.EXERCISE_ABANDONED.format(first=lost))
    submission_session.exercise = exercise.id
    submission_session.call_seed = check_seed(request.node)
    submission_session.helpers = helper_sources(spec)
    submission_session.ensure_worker()
    missing = [name for name in exercise.symbol_names if name not in submission_session.defined]
    if missing:
        raise MissingSymbol(missing)
    return StudentProxy(submission_session)


@pytest.fixture
def reference(request: pytest.FixtureRequest) -> ModuleType:
    """The assignment's reference solutions, imported in the scoring process only."""
    path = _require_plugin(request.config).spec_for(request.node.path).reference_path
    return _import_file(f"_reference_{path.stem}", path)


_modules: dict[tuple[Path, float], ModuleType] = {}


def _import_file(name: str, path: Path) -> ModuleType:
    """A module made from a file, once per version of the file (an edited check helper is read again)."""
    key = (path, path.stat().st_mtime)
    if key not in _modules:
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        _modules[key] = module
    return _modules[key]


def helper_sources(spec: AssignmentSpec) -> tuple[tuple[str, str], ...]:
    if spec.helpers_path is None:
        return ()
    return ((spec.helpers_module, spec.helpers_path.read_text(encoding="utf-8")),)


@pytest.fixture
def helpers(request: pytest.FixtureRequest) -> ModuleType:
    """The assignment's helpers module (`helpers` in assignment.toml): models, losses and loops that checks send
    to the worker with `student.put(...)`. Known to pickle by the same name in the scoring process and workers."""
    spec = _require_plugin(request.config).spec_for(request.node.path)
    if spec.helpers_path is None:
        raise pytest.UsageError(messages.NO_HELPERS.format(spec=spec.folder / "assignment.toml"))
    module = _import_file(spec.helpers_module, spec.helpers_path)
    sys.modules[spec.helpers_module] = module  # pickle finds the checks' objects by module name
    return module


@pytest.fixture
def exercise(request: pytest.FixtureRequest) -> ExerciseSpec:
    """The spec of the exercise this check belongs to (points, symbols, what is forbidden)."""
    return _require_plugin(request.config).spec_for(request.node.path).exercise(exercise_of(request.node))


@pytest.fixture
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(_require_plugin(request.config).options.device)


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """The same seed for every submission (fair), a different one for every check."""
    return check_seed(request.node)


def check_seed(item: pytest.Item) -> int:
    return zlib.crc32(check_name(item).encode()) % 2**31


@pytest.fixture
def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- helpers -----------------------------------------------------------------------------------------------
def _plugin(config: pytest.Config) -> GradingPlugin | None:
    return config.stash.get(_PLUGIN_KEY, None)


def _require_plugin(config: pytest.Config) -> GradingPlugin:
    plugin = _plugin(config)
    if plugin is None:
        raise pytest.UsageError(messages.NO_SUBMISSION)
    return plugin


def exercise_of(item: pytest.Item) -> str:
    return item.path.stem.removeprefix("test_")


def _submission_index(item: pytest.Item) -> int:
    return int(item.callspec.params["submission_session"])  # type: ignore[attr-defined]


def _submission_id(item: pytest.Item) -> str:
    return SUBMISSION_ID.format(index=_submission_index(item))


def _original_name(item: pytest.Item) -> str:
    return str(getattr(item, "originalname", item.name))


def _points(item: pytest.Item) -> float:
    return item.stash.get(_POINTS_KEY, None) or _marker_points(item)


def _marker_points(item: pytest.Item) -> float:
    marker = item.get_closest_marker("points")
    if _is_advisory(item):
        if marker is not None:
            raise pytest.UsageError(messages.ADVISORY_POINTS.format(check=item.nodeid))
        return 0.0
    if marker is None or not marker.args:
        raise pytest.UsageError(messages.NO_POINTS.format(check=item.nodeid))
    return float(marker.args[0])


def check_name(item: pytest.Item) -> str:
    """The check's name without `test_` and without the submission's id: the same for every submission."""
    name = getattr(item, "originalname", item.name).removeprefix("test_")
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return name
    ids = callspec.id.split("-")
    own = SUBMISSION_ID.format(index=callspec.params.get("submission_session", -1))
    if own in ids:
        ids.remove(own)
    return f"{name}[{'-'.join(ids)}]" if ids else name


def _is_advisory(item: pytest.Item) -> bool:
    return item.get_closest_marker("advisory") is not None


def check_result(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> CheckResult:
    points = _points(item)
    hidden = item.get_closest_marker("public") is None
    name = check_name(item)
    advisory = _is_advisory(item)
    if report.passed:
        return CheckResult(name, points, points, True, hidden, advisory=advisory)
    if report.skipped:
        return CheckResult(name, 0.0, points, False, hidden, messages.CHECK_SKIPPED, "failed", advisory=advisory)
    message, outcome, detail = explain_failure(call.excinfo)
    if advisory and message:
        message = f"{messages.ADVICE_PREFIX} {message}"
    return CheckResult(name, 0.0, points, False, hidden, message, outcome, detail, advisory)


def explain_failure(excinfo: pytest.ExceptionInfo[BaseException] | None) -> tuple[str, str, str]:
    """(student message, outcome, instructor-only detail) for a failed check; never a grader traceback."""
    if excinfo is None:
        return messages.INTERNAL_ERROR, "error", ""
    exc = excinfo.value
    if isinstance(exc, MissingSymbol):
        return str(exc), "missing", ""
    if isinstance(exc, StudentError):
        return str(exc), "failed", ""
    if isinstance(exc, WorkerLost):
        return str(exc), "timeout" if exc.kind in ("timeout", "budget") else "error", exc.detail
    if isinstance(exc, SubmissionUnreadable):
        return str(exc), "error", ""
    if isinstance(exc, AssertionError):
        text = str(exc)
        # pytest's assertion rewriting appends "assert <expression>": grader code the student need not see.
        message = text.split("\nassert ")[0].strip() if not text.startswith("assert ") else ""
        return message or messages.CHECK_FAILED, "failed", text
    return messages.INTERNAL_ERROR, "error", "".join(traceback.format_exception(exc))
