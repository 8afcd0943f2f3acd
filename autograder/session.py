"""One submission being graded: its worker's life (started, restarted after a loss, stopped), the submission's time
budget, and what its code printed. The worker comes from a factory, the real `Worker` unless a caller (a benchmark)
passes another."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from autograder import messages, phases
from autograder.options import GradingOptions, worker_config
from autograder.runner import (
    MAX_FILE_BYTES,
    ForkServerFailed,
    ScoringEnded,
    StudentError,
    SubmissionUnreadable,
    Worker,
    WorkerConfig,
    WorkerLost,
    decode,
)
from autograder.signatures import is_binding_error
from autograder.submission import Cell, Submission

MAX_SKIPPED_STATEMENTS = 5  # statements that hang or crash while loading, before the notebook counts as unloadable
MAX_RESTARTS = 20  # a backstop; normally an exercise that loses the worker is abandoned after one loss
_DEFINITION_LINE = re.compile(r"^(?:async\s+def|def|class)\s+([A-Za-z_]\w*)", re.MULTILINE)
SETUP_TRIES = 2  # a worker that cannot start is the grader's problem: tried again once, then not graded


class SignatureMismatch(StudentError):
    """A call the exercise makes does not fit the student's parameters; the message shows both signatures."""

    def __init__(self, call: str, error: dict[str, Any], message: str) -> None:
        super().__init__(call, error)
        self.args = (message,)


class GraderFault(Exception):
    """The grader could not grade this submission by a fault of its own (its worker could not start, twice):
    the submission is written as not graded, never as the student's zero."""


class StudentRunner(Protocol):
    """What a session needs of a worker: `proxy.Worker`, or a stand-in such as bench.floor's in-process one."""

    stopped_at: tuple[int, int, int] | None  # (cell, statement, line) it was loading when it stopped

    @property
    def alive(self) -> bool: ...

    def request(self, op: str, *args: Any, timeout: float) -> Any: ...

    def stop(self) -> None: ...

    def output_tail(self, limit: int = 2000) -> str: ...

    def output_size(self) -> int: ...


WorkerFactory = Callable[[WorkerConfig], StudentRunner]


@dataclass(frozen=True)
class LoadProblem:
    """A statement that failed while the notebook loaded: its message, the names it would have bound, the module
    it could not import; `undecorated`: a def or class defined all the same, without its failing decorators."""

    text: str
    names: frozenset[str]
    module: str = ""
    undecorated: bool = False
    unparsed: bool = False  # a cell Python could not parse: its names are its def and class lines (`by_text`)
    cell: int = 0

    @classmethod
    def from_reply(cls, error: Any) -> LoadProblem | None:
        """From the worker's reply, which is hostile: anything of the wrong shape is left out of the names."""
        if not isinstance(error, dict):
            return None
        listed = error.get("names")
        names = frozenset(n for n in listed if isinstance(n, str) and n.isidentifier()) if isinstance(
            listed, list) else frozenset()  # fmt: skip
        module = error.get("module")
        module = module if isinstance(module, str) and module.isidentifier() else ""
        undecorated = error.get("undecorated") is True
        text = messages.load_error(error) + (f" {messages.DEFINED_UNDECORATED}" if undecorated else "")
        cell = error.get("cell")
        return cls(text, names, module, undecorated, error.get("unparsed") is True,
                   cell if isinstance(cell, int) else 0)  # fmt: skip

    def by_text(self, cells: Sequence[Cell]) -> LoadProblem:
        """An unparsed cell's problem with the names its unindented def and class lines would have defined."""
        if not self.unparsed:
            return self
        source = next((c.source for c in cells if c.index == self.cell), "")
        return dataclasses.replace(self, names=self.names | set(_DEFINITION_LINE.findall(source)))

    def explains(self, message: str) -> bool:
        """Whether a failed check's message could come from this problem: one of its names not defined, its
        module not found."""
        if self.module and f"No module named '{self.module}" in message:
            return True
        return any(f"'{name}' is not defined" in message for name in self.names)


class SubmissionGrading:
    """One submission being graded: its worker (restarted after a loss) and what its code defined."""

    def __init__(self, submission: Submission, options: GradingOptions, worker_factory: WorkerFactory = Worker) -> None:
        self.submission = submission
        self.options = options
        self.worker_factory = worker_factory
        self.worker: StudentRunner | None = None
        self.defined: set[str] = set()
        self.load_errors: list[str] = []
        self.fatal: WorkerLost | None = None  # set once the code cannot be loaded at all
        self.fault = ""  # set once the grader could not start a worker for it (GraderFault)
        self.setup_failures: list[str] = []
        self.restarts = 0
        self.exercise = ""  # the exercise whose check is running
        self.call_seed = 0  # seeds every call into student code during the running check
        self.watch: tuple[str, ...] = ()  # the forbidden functions of the exercise being checked
        self.forbidden_seen: dict[str, list[str]] = {}  # by exercise: forbidden functions its calls reached
        self.lost: dict[str, WorkerLost] = {}  # exercises abandoned after their check lost the worker
        self.started = time.perf_counter()
        self.output = ""
        self.output_truncated = False  # the worker printed past the cap, and the rest was dropped
        self.sandbox = ""
        self.walls: dict[str, Any] = {}
        self.skipped: list[tuple[int, int, int]] = []  # (cell, statement, line) left out after they stopped a worker
        self.skip_errors: list[str] = []
        self.load_problems: list[LoadProblem] = []  # what failed while the notebook loaded, with what it binds
        # by exercise: (symbol, why it cannot be called as the exercise asks), ("", "") where it can
        self.signature_problems: dict[str, tuple[str, str]] = {}
        self.signature_told: set[str] = set()
        self.peak_rss_mb = 0.0  # of the last worker, read when the submission is done
        self.helpers: tuple[tuple[str, str], ...] = ()  # the assignment's helpers module, for workers to rebuild

    def ensure_worker(self) -> None:
        if self.submission.error:
            raise SubmissionUnreadable(self.submission.error)
        if self.fault:
            raise GraderFault(self.fault)
        if self.fatal is not None:
            raise WorkerLost(self.fatal.kind, self.fatal.args[0], self.fatal.detail)
        if self.worker is not None and self.worker.alive:
            return
        if self.worker is not None:
            self.restarts += 1
            if self.restarts > MAX_RESTARTS:
                self.fatal = WorkerLost("crash", messages.TOO_MANY_RESTARTS.format(n=MAX_RESTARTS))
                raise self.fatal
        cells = [(cell.index, cell.source) for cell in self.submission.cells]
        config = worker_config(self.options, self.helpers)
        while True:
            try:
                self.worker = self.worker_factory(config)
            except (ForkServerFailed, ScoringEnded):
                raise  # no worker can start in this process at all: the batch stops
            except Exception as exc:  # e.g. no room for its scratch folder, a daemonic Dask worker
                self._could_not_start(f"{type(exc).__name__}: {exc}")
                continue
            try:
                skip = tuple((cell, number) for cell, number, _ in self.skipped)
                reply = self.worker.request("load", cells, self.options.execute, skip, timeout=self._time_left())
                break
            except WorkerLost as lost:
                if lost.kind == "setup":  # it died before it could run a line of the student's
                    self._could_not_start(lost.detail or str(lost))
                    continue
                where = self.worker.stopped_at
                self._collect_output()
                if lost.kind == "budget" or where is None or len(self.skipped) >= MAX_SKIPPED_STATEMENTS:
                    self.fatal = WorkerLost(lost.kind, messages.WHILE_LOADING + " " + str(lost), lost.detail)
                    raise self.fatal from None
                # One statement hung or crashed the worker while the notebook was loading: leave it out, so
                # that only what it defines is lost, and tell the student which one it was.
                self.skipped.append(where)
                self.skip_errors.append(messages.LOAD_STOPPED.format(cell=where[0], line=where[2], problem=lost))
        phases.mark("worker loaded")
        if not reply["ok"]:
            self.fatal = WorkerLost("crash", messages.student_raised("your notebook", reply["error"]))
            raise self.fatal
        loaded = reply["value"]
        self.sandbox = loaded.get("sandbox", "")
        self.walls = loaded.get("walls", {})
        self.defined = set(loaded["defined"])
        if self.restarts == 0:
            self.load_problems = [p for p in map(LoadProblem.from_reply, loaded["errors"]) if p is not None]
            self.load_errors = [*self.skip_errors, *(p.text for p in self.load_problems)]

    def _could_not_start(self, problem: str) -> None:
        """A worker failed to start: try once more; the second time, the submission is not graded."""
        self.setup_failures.append(problem.strip().splitlines()[-1][:500] if problem.strip() else "unknown")
        if len(self.setup_failures) >= SETUP_TRIES:
            self.fault = messages.GRADER_FAULT.format(problem=self.setup_failures[-1])
            raise GraderFault(self.fault)

    def _time_left(self) -> float:
        """The per-call timeout, or less when the submission's time budget is nearly spent."""
        if self.options.budget is None:
            return self.options.timeout
        left = self.options.budget - (time.perf_counter() - self.started)
        if left <= 0:
            self.fatal = WorkerLost("budget", messages.BUDGET.format(seconds=f"{self.options.budget:g} s"))
            raise self.fatal
        return min(self.options.timeout, left)

    def ask(self, op: str, *args: Any, call: str | Callable[[], str]) -> Any:
        """One request; `call` describes it in the student's terms (or makes that description: only a failure
        needs it, and describing every argument of every call costs more than many calls do)."""
        assert self.worker is not None
        limit = self._time_left()
        try:
            reply = self.worker.request(op, *args, timeout=limit)
        except WorkerLost as lost:
            call = call() if callable(call) else call
            self._collect_output()
            if lost.kind == "timeout" and limit < self.options.timeout:
                assert self.options.budget is not None
                self.fatal = WorkerLost("budget", messages.BUDGET.format(seconds=f"{self.options.budget:g} s"))
                lost = self.fatal
            error = WorkerLost(lost.kind, f"{lost} (while the grader called {call})", lost.detail)
            self.lost.setdefault(self.exercise, error)
            raise error from None
        self._note_forbidden(reply.get("forbidden"))
        if not reply["ok"]:
            call = call() if callable(call) else call
            if reply["error"].get("type") == "OutOfMemoryError":
                # The worker's GPU memory may stay held by what the student's code kept: like a worker over its
                # memory limit on the CPU, it is replaced, and only this exercise pays.
                self._collect_output()
                self.worker.stop()
                error = WorkerLost("memory", f"{messages.GPU_MEMORY} (while the grader called {call})")
                self.lost.setdefault(self.exercise, error)
                raise error
            error = reply["error"]
            name, problem = self.signature_problems.get(self.exercise, ("", ""))
            message = str(error.get("message", ""))
            if problem and error.get("type") == "TypeError" and not error.get("line") and is_binding_error(message):
                # The call did not fit the student's parameters: say so once per exercise, with both signatures.
                first = self.exercise not in self.signature_told
                self.signature_told.add(self.exercise)
                raise SignatureMismatch(call, error, problem if first else messages.SIGNATURE_AGAIN.format(name=name))
            raise StudentError(call, error)
        return decode(self, reply["value"])

    def _note_forbidden(self, names: Any) -> None:
        if isinstance(names, list) and names:
            seen = self.forbidden_seen.setdefault(self.exercise, [])
            seen += [n for n in names if isinstance(n, str) and n not in seen][:20]

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
