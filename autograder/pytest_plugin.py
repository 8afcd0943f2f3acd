"""pytest plugin that turns `assignments/<a>/checks/test_<exercise>.py` into a grader: its hooks, the fixtures
checks receive, and each check's result.

Loaded through the `pytest11` entry point, so `pytest assignments/mlp/checks --submission nb.ipynb` works on
its own; the native grader registers a `GradingPlugin` itself. Checks receive the fixtures `student` (calls run
in the submission's worker, see session.py), `reference`, `helpers`, `exercise`, `device`, `seed` and `gen`;
markers `points(n)`, `public` and `advisory` give points and visibility. Without `--submission` (and outside the
grader) the plugin does nothing. The options are in options.py, a submission's worker in session.py.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
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

from autograder import devices, messages, phases, signatures
from autograder.options import (
    DEFAULT_TIMEOUT,
    DEVICE_HELP,
    EXECUTE_CHOICES,
    EXECUTE_HELP,
    TIMEOUT_HELP,
    GradingOptions,
)
from autograder.results import (
    CheckResult,
    ExerciseResult,
    SubmissionResult,
    error_result,
    exercise_result,
    not_graded_result,
)
from autograder.runner import (
    ForkServerFailed,
    MissingSymbol,
    StudentError,
    StudentProxy,
    SubmissionUnreadable,
    Worker,
    WorkerLost,
)
from autograder.session import GraderFault, LoadProblem, SubmissionGrading, WorkerFactory
from autograder.spec import AssignmentSpec, ExerciseSpec, load_assignment
from autograder.submission import Submission, load_submissions, parse_cell

PLUGIN_NAME = "autograder-grading"
_PLUGIN_KEY = pytest.StashKey["GradingPlugin"]()
_POINTS_KEY = pytest.StashKey[float]()
SUBMISSION_ID = "submission{index}"


# -- checks and their results ---------------------------------------------------------------------------------
def exercise_of(item: pytest.Item) -> str:
    return item.path.stem.removeprefix("test_")


def _submission_index(item: pytest.Item) -> int:
    return int(item.callspec.params["graded_submission"])  # type: ignore[attr-defined]


def _submission_id(item: pytest.Item) -> str:
    return SUBMISSION_ID.format(index=_submission_index(item))


def _original_name(item: pytest.Item) -> str:
    return str(getattr(item, "originalname", item.name))


def _is_advisory(item: pytest.Item) -> bool:
    return item.get_closest_marker("advisory") is not None


def _marker_points(item: pytest.Item) -> float:
    marker = item.get_closest_marker("points")
    if _is_advisory(item):
        if marker is not None:
            raise pytest.UsageError(messages.ADVISORY_POINTS.format(check=item.nodeid))
        return 0.0
    if marker is None or not marker.args:
        raise pytest.UsageError(messages.NO_POINTS.format(check=item.nodeid))
    return float(marker.args[0])


def _points(item: pytest.Item) -> float:
    return item.stash.get(_POINTS_KEY, None) or _marker_points(item)


def check_name(item: pytest.Item) -> str:
    """The check's name without `test_` and without the submission's id: the same for every submission."""
    name = getattr(item, "originalname", item.name).removeprefix("test_")
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return name
    ids = callspec.id.split("-")
    own = SUBMISSION_ID.format(index=callspec.params.get("graded_submission", -1))
    if own in ids:
        ids.remove(own)
    return f"{name}[{'-'.join(ids)}]" if ids else name


def check_seed(item: pytest.Item) -> int:
    return zlib.crc32(check_name(item).encode()) % 2**31


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
    if isinstance(exc, (SubmissionUnreadable, GraderFault)):
        return str(exc), "error", ""
    if isinstance(exc, AssertionError):
        text = str(exc)
        # pytest's assertion rewriting appends "assert <expression>": grader code the student need not see.
        message = text.split("\nassert ")[0].strip() if not text.startswith("assert ") else ""
        return message or messages.CHECK_FAILED, "failed", text
    return messages.INTERNAL_ERROR, "error", "".join(traceback.format_exception(exc))


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


# -- the assignment's files --------------------------------------------------------------------------------
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
        worker_factory: WorkerFactory = Worker,
    ) -> None:
        self.submissions = submissions
        self.worker_factory = worker_factory  # makes each submission's workers (a benchmark may run code in-process)
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
        # frame, parsed per failure) would cost ~50 ms a failure and nobody reads it. "value" (the exception's
        # text, as for pytest.fail(pytrace=False)) also spares the native style's formatted stack.
        config.option.tbstyle = "value"

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

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        phases.mark("collected")

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
    def finish(self, session: SubmissionGrading) -> SubmissionResult | None:
        session.close()
        if self.interrupted or self.fatal_error:  # half graded: neither kept nor written; --resume grades it again
            return None
        sub = session.submission
        assert self.spec is not None
        if sub.error:
            result = error_result(self.spec, sub.name, sub.path, sub.error, self.options.device)
        elif session.fault:  # the grader's fault, not the student's: written as not graded
            result = not_graded_result(self.spec, sub.name, sub.path, session.fault, self.options.device)
        else:
            exercises = []
            problems = [p.by_text(sub.cells) for p in session.load_problems]
            for exercise in self.spec.exercises:
                if self.exercises is not None and exercise.id not in self.exercises:
                    continue
                if self.public_only and exercise.id not in self.checks[sub.name]:
                    continue
                missing = [n for n in exercise.symbol_names if n not in session.defined]
                checks = self.checks[sub.name].get(exercise.id, [])
                failed = any(p.names & set(missing) for p in problems)
                exercises.append(exercise_result(exercise, checks, missing, failed))
            student, notes = split_load_problems(problems, exercises, self.spec)
            several = defined_several_times(sub, self.spec, exercises)
            student, notes = (*student, *several[0]), (*notes, *several[1])
            result = SubmissionResult(
                submission=sub.name,
                assignment=self.spec.name,
                score=round(sum(e.score for e in exercises), 6),
                max_score=sum(e.max_score for e in exercises),
                device=self.options.device,
                duration_s=round(time.perf_counter() - session.started, 3),
                errors=(*session.skip_errors, *student),
                notes=notes,
                missing_modules=tuple(dict.fromkeys(p.module for p in problems if p.module)),
                exercises=tuple(exercises),
                path=sub.path,
                output=session.output,
                output_truncated=session.output_truncated,
                isolation=session.sandbox,
                walls=session.walls,
                worker_peak_mb=session.peak_rss_mb,
            )
        self.checks.pop(sub.name, None)
        self.results.append(result)
        self.on_result(result)
        return result


def split_load_problems(
    problems: Sequence[LoadProblem], exercises: Sequence[ExerciseResult], spec: AssignmentSpec
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(for the student, for the instructor): a load problem concerns the student when it could explain a lost
    point: it would have defined a symbol of an exercise that lost points, or a failed check of such an exercise
    names what it would have bound (`name 'np' is not defined`, `No module named 'scipy'`). The rest (a course's install
    cell, a widget's layout, a decorator defined around) is a note for the instructor."""
    losing = {e.id for e in exercises if e.score < e.max_score}
    symbols = {name for e in spec.exercises if e.id in losing for name in e.symbol_names}
    lost = [t.message for e in exercises if e.id in losing for t in e.tests if not t.passed]
    student: list[str] = []
    notes: list[str] = []
    for problem in problems:
        concerns = not problem.undecorated and (
            bool(problem.names & symbols)
            or any(problem.explains(message) for message in lost)
            or (problem.unparsed and bool(losing) and not problem.names)  # what it held is unknown
        )
        (student if concerns else notes).append(problem.text)
    return tuple(student), tuple(notes)


def defined_several_times(
    submission: Submission, spec: AssignmentSpec, exercises: Sequence[ExerciseResult]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(for the student, for the instructor): a symbol of an exercise defined at the top of several cells (a
    tutorial's own versions further down, a bonus section): the last definition is the one graded. Said to the
    student where that exercise lost points, else noted for the instructor."""
    cells_defining: dict[str, list[int]] = {}
    for cell in submission.cells:
        tree = parse_cell(cell.source)
        names = (
            [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
            if tree is not None
            else []
        )
        for name in dict.fromkeys(names):
            cells_defining.setdefault(name, []).append(cell.index)
    losing = {e.id for e in exercises if e.score < e.max_score}
    student: list[str] = []
    notes: list[str] = []
    for exercise in spec.exercises:
        for name in exercise.symbol_names:
            cells = cells_defining.get(name, [])
            if len(cells) > 1:
                text = messages.DEFINED_SEVERAL.format(
                    name=name, n=len(cells), cells=", ".join(map(str, cells)), last=cells[-1]
                )
                (student if exercise.id in losing else notes).append(text)
    return tuple(student), tuple(notes)


def _plugin(config: pytest.Config) -> GradingPlugin | None:
    return config.stash.get(_PLUGIN_KEY, None)


def _require_plugin(config: pytest.Config) -> GradingPlugin:
    plugin = _plugin(config)
    if plugin is None:
        raise pytest.UsageError(messages.NO_SUBMISSION)
    return plugin


# -- the plugin module's own hooks (entry point) ------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("autograder", "grading submissions with the checks in this folder")
    group.addoption("--submission", action="append", default=[], metavar="PATH", help="notebook, .py, folder or zip")
    group.addoption("--grading-device", default="auto", help=DEVICE_HELP)
    group.addoption("--grading-timeout", type=float, default=DEFAULT_TIMEOUT, help=TIMEOUT_HELP)
    group.addoption("--execute", choices=EXECUTE_CHOICES, default=EXECUTE_CHOICES[0], help=EXECUTE_HELP)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "points(n): points this check is worth")
    config.addinivalue_line("markers", "public: students see this check when they self-check")
    config.addinivalue_line("markers", "advisory: advice only; reported like any check, worth 0 points")
    paths = config.getoption("submission", default=[])
    if paths and not config.pluginmanager.has_plugin(PLUGIN_NAME):
        options = GradingOptions(
            device=devices.resolve(config.getoption("grading_device")),
            timeout=config.getoption("grading_timeout"),
            execute=config.getoption("execute"),
        )
        config.pluginmanager.register(GradingPlugin(load_submissions(paths), options), PLUGIN_NAME)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    plugin = _plugin(metafunc.config)
    if plugin is not None and "graded_submission" in metafunc.fixturenames:
        ids = [SUBMISSION_ID.format(index=i) for i in range(len(plugin.submissions))]
        metafunc.parametrize("graded_submission", range(len(ids)), indirect=True, scope="session", ids=ids)


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
def graded_submission(request: pytest.FixtureRequest) -> Iterator[SubmissionGrading]:
    plugin = _require_plugin(request.config)
    session = SubmissionGrading(plugin.submissions[request.param], plugin.options, plugin.worker_factory)
    yield session
    plugin.finish(session)


@dataclass(frozen=True)
class CheckContext:
    """What the fixtures of one check share: made once per check from pytest's `request`. (Each fixture that asks
    for `request` itself costs pytest a new fixture definition per check: ~9 per check before this.)"""

    plugin: GradingPlugin
    spec: AssignmentSpec
    exercise: ExerciseSpec
    seed: int


@pytest.fixture
def _check_context(request: pytest.FixtureRequest) -> CheckContext:
    plugin = _require_plugin(request.config)
    spec = plugin.spec_for(request.node.path)
    return CheckContext(plugin, spec, spec.exercise(exercise_of(request.node)), check_seed(request.node))


@pytest.fixture
def student(_check_context: CheckContext, graded_submission: SubmissionGrading) -> StudentProxy:
    """The submission's code; fails the check with the student's message when a needed symbol is missing."""
    exercise = _check_context.exercise
    lost = graded_submission.lost.get(exercise.id)
    if lost is not None:  # one hang or crash per exercise is enough: its other checks are not run
        raise WorkerLost(lost.kind, messages.EXERCISE_ABANDONED.format(first=lost))
    graded_submission.exercise = exercise.id
    graded_submission.call_seed = _check_context.seed
    graded_submission.watch = exercise.forbidden
    graded_submission.helpers = helper_sources(_check_context.spec)
    try:
        graded_submission.ensure_worker()
    except ForkServerFailed as exc:  # no worker can start: no submission can be graded, so stop here
        _check_context.plugin.fatal_error = str(exc)
        pytest.exit(str(exc), returncode=pytest.ExitCode.INTERNAL_ERROR)
    missing = [name for name in exercise.symbol_names if name not in graded_submission.defined]
    if missing:
        raise MissingSymbol(missing)
    proxy = StudentProxy(graded_submission)
    if exercise.id not in graded_submission.signature_problems:
        graded_submission.signature_problems[exercise.id] = _signature_problem(_check_context, proxy)
    return proxy


@functools.lru_cache(maxsize=16)
def _reference_signatures(path: Path, modified: int) -> dict[str, inspect.Signature]:
    return signatures.reference_signatures(path)


def _signature_problem(context: CheckContext, proxy: StudentProxy) -> tuple[str, str]:
    """Once per exercise, before its first call: (the symbol, why the student's cannot be called as the
    reference is, both signatures shown), or ("", ""). The checks still run; a call that fails for it says this
    instead of the TypeError."""
    path = context.spec.reference_path
    expected_signatures = _reference_signatures(path, path.stat().st_mtime_ns)
    for name in context.exercise.symbol_names:
        expected = expected_signatures.get(name)
        if expected is None:
            continue
        try:
            described = getattr(proxy, name).describe("parameters")
        except StudentError:  # its signature could not even be read: the checks' calls will say what happens
            continue
        got = signatures.from_description(described.get("parameters"))
        problem = signatures.mismatch(expected, got) if got is not None else None
        if problem and got is not None:
            return name, messages.SIGNATURE_MISMATCH.format(
                name=name, got=signatures.shown(got), expected=signatures.shown(expected), problem=problem
            )
    return "", ""


@pytest.fixture
def reference(_check_context: CheckContext) -> ModuleType:
    """The assignment's reference solutions, imported in the scoring process only."""
    path = _check_context.spec.reference_path
    return _import_file(f"_reference_{path.stem}", path)


@pytest.fixture
def helpers(_check_context: CheckContext) -> ModuleType:
    """The assignment's helpers module (`helpers` in assignment.toml): models, losses and loops that checks send
    to the worker with `student.put(...)`. Known to pickle by the same name in the scoring process and workers."""
    spec = _check_context.spec
    if spec.helpers_path is None:
        raise pytest.UsageError(messages.NO_HELPERS.format(spec=spec.folder / "assignment.toml"))
    module = _import_file(spec.helpers_module, spec.helpers_path)
    sys.modules[spec.helpers_module] = module  # pickle finds the checks' objects by module name
    return module


@pytest.fixture
def exercise(_check_context: CheckContext) -> ExerciseSpec:
    """The spec of the exercise this check belongs to (points, symbols, what is forbidden)."""
    return _check_context.exercise


@pytest.fixture
def device(_check_context: CheckContext) -> torch.device:
    return torch.device(_check_context.plugin.options.device)


@pytest.fixture
def seed(_check_context: CheckContext) -> int:
    """The same seed for every submission (fair), a different one for every check."""
    return _check_context.seed


@pytest.fixture
def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
