"""Run a tutorial's solution code and record every call to its exercise symbols (for `autograder new --from`).

    python -m autograder.tutorial_record IN.json OUT.json

IN names the cells to run in order and the exercise symbols; OUT gets each call made from the tutorial's own code
(not from inside another exercise's call) with its arguments as data, and a note for every cell that failed or ran
past its time limit and every call whose arguments cannot be recorded. It runs in its own process, started by
autograder.tutorial with a time limit; its arguments are copied before the call (a call may change them).
"""

from __future__ import annotations

import ast
import base64
import json
import signal
import sys
from typing import Any

MAX_CALL_BYTES = 2_000_000  # a call whose arguments take more is left out (a note says so)
MAX_PER_SYMBOL = 20  # calls recorded per symbol at most (a training loop calls a loss thousands of times)


class Unrecordable(ValueError):
    pass


class Recorder:
    def __init__(self, exercises: dict[str, str]) -> None:
        self.exercises = exercises  # name -> "function" | "class"
        self.calls: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.depth = 0  # > 0 while an exercise's method runs (a forward called by another method is not recorded)
        self.cells: list[str] = []
        self.skip_cells: set[int] = set()  # the exercise templates' cells: their calls are of the unfilled code
        self.counts: dict[str, int] = {}

    # -- values -------------------------------------------------------------------------------------------------
    def encode(self, value: Any) -> Any:
        import torch

        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous()
            if tensor.dtype in (torch.bfloat16,) or tensor.is_complex() or tensor.is_sparse:
                raise Unrecordable(f"a {tensor.dtype} tensor")
            data = base64.b64encode(tensor.numpy().tobytes()).decode()
            return {"t": "tensor", "dtype": str(tensor.dtype).removeprefix("torch."), "shape": list(tensor.shape),
                    "data": data}  # fmt: skip
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return value if value == value and abs(value) != float("inf") else {"t": "float", "repr": repr(value)}
        if isinstance(value, (list, tuple)):
            return {"t": type(value).__name__, "items": [self.encode(v) for v in value]}
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"t": "dict", "items": [[k, self.encode(v)] for k, v in value.items()]}
        if isinstance(value, torch.nn.Module) and type(value).__module__.startswith("torch.nn"):
            name = type(value).__name__
            if repr(value) == f"{name}()" and not list(value.parameters()) and not list(value.buffers()):
                return {"t": "torch_module", "name": name}
            raise Unrecordable(f"torch.nn.{name} with settings ({repr(value)[:60]})")
        ctor = getattr(value, "_autograder_ctor", None)
        if type(value).__module__ == "__main__" and ctor is not None:
            state = None
            if isinstance(value, torch.nn.Module):
                state = self.encode({k: v for k, v in value.state_dict().items()})
            return {"t": "object", "class": type(value).__name__, "exercise": type(value).__name__ in self.exercises,
                    "ctor": ctor, "state": state}  # fmt: skip
        raise Unrecordable(f"a {type(value).__module__}.{type(value).__qualname__}")

    # -- where a call comes from --------------------------------------------------------------------------------
    def site(self) -> tuple[int, str] | None:
        """(cell number, the line) of the tutorial code that made the call, directly or through its other
        functions; None if not the tutorial's code, made from a template cell, or past the cap for a symbol."""
        frame = sys._getframe(2)
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith("<cell "):
                number = int(name[6:-1])
                if number in self.skip_cells:
                    return None
                lines = self.cells[number].splitlines()
                line = lines[frame.f_lineno - 1].strip() if 0 < frame.f_lineno <= len(lines) else ""
                return number, line
            frame = frame.f_back  # type: ignore[assignment]
        return None

    def snapshot(self, symbol: str, args: tuple[Any, ...], kwargs: dict[str, Any], where: str) -> Any:
        try:
            encoded = self.encode({"args": list(args), "kwargs": kwargs})
        except Unrecordable as why:
            self.notes.append(f"{symbol}: a call in {where} was left out: its arguments hold {why}")
            return None
        if len(json.dumps(encoded)) > MAX_CALL_BYTES:
            self.notes.append(f"{symbol}: a call in {where} was left out: its arguments take over 2 MB")
            return None
        return encoded

    # -- wrapping the exercise symbols --------------------------------------------------------------------------
    def wrap_function(self, name: str, function: Any) -> Any:
        recorder = self

        def recorded(*args: Any, **kwargs: Any) -> Any:
            if recorder.counts.get(name, 0) < MAX_PER_SYMBOL:
                site = recorder.site()
                if site is not None:
                    recorder.counts[name] = recorder.counts.get(name, 0) + 1
                    where = f"cell {site[0]}"
                    data = recorder.snapshot(name, args, kwargs, where)
                    if data is not None:
                        recorder.calls.append({"symbol": name, "kind": "function", "call": data, "cell": site[0],
                                               "line": site[1]})  # fmt: skip
            return function(*args, **kwargs)

        recorded.__wrapped__ = function  # type: ignore[attr-defined]
        recorded.__name__ = function.__name__
        return recorded

    def watch_class(self, cls: type) -> None:
        """Every notebook class remembers its constructor's arguments (to rebuild an instance passed to an
        exercise); an exercise class also records its constructions and each instance's first forward call."""
        if "_autograder_watched" in cls.__dict__:
            return
        recorder, init = self, getattr(cls, "__init__")  # noqa: B009 - the class's (maybe inherited) __init__
        exercise = cls.__name__ in self.exercises

        def __init__(obj: Any, *args: Any, **kwargs: Any) -> None:
            outermost = recorder.depth == 0 and recorder.counts.get(cls.__name__, 0) < MAX_PER_SYMBOL
            site = recorder.site() if outermost and exercise else None
            if site is not None:
                recorder.counts[cls.__name__] = recorder.counts.get(cls.__name__, 0) + 1
            try:
                ctor = recorder.encode({"args": list(args), "kwargs": kwargs})
            except Unrecordable as why:
                ctor = None
                if site is not None:
                    recorder.notes.append(f"{cls.__name__}: a construction in cell {site[0]} was left out: its "
                                          f"arguments hold {why}")  # fmt: skip
            recorder.depth += exercise
            try:
                init(obj, *args, **kwargs)
            finally:
                recorder.depth -= exercise
            if ctor is not None:
                object.__setattr__(obj, "_autograder_ctor", ctor)
                if site is not None:
                    call = {"symbol": cls.__name__, "kind": "class", "call": ctor, "cell": site[0], "line": site[1],
                            "forward": None}  # fmt: skip
                    recorder.calls.append(call)
                    object.__setattr__(obj, "_autograder_call", call)

        cls.__init__ = __init__  # type: ignore[misc]
        if exercise and hasattr(cls, "forward"):
            forward = cls.forward

            def recorded_forward(obj: Any, *args: Any, **kwargs: Any) -> Any:
                call = obj.__dict__.get("_autograder_call")
                if call is not None and call["forward"] is None and recorder.depth == 0:
                    site = recorder.site()
                    if site is not None:
                        call["forward"] = recorder.snapshot(cls.__name__, args, kwargs, f"cell {site[0]}") or False
                        call["forward_line"] = site[1]
                recorder.depth += 1
                try:
                    return forward(obj, *args, **kwargs)
                finally:
                    recorder.depth -= 1

            cls.forward = recorded_forward  # type: ignore[attr-defined]
        cls._autograder_watched = True  # type: ignore[attr-defined]

    def defined(self, namespace: dict[str, Any], name: str) -> None:
        """Right after a top-level def or class of a cell (a solution cell defines and calls in one cell)."""
        value = namespace.get(name)
        if isinstance(value, type) and value.__module__ == "__main__":
            self.watch_class(value)
        elif self.exercises.get(name) == "function" and callable(value) and not hasattr(value, "__wrapped__"):
            namespace[name] = self.wrap_function(name, value)


def bound_names(statement: ast.stmt) -> list[str]:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [statement.name]
    return []


class CellTimeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise CellTimeout()


def run(cells: list[str], exercises: dict[str, str], cell_timeout: int, skip: list[int]) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    recorder = Recorder(exercises)
    recorder.cells = cells
    recorder.skip_cells = set(skip)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for number, source in enumerate(cells):
        try:
            tree = ast.parse(source, f"<cell {number}>")
        except SyntaxError as error:
            recorder.notes.append(f"cell {number} was not run: {error.msg} (line {error.lineno})")
            continue
        # Statement by statement: a failing line (a tutorial's tracking call, a download) does not stop the
        # calls after it in the same cell.
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(cell_timeout)
        try:
            for statement in tree.body:
                try:
                    exec(compile(ast.Module([statement], []), f"<cell {number}>", "exec"), namespace)  # noqa: S102
                except CellTimeout:
                    raise
                except BaseException as error:  # noqa: BLE001 - a tutorial line may fail in any way
                    first = (str(error).splitlines() or [""])[0][:160]
                    recorder.notes.append(f"cell {number}, line {statement.lineno} failed: "
                                          f"{type(error).__name__}: {first}")  # fmt: skip
                for name in bound_names(statement):
                    recorder.defined(namespace, name)
        except CellTimeout:
            recorder.notes.append(f"cell {number} ran past {cell_timeout} s and was stopped (calls after that point "
                                  "in it were not recorded)")  # fmt: skip
        finally:
            signal.alarm(0)
    return {"calls": recorder.calls, "notes": recorder.notes}


def main(argv: list[str]) -> int:
    request = json.loads(open(argv[0], encoding="utf-8").read())
    result = run(request["cells"], request["exercises"], request.get("cell_timeout", 60), request.get("skip", []))
    with open(argv[1], "w", encoding="utf-8") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
