"""`autograder validate --mutants`: how strong an assignment's checks are, measured on realistic wrong versions of
its reference.

A mutant is the reference module with one change inside one exercise's code, of the kinds students make:
an operator swapped (+ and -, * and /), a term dropped, a comparison flipped, a sign lost, a reduction swapped
(mean and sum, max and min), a dimension changed, an activation dropped, an off-by-one in a range or a slice, a
constant changed. Every mutant is graded as a submission; it is caught when its exercise loses points. A mutant
that survives is probed: the calls the checks made to the reference while grading it are made again on the
reference and on the mutant, in this process; if every answer is the same, the mutant is equivalent (no check
could tell them apart on those inputs) and is reported apart, else it is a survivor: a mistake the checks let
through, printed as a one-line diff.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import importlib.util
import io
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from autograder.spec import AssignmentSpec, load_assignment

MAX_PER_EXERCISE = 24  # mutants graded per exercise at most, spread evenly over the sites found
PROBE_CALLS = 40  # calls per symbol kept for the equivalence probe

REDUCTIONS = {"mean": "sum", "sum": "mean", "max": "min", "min": "max", "amax": "amin", "amin": "amax",
              "argmax": "argmin", "argmin": "argmax", "prod": "sum", "logsumexp": "sum"}  # fmt: skip
ACTIVATIONS = {"relu", "sigmoid", "tanh", "leaky_relu", "softplus", "elu", "gelu", "softmax", "log_softmax"}
# Numbers given to these only reshape: changing them fails at once, which tells nothing about the checks.
SHAPE_CALLS = {"reshape", "view", "unsqueeze", "squeeze", "permute", "transpose", "flatten", "expand", "repeat",
               "view_as", "movedim", "linspace", "zeros", "ones", "empty", "arange"}
MODULE_ACTIVATIONS = {"ReLU", "Sigmoid", "Tanh", "LeakyReLU", "Softplus", "ELU", "GELU"}
BINOPS: dict[type, type] = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
                            ast.FloorDiv: ast.Div, ast.Pow: ast.Mult, ast.MatMult: ast.Mult}  # fmt: skip
COMPARES: dict[type, type] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
                              ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}  # fmt: skip


@dataclass(frozen=True)
class Mutant:
    exercise: str
    line: int
    operator: str
    before: str
    after: str
    source: str

    @property
    def diff(self) -> str:
        return f"line {self.line}: {self.before} -> {self.after} ({self.operator})"


@dataclass
class ExerciseScore:
    exercise: str
    caught: list[Mutant] = field(default_factory=list)
    survived: list[Mutant] = field(default_factory=list)
    equivalent: list[Mutant] = field(default_factory=list)

    @property
    def score(self) -> float:
        real = len(self.caught) + len(self.survived)
        return len(self.caught) / real if real else 1.0


# -- making mutants ---------------------------------------------------------------------------------------------
def _replacements(node: ast.AST, parent: ast.AST | None) -> Iterator[tuple[str, ast.AST]]:
    """(operator, replacement node) for every mutation that applies at this node."""
    if _droppable(node):
        yield "statement dropped", ast.Pass()  # a forgotten zero_grad(), backward(), step(), append or +=
    elif isinstance(node, ast.BinOp):
        if type(node.op) in BINOPS:
            yield "operator swapped", ast.BinOp(node.left, BINOPS[type(node.op)](), node.right)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            yield "term dropped", node.left
            if isinstance(node.op, ast.Add):
                yield "term dropped", node.right
    elif isinstance(node, ast.Compare) and type(node.ops[0]) in COMPARES:
        yield "comparison flipped", ast.Compare(node.left, [COMPARES[type(node.ops[0])](), *node.ops[1:]],
                                                node.comparators)  # fmt: skip
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        yield "sign flipped", node.operand
    elif isinstance(node, ast.Call):
        yield from _call_replacements(node)
    elif isinstance(node, ast.Slice):
        for part in ("lower", "upper"):
            bound = getattr(node, part)
            if bound is not None:
                changed = copy.copy(node)
                setattr(changed, part, ast.BinOp(bound, ast.Add(), ast.Constant(1)))
                yield "off by one", changed
    elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        if isinstance(parent, ast.keyword) and parent.arg in ("dim", "axis"):
            yield "dimension changed", ast.Constant(0 if node.value != 0 else 1)
        elif isinstance(node.value, int):
            yield "constant changed", ast.Constant(node.value + 1)
        else:
            yield "constant changed", ast.Constant(node.value * 2 if node.value else 1.0)


def _droppable(node: ast.AST) -> bool:
    if isinstance(node, ast.AugAssign):
        return True
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return False
    func = node.value.func  # super().__init__() left out fails at once: nothing a check needs to catch
    return not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
                and isinstance(func.value.func, ast.Name) and func.value.func.id == "super")  # fmt: skip


def _call_replacements(node: ast.Call) -> Iterator[tuple[str, ast.AST]]:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name in REDUCTIONS and isinstance(func, ast.Attribute):
        yield "reduction swapped", ast.Call(ast.Attribute(func.value, REDUCTIONS[name], ast.Load()), node.args,
                                            node.keywords)  # fmt: skip
    if name in ACTIVATIONS:
        if node.args:
            yield "activation dropped", node.args[0]
        elif isinstance(func, ast.Attribute):
            yield "activation dropped", func.value
    if name in MODULE_ACTIVATIONS and isinstance(func, ast.Attribute):
        yield "activation dropped", ast.Call(ast.Attribute(func.value, "Identity", ast.Load()), [], [])
    if name == "range" and node.args:
        last = node.args[-1] if len(node.args) < 3 else node.args[1]
        index = node.args.index(last)
        args = list(node.args)
        args[index] = ast.BinOp(last, ast.Sub(), ast.Constant(1))
        yield "off by one", ast.Call(func, args, node.keywords)
    for i, arg in enumerate(node.args):  # a dimension given positionally: x.sum(1)
        if name in REDUCTIONS and isinstance(arg, ast.Constant) and isinstance(arg.value, int) and i == 0:
            args = list(node.args)
            args[0] = ast.Constant(0 if arg.value != 0 else 1)
            yield "dimension changed", ast.Call(func, args, node.keywords)


def _shape_argument(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    parent = parents.get(id(node))
    if isinstance(parent, ast.UnaryOp):
        parent = parents.get(id(parent))
    if isinstance(parent, ast.Call) and node is not parent.func:
        func = parent.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        return name in SHAPE_CALLS
    return False


def _body_nodes(definition: ast.AST) -> list[tuple[ast.AST, ast.AST | None]]:
    """(node, parent) inside the bodies of a function or a class's methods, in source order; docstrings and
    signatures (defaults) left out."""
    functions = [definition] if isinstance(definition, ast.FunctionDef) else [
        n for n in getattr(definition, "body", []) if isinstance(n, ast.FunctionDef)]  # fmt: skip
    found = []
    for function in functions:
        body = function.body[1:] if ast.get_docstring(function) is not None else function.body
        for statement in body:
            parents = {id(child): parent for parent in ast.walk(statement) for child in ast.iter_child_nodes(parent)}
            for parent in ast.walk(statement):
                for child in ast.iter_child_nodes(parent):
                    if not (isinstance(child, (ast.Constant, ast.UnaryOp)) and _shape_argument(child, parents)):
                        found.append((child, parent))
            found.append((statement, function))
    return sorted(found, key=lambda pair: (getattr(pair[0], "lineno", 0), getattr(pair[0], "col_offset", 0)))


def make_mutants(spec: AssignmentSpec, per_exercise: int = MAX_PER_EXERCISE) -> dict[str, list[Mutant]]:
    source = spec.reference_path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    by_exercise: dict[str, list[Mutant]] = {}
    for exercise in spec.exercises:
        names = set(exercise.symbol_names)
        candidates: list[tuple[int, int, str]] = []  # (top-level index, node index, operator) of each mutation
        for top, definition in enumerate(tree.body):
            if isinstance(definition, (ast.FunctionDef, ast.ClassDef)) and definition.name in names:
                for index, (node, parent) in enumerate(_body_nodes(definition)):
                    for n, (operator, _) in enumerate(_replacements(node, parent)):
                        candidates.append((top, index, f"{n}:{operator}"))
        chosen = _spread(candidates, per_exercise)
        mutants = []
        for top, index, tag in chosen:
            mutant = _apply(tree, top, index, int(tag.split(":")[0]), exercise.id, source)
            if mutant is not None:
                mutants.append(mutant)
        by_exercise[exercise.id] = mutants
    return by_exercise


def _spread(items: list[Any], limit: int) -> list[Any]:
    if len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def _apply(tree: ast.Module, top: int, index: int, which: int, exercise: str, original: str) -> Mutant | None:
    copied = copy.deepcopy(tree)
    node, parent = _body_nodes(copied.body[top])[index]
    operator, replacement = list(_replacements(node, parent))[which]
    before = ast.unparse(node)
    after = ast.unparse(replacement) if not isinstance(replacement, ast.Pass) else "(line removed)"
    if before == after or parent is None:
        return None
    for name, value in ast.iter_fields(parent):
        if value is node:
            setattr(parent, name, replacement)
        elif isinstance(value, list) and any(v is node for v in value):
            value[[i for i, v in enumerate(value) if v is node][0]] = replacement
    try:
        mutated = ast.unparse(ast.fix_missing_locations(copied))
        compile(mutated, "<mutant>", "exec")
    except (SyntaxError, ValueError, TypeError):
        return None
    del original
    return Mutant(exercise, getattr(node, "lineno", 0), operator, _one_line(before), _one_line(after), mutated)


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 70 else text[:67] + "..."


# -- the equivalence probe: the reference's calls while its checks ran ------------------------------------------
SPIES: dict[str, list[dict[str, Any]]] = {}  # spy key -> calls recorded in this process


def spy(namespace: dict[str, Any], symbols: dict[str, str], key: str) -> None:
    """Wrap a reference module's exercise symbols so that every call the checks make to them is kept (arguments
    copied before the call). Called from the spy copy of the reference that `probe_calls` writes."""
    calls = SPIES.setdefault(key, [])
    counts: dict[str, int] = {}
    for name, kind in symbols.items():
        value = namespace.get(name)
        if kind == "function" and callable(value):
            namespace[name] = _spy_function(name, value, calls, counts)
        elif kind == "class" and isinstance(value, type):
            _spy_class(name, value, calls, counts)


def _spy_function(name: str, function: Callable[..., Any], calls: list[dict[str, Any]],
                  counts: dict[str, int]) -> Callable[..., Any]:  # fmt: skip
    def spied(*args: Any, **kwargs: Any) -> Any:
        if counts.get(name, 0) < PROBE_CALLS:
            try:
                calls.append({"symbol": name, "args": copy.deepcopy(args), "kwargs": copy.deepcopy(kwargs)})
                counts[name] = counts.get(name, 0) + 1
            except Exception:  # noqa: BLE001 - an argument that cannot be copied is simply not probed
                pass
        return function(*args, **kwargs)

    spied.__wrapped__ = function  # type: ignore[attr-defined]
    return spied


def _spy_class(name: str, cls: type, calls: list[dict[str, Any]], counts: dict[str, int]) -> None:
    init = getattr(cls, "__init__")  # noqa: B009
    forward = getattr(cls, "forward", None)

    def __init__(obj: Any, *args: Any, **kwargs: Any) -> None:
        record = None
        if counts.get(name, 0) < PROBE_CALLS:
            try:
                record = {"symbol": name, "args": copy.deepcopy(args), "kwargs": copy.deepcopy(kwargs), "forward": []}
                calls.append(record)
                counts[name] = counts.get(name, 0) + 1
            except Exception:  # noqa: BLE001
                record = None
        init(obj, *args, **kwargs)
        object.__setattr__(obj, "_autograder_probe", record)

    cls.__init__ = __init__  # type: ignore[misc]
    if forward is not None:
        def spied_forward(obj: Any, *args: Any, **kwargs: Any) -> Any:
            record = obj.__dict__.get("_autograder_probe")
            if record is not None and len(record["forward"]) < 3:
                try:
                    record["forward"].append((copy.deepcopy(args), copy.deepcopy(kwargs)))
                except Exception:  # noqa: BLE001
                    pass
            return forward(obj, *args, **kwargs)

        cls.forward = spied_forward  # type: ignore[attr-defined]


def probe_calls(spec: AssignmentSpec, work: Path) -> list[dict[str, Any]]:
    """Grade the reference once with a spy copy of it as the reference: the calls its checks make."""
    import shutil

    from autograder.grader import grade_chunk
    from autograder.options import GradingOptions
    from autograder.submission import load_submissions

    folder = work / "spy" / spec.name
    shutil.copytree(spec.folder, folder, ignore=shutil.ignore_patterns("__pycache__", "*.ipynb"))
    key = str(folder)
    symbols = {symbol.name: str(symbol.kind) for exercise in spec.exercises for symbol in exercise.symbols}
    spied = spec.reference_path.read_text(encoding="utf-8") + (
        f"\n\nimport autograder.mutants as _autograder_mutants\n"
        f"_autograder_mutants.spy(globals(), {symbols!r}, {key!r})\n")  # fmt: skip
    (folder / "reference_spy.py").write_text(spied, encoding="utf-8")
    toml = (folder / "assignment.toml").read_text(encoding="utf-8")
    toml = re.sub(r'^reference\s*=.*$', 'reference = "reference_spy.py"', toml, count=1, flags=re.MULTILINE)
    if spec.helpers_path is not None and spec.folder not in spec.helpers_path.parents:
        toml = re.sub(r'^helpers\s*=.*$', f"helpers = {str(spec.helpers_path)!r}", toml, count=1, flags=re.MULTILINE)
    (folder / "assignment.toml").write_text(toml, encoding="utf-8")
    reference = work / "reference.py"
    reference.write_text(spec.reference_path.read_text(encoding="utf-8"), encoding="utf-8")
    grade_chunk(load_assignment(folder), load_submissions([reference]), GradingOptions())
    return SPIES.pop(key, [])


def _module(path: Path, name: str) -> ModuleType:
    loader = importlib.util.spec_from_file_location(name, path)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    sys.modules[name] = module
    loader.loader.exec_module(module)
    return module


def same(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != b.shape:
            return False
        if a.dtype != b.dtype:
            return False
        x, y = a.detach().cpu(), b.detach().cpu()
        if x.is_floating_point() or x.is_complex():
            return bool(torch.allclose(x, y, rtol=1e-6, atol=1e-7, equal_nan=True))
        return bool(torch.equal(x, y))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return a == b or abs(a - b) <= 1e-7 * max(1.0, abs(a)) or (a != a and b != b)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001
        return False


def _caller(function: Callable[..., Any], args: Any, kwargs: Any) -> Callable[[], Any]:
    """The call on copies of the arguments (the reference and the mutant each get their own)."""
    return lambda: function(*copy.deepcopy(args), **copy.deepcopy(kwargs))


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    import torch

    torch.manual_seed(0)
    try:
        return "value", call()
    except Exception as error:  # noqa: BLE001 - a mutant may fail in any way
        return "error", type(error).__name__


def equivalent(reference: ModuleType, mutant: ModuleType, calls: list[dict[str, Any]], symbols: set[str]) -> bool:
    """Whether the mutant answers every probed call of these symbols as the reference does."""
    probed = 0
    for call in calls:
        name = call["symbol"]
        if name not in symbols:
            continue
        probed += 1
        ours = _outcome(_caller(getattr(reference, name), call["args"], call["kwargs"]))
        theirs = _outcome(_caller(getattr(mutant, name), call["args"], call["kwargs"]))
        if ours[0] != theirs[0] or not same(ours[1], theirs[1]):
            return False
        if "forward" in call and ours[0] == "value":
            states: list[dict[str, Any]] = [dict(getattr(o[1], "state_dict", dict)()) for o in (ours, theirs)]
            if not same(states[0], states[1]):
                return False
            for args, kwargs in call["forward"]:
                a = _outcome(_caller(ours[1], args, kwargs))
                b = _outcome(_caller(theirs[1], args, kwargs))
                if a[0] != b[0] or not same(a[1], b[1]):
                    return False
    return probed > 0


# -- grading them -----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Nothing printed on this process's standard output, by Python or by the processes it starts (the
    reference's own progress prints while checks call it in scoring processes)."""
    import os

    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def mutation_scores(assignment: str | Path | AssignmentSpec, per_exercise: int = MAX_PER_EXERCISE, jobs: int = 2,
                    progress: Callable[[int, int], None] | None = None) -> list[ExerciseScore]:  # fmt: skip
    """Grade every mutant; caught, survived and equivalent per exercise."""
    from autograder.grader import grade
    from autograder.options import GradingOptions

    spec = assignment if isinstance(assignment, AssignmentSpec) else load_assignment(assignment)
    mutants = make_mutants(spec, per_exercise)
    scores = {e.id: ExerciseScore(e.id) for e in spec.exercises}
    with tempfile.TemporaryDirectory(prefix="autograder-mutants-") as tmp:
        work = Path(tmp)
        paths: dict[str, tuple[Mutant, Path]] = {}
        for exercise, items in mutants.items():
            for n, mutant in enumerate(items):
                path = work / "mutants" / f"{exercise}_{n:03d}.py"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(mutant.source, encoding="utf-8")
                paths[path.name] = (mutant, path)
        total = len(paths)
        with quiet_stdout():
            batch = grade(spec, [p for _, p in paths.values()], out_dir=None, options=GradingOptions(), jobs=jobs)
        if progress:
            progress(total, total)
        survivors = []
        for result in batch.results:
            mutant, path = paths[Path(result.submission).name]
            graded = result.exercise(mutant.exercise) if result.exercises else None
            if graded is None or graded.score < graded.max_score:
                scores[mutant.exercise].caught.append(mutant)
            else:
                survivors.append((mutant, path))
        if survivors:
            with quiet_stdout():
                calls = probe_calls(spec, work)
            reference = _module(spec.reference_path, "autograder_probe_reference")
            for n, (mutant, path) in enumerate(survivors):
                symbols = set(next(e for e in spec.exercises if e.id == mutant.exercise).symbol_names)
                try:
                    module = _module(path, f"autograder_probe_mutant_{n}")
                    same_answers = equivalent(reference, module, calls, symbols)
                except Exception:  # noqa: BLE001 - a mutant that cannot even load is not equivalent
                    same_answers = False
                score = scores[mutant.exercise]
                (score.equivalent if same_answers else score.survived).append(mutant)
    return list(scores.values())
