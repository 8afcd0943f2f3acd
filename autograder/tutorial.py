"""`autograder new NAME --from TUTORIAL.ipynb [--solution SOLUTION.ipynb]`: an assignment from a course's tutorial.

A tutorial's exercises are the functions and classes of its code cells whose body raises `NotImplementedError`.
Each becomes an exercise (id: the symbol; title: the nearest heading above; statement: the Markdown between them).
The reference is the solution's definition of each symbol (from SOLUTION, or the tutorial's own `# to_remove
solution` cells) with the imports, constants and helper definitions it uses. The checks come from the tutorial's
own calls: its solution code runs in a process of its own (tutorial_record.py, a time limit per cell), every call
of an exercise symbol from the tutorial's code is recorded with its arguments, and each becomes a check making
the same call on the student's code and comparing with the reference's answer (checklib.expect_like: tensors at
their dtype's tolerance, shapes and dtypes first; a module's weights transplanted before its output is compared).
The first call of an exercise is public, the rest hidden; points split evenly. A check the reference itself fails
(a call that depends on randomness the check does not control) is dropped, and the folder is validated.
"""

from __future__ import annotations

import ast
import base64
import json
import re
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder import messages

POINTS = 10  # an exercise's points, split over its checks
MAX_CALLS = 6  # checks generated per exercise at most (the first distinct calls)
CELL_TIMEOUT = 60  # seconds a cell of the solution may run while its calls are recorded
TOTAL_TIMEOUT = 600
LITERAL_MAX = 64  # a tensor of up to this many values is written out; larger ones are embedded as bytes
SOLUTION_MARK = re.compile(r"^\s*#\s*to_remove\s+solution", re.IGNORECASE | re.MULTILINE)


class TutorialError(ValueError):
    """The tutorial cannot become an assignment; the message names the file and the problem."""


@dataclass
class Exercise:
    name: str
    kind: str  # "function" or "class"
    title: str
    statement: str
    solution: str = ""  # the reference's definition
    calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Generated:
    folder: Path
    exercises: list[Exercise]
    notes: list[str]


# -- reading notebooks ----------------------------------------------------------------------------------------------
def read_cells(path: Path) -> list[tuple[str, str]]:
    """(cell type, source) of every cell of a notebook."""
    import nbformat

    try:
        notebook = nbformat.read(str(path), as_version=4)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise TutorialError(f"{path}: not a notebook that can be read ({type(error).__name__}: {error})") from None
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def python_of(source: str) -> str:
    """A code cell as Python: IPython's magics and shell lines commented out (line numbers kept)."""
    return "\n".join("# " + line if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))


def parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(python_of(source))
    except SyntaxError:
        return None


def raises_not_implemented(node: ast.AST) -> bool:
    for inner in ast.walk(node):
        if isinstance(inner, ast.Raise) and inner.exc is not None:
            target = inner.exc.func if isinstance(inner.exc, ast.Call) else inner.exc
            if isinstance(target, ast.Name) and target.id == "NotImplementedError":
                return True
    return False


def heading_of(markdown: str) -> str | None:
    found = [line for line in markdown.splitlines() if line.lstrip().startswith("#")]
    return found[-1].lstrip("#").strip().rstrip("¶").strip() if found else None


def find_exercises(cells: list[tuple[str, str]]) -> list[Exercise]:
    found: dict[str, Exercise] = {}
    title, prose = "", []
    for kind, source in cells:
        if kind == "markdown":
            heading = heading_of(source)
            if heading:
                title = heading
                body = source.split("\n")
                last = max(i for i, line in enumerate(body) if line.lstrip().startswith("#"))
                prose = ["\n".join(body[last + 1 :]).strip()]
            else:
                prose.append(source.strip())
            continue
        tree = parse(source) if kind == "code" and not SOLUTION_MARK.search(source) else None
        for node in tree.body if tree else []:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and raises_not_implemented(node):
                symbol = "class" if isinstance(node, ast.ClassDef) else "function"
                statement = "\n\n".join(p for p in prose if p)[:2000]
                found.setdefault(node.name, Exercise(node.name, symbol, title or node.name, statement))
    return list(found.values())


def definitions(cells: list[tuple[str, str]], only_solutions: bool) -> dict[str, tuple[ast.stmt, str]]:
    """The last top-level definition of every name in the code cells: (node, its source)."""
    found: dict[str, tuple[ast.stmt, str]] = {}
    for kind, source in cells:
        if kind != "code" or (only_solutions and not SOLUTION_MARK.search(source)):
            continue
        code = python_of(source)
        tree = parse(source)
        for node in tree.body if tree else []:
            segment = ast.get_source_segment(code, node, padded=False) or ""
            for name in bound_names(node):
                found[name] = (node, segment)
    return found


def bound_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    return []


def used_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


# -- the reference ------------------------------------------------------------------------------------------------
def reference_source(exercises: list[Exercise], known: dict[str, tuple[ast.stmt, str]], tutorial: str,
                     what: str = "Reference solutions") -> str:  # fmt: skip
    """The solutions, and what they use: imports, constants (assignments of literals) and helper definitions."""
    wanted = [e.name for e in exercises]
    chosen: dict[str, tuple[ast.stmt, str]] = {}
    todo = list(wanted)
    while todo:
        name = todo.pop()
        if name in chosen or name not in known:
            continue
        node, segment = known[name]
        if isinstance(node, ast.Assign) and not _is_literal(node.value):
            continue  # a computed value (data, a device): the reference may not depend on the tutorial's state
        chosen[name] = (node, segment)
        todo += [n for n in used_names(node) if n not in chosen]
    imports = [seg for n, (node, seg) in chosen.items() if isinstance(node, (ast.Import, ast.ImportFrom))]
    constants = [seg for n, (node, seg) in chosen.items() if isinstance(node, ast.Assign)]
    helpers = [seg for n, (node, seg) in chosen.items()
               if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and n not in wanted]  # fmt: skip
    solutions = [chosen[name][1] for name in wanted if name in chosen]
    parts = [f'"""{what}, from {tutorial} (generated by `autograder new --from`)."""',
             "\n".join(dict.fromkeys(imports)), "\n".join(dict.fromkeys(constants)),
             *dict.fromkeys(helpers), *solutions]  # fmt: skip
    return "\n\n\n".join(textwrap.dedent(p).strip() for p in parts if p.strip()) + "\n"


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except ValueError:
        return False


# -- recording ------------------------------------------------------------------------------------------------------
Cells = list[tuple[str, str]]


def solution_run(tutorial: Cells, solution: Cells | None) -> tuple[list[str], list[int]]:
    """The code to run to record the tutorial's calls: the solution notebook, or the tutorial itself (whose
    `# to_remove solution` cells follow the exercise cells and hold the calls); and the cells whose calls are not
    recorded (the tutorial's exercise templates: their calls run the unfilled code)."""
    cells = [source for kind, source in (solution if solution is not None else tutorial) if kind == "code"]
    templates = [] if solution is not None else [i for i, source in enumerate(cells) if _defines_template(source)]
    return [python_of(source) for source in cells], templates


def _defines_template(source: str) -> bool:
    tree = parse(source) if not SOLUTION_MARK.search(source) else None
    return any(isinstance(node, (ast.FunctionDef, ast.ClassDef)) and raises_not_implemented(node)
               for node in (tree.body if tree else []))  # fmt: skip


def record(cells: list[str], skip: list[int], exercises: list[Exercise], work: Path) -> list[str]:
    """Run the cells in a process of their own and attach the recorded calls to the exercises; the notes."""
    request = work / "record-in.json"
    answer = work / "record-out.json"
    symbols = {e.name: e.kind for e in exercises}
    request.write_text(json.dumps({"cells": cells, "exercises": symbols, "cell_timeout": CELL_TIMEOUT, "skip": skip}))
    env_cwd = work / "run"
    env_cwd.mkdir(exist_ok=True)
    try:
        done = subprocess.run([sys.executable, "-m", "autograder.tutorial_record", str(request), str(answer)],
                              cwd=env_cwd, capture_output=True, text=True, timeout=TOTAL_TIMEOUT,
                              env=_recording_env())  # fmt: skip
    except subprocess.TimeoutExpired:
        raise TutorialError(f"running the solution took over {TOTAL_TIMEOUT} s; nothing was recorded") from None
    if not answer.exists():
        raise TutorialError(f"running the solution failed before any call was recorded:\n{done.stderr[-2000:]}")
    result = json.loads(answer.read_text())
    by_name = {e.name: e for e in exercises}
    for call in result["calls"]:
        exercise = by_name[call["symbol"]]
        key = json.dumps([call["call"], call.get("forward")], sort_keys=True)
        if all(json.dumps([c["call"], c.get("forward")], sort_keys=True) != key for c in exercise.calls):
            exercise.calls.append(call)
    return list(result["notes"])


def _recording_env() -> dict[str, str]:
    import os

    return {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}


# -- checks ---------------------------------------------------------------------------------------------------------
class Code:
    """The Python source of one check's recorded values: each tensor once, as a variable (written out when small;
    as its bytes in a public check, which students receive alone; else from the exercise's recorded .pt file), and
    for objects passed in, the lines that build them on both sides."""

    def __init__(self, public: bool, store: dict[str, Any]) -> None:
        self.public, self.store = public, store
        self.setup: list[str] = []
        self.tensors: dict[str, str] = {}  # the tensor's key -> its variable
        self.objects: list[tuple[str, str, str]] = []  # (student variable, reference variable, class)

    def value(self, data: Any) -> tuple[str, str]:
        """(for the student's call, for the reference's call)."""
        if not isinstance(data, dict):
            return repr(data), repr(data)
        kind = data["t"]
        if kind == "tensor":
            name = self.tensor(data)
            return name, name
        if kind == "float":
            text = f"float({data['repr']!r})"
            return text, text
        if kind in ("list", "tuple"):
            pairs = [self.value(item) for item in data["items"]]
            if kind == "list":
                return "[" + ", ".join(p[0] for p in pairs) + "]", "[" + ", ".join(p[1] for p in pairs) + "]"
            close = ",)" if len(pairs) == 1 else ")"
            return "(" + ", ".join(p[0] for p in pairs) + close, "(" + ", ".join(p[1] for p in pairs) + close
        if kind == "dict":
            entries = [(k, self.value(v)) for k, v in data["items"]]
            return ("{" + ", ".join(f"{k!r}: {v[0]}" for k, v in entries) + "}",
                    "{" + ", ".join(f"{k!r}: {v[1]}" for k, v in entries) + "}")  # fmt: skip
        if kind == "torch_module":
            text = f"torch.nn.{data['name']}()"
            return text, text
        if kind == "object":
            return self.obj(data)
        raise ValueError(f"unknown recorded value {kind!r}")

    def tensor(self, data: dict[str, Any]) -> str:
        key = tensor_key(data)
        if key not in self.tensors:
            name = f"t{len(self.tensors) + 1}"
            self.tensors[key] = name
            small = _numel(data) <= LITERAL_MAX or _constant(data)
            if small or self.public:
                self.setup.append(f"{name} = {tensor_code(data)}")
            else:
                self.store[key] = data
                self.setup.append(f'{name} = RECORDED["{key}"].clone()')
        return self.tensors[key]

    def obj(self, data: dict[str, Any]) -> tuple[str, str]:
        n = len(self.objects) + 1
        cls = data["class"]
        ctor = self.call_args(data["ctor"])
        state = None
        if data.get("state"):
            state = "{" + ", ".join(f"{k!r}: {self.value(v)[1]}" for k, v in data["state"]["items"]) + "}"
        if data["exercise"]:  # the student's own class on their side, the reference's on ours, same weights
            self.setup.append(f"ours_{n} = reference.{cls}({ctor[1]})")
            if state:
                self.setup.append(f"ours_{n}.load_state_dict({state})")
            self.setup.append(f"theirs_{n} = student.{cls}({ctor[0]})")
            self.setup.append(f'transplant(ours_{n}, theirs_{n}, what="{cls}({_short(ctor[1])})")')
        else:
            self.setup.append(f"ours_{n} = helpers.{cls}({ctor[1]})")
            if state:
                self.setup.append(f"ours_{n}.load_state_dict({state})")
            self.setup.append(f'theirs_{n} = student.put(copy.deepcopy(ours_{n}), label="the {cls} passed in")')
        self.objects.append((f"theirs_{n}", f"ours_{n}", cls))
        return f"theirs_{n}", f"ours_{n}"

    def call_args(self, data: dict[str, Any]) -> tuple[str, str]:
        """'a, b, k=c' for both sides, from a recorded {"args": [...], "kwargs": {...}}."""
        items = dict(data["items"])
        args = [self.value(a) for a in items["args"]["items"]]
        kwargs = [(k, self.value(v)) for k, v in items["kwargs"]["items"]]
        return (", ".join([a[0] for a in args] + [f"{k}={v[0]}" for k, v in kwargs]),
                ", ".join([a[1] for a in args] + [f"{k}={v[1]}" for k, v in kwargs]))  # fmt: skip


def tensor_key(data: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(f"{data['dtype']}{data['shape']}{data['data']}".encode()).hexdigest()[:12]


def _numel(data: dict[str, Any]) -> int:
    n = 1
    for size in data["shape"]:
        n *= size
    return n


def _constant(data: dict[str, Any]) -> bool:
    return tensor_code(data).startswith("torch.full(")


def _call_text(line: str, name: str) -> str:
    """The call of `name` as the tutorial wrote it on that line ('loss(x, labels)'), if it fits."""
    start = re.search(rf"(?<![\w.]){re.escape(name)}\(", line)
    if not start:
        return ""
    depth = 0
    for end in range(start.end() - 1, len(line)):
        depth += {"(": 1, ")": -1}.get(line[end], 0)
        if depth == 0:
            text = line[start.start() : end + 1]
            return text.replace('"', "'") if len(text) <= 100 else ""
    return ""


def _short(text: str, limit: int = 60) -> str:
    text = text.replace('"', "'")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _array(data: dict[str, Any]) -> Any:
    import numpy as np

    raw = base64.b64decode(data["data"])
    return np.frombuffer(raw, dtype=np.dtype(data["dtype"])).reshape(tuple(data["shape"]))


def tensor_code(data: dict[str, Any]) -> str:
    dtype, shape = data["dtype"], tuple(data["shape"])
    array = _array(data)
    if array.size > 1 and (array == array.flat[0]).all():
        return f"torch.full({shape}, {_number(array.flat[0])}, dtype=torch.{dtype})"
    if array.size <= LITERAL_MAX:
        nested = _nested(array) if shape else _number(array.item())
        return f"torch.tensor({nested}, dtype=torch.{dtype})"
    return f'recorded_tensor("{dtype}", {shape}, "{data["data"]}")'


def save_store(store: dict[str, Any], path: Path) -> None:
    import torch

    tensors = {key: torch.from_numpy(_array(data).copy()) for key, data in store.items()}
    torch.save(tensors, path)


def _number(value: Any) -> str:
    if isinstance(value, bool) or getattr(value, "dtype", None) is not None and value.dtype.kind == "b":
        return repr(bool(value))
    if hasattr(value, "dtype") and value.dtype.kind == "f":
        return repr(float(str(value)))  # the shortest text that gives the same float32 or float64 back
    return repr(value.item() if hasattr(value, "item") else value)


def _nested(array: Any) -> str:
    if array.ndim == 1:
        return "[" + ", ".join(_number(v) for v in array) + "]"
    return "[" + ", ".join(_nested(a) for a in array) + "]"


def check_source(exercise: Exercise, points: list[int], store: dict[str, Any]) -> str:
    functions: list[str] = []
    for number, (call, score) in enumerate(zip(exercise.calls, points, strict=False), start=1):
        functions += ["", "", *_check_function(exercise, call, number, score, store)]
    body = "\n".join(functions)
    names = ["bound_arguments", "describe_inputs", "expect_like", "recorded_tensor", "transplant"]
    used = [n for n in names if f"{n}(" in body]
    lines = [
        f'"""{exercise.name}: checks generated from the tutorial\'s own calls (`autograder new --from`).',
        "",
        "Each check makes a call the tutorial's solution made, on the student's code and on the reference, and",
        "compares the answers (tensors at their dtype's tolerance, shapes and dtypes first). Edit freely: add hints,",
        'tolerances and the cases the tutorial does not try."""',
        "",
        *(["import copy", ""] if "copy." in body else []),
        *(["from pathlib import Path", ""] if "RECORDED[" in body else []),
        "import pytest",
        "import torch",
        "",
        f"from autograder.checklib import {', '.join(used)}",
    ]
    if "RECORDED[" in body:
        lines += ["", f"# The hidden checks' larger recorded inputs (exact values), from test_{exercise.name}.pt",
                  'RECORDED = torch.load(Path(__file__).with_suffix(".pt"), weights_only=True)']  # fmt: skip
    return "\n".join(lines) + body + "\n"


def _check_function(exercise: Exercise, call: dict[str, Any], number: int, points: int, store: dict[str, Any]
                    ) -> list[str]:  # fmt: skip
    code = Code(public=number == 1, store=store)
    body: list[str] = []
    where = f"cell {call['cell']}: {call['line']}"
    fixtures = "student, reference"
    theirs, ours = code.call_args(call["call"])
    if exercise.kind == "function":
        what = _call_text(call["line"], exercise.name) or f"{exercise.name}({_short(ours, 50)})"
        body += [f"got = student.{exercise.name}({theirs})", f"expected = reference.{exercise.name}({ours})",
                 f"inputs = describe_inputs(**bound_arguments(reference.{exercise.name}, {ours}))",
                 f'expect_like(got, expected, what="{what}", inputs=inputs)']  # fmt: skip
        for theirs_obj, ours_obj, cls in code.objects:
            body.append(f"expect_like(list({theirs_obj}.state_dict().values()), list({ours_obj}.state_dict().values()),"
                        f' what="the {cls} passed in, after the call")')  # fmt: skip
    else:
        label = _call_text(call["line"], exercise.name) or f"{exercise.name}({_short(ours, 50)})"
        body += [f"ours = reference.{exercise.name}({ours})", f"theirs = student.{exercise.name}({theirs})",
                 f'transplant(ours, theirs, what="{label}")']  # fmt: skip
        forward = call.get("forward")
        if forward:
            f_theirs, f_ours = code.call_args(forward)
            where += f"; then {call.get('forward_line', '')}"
            body += [f"got = theirs({f_theirs})", f"expected = ours({f_ours})",
                     f'expect_like(got, expected, what="{label} applied to the tutorial\'s input")']  # fmt: skip
    if any("helpers." in line for line in code.setup):
        fixtures += ", helpers"
    head = ["@pytest.mark.public"] if number == 1 else []
    head += [f"@pytest.mark.points({points})", f"def test_tutorial_call_{number}({fixtures}):",
             f"    # Recorded from the solution, {_short(where, 100)}",
             "    torch.manual_seed(0)"]  # fmt: skip
    return head + ["    " + line for line in (*code.setup, *body)]


def split_points(n: int, total: int = POINTS) -> list[int]:
    return [total // n + (1 if i < total % n else 0) for i in range(n)] if n else []


# -- the folder -----------------------------------------------------------------------------------------------------
def toml_text(name: str, source: str, exercises: list[Exercise], notes: list[str], helpers: bool) -> str:
    def string(text: str) -> str:
        return '"""\n' + text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') + '"""'

    lines = ["# Generated by `autograder new --from`: edit freely, then run `autograder validate` on this folder.",
             f'name = "{name}"', f"title = {json.dumps(source)}", f"source = {json.dumps(source)}",
             'reference = "reference.py"']  # fmt: skip
    if helpers:
        lines.append('helpers = "helpers.py"')
    for e in exercises:
        lines += ["", "[[exercises]]", f'id = "{e.name}"', f"title = {json.dumps(e.title)}",
                  f'symbols = {{ {e.name} = "{e.kind}" }}', f"points = {POINTS}",
                  f"statement = {string(e.statement or e.title)}"]  # fmt: skip
    if notes:
        lines += ["", "# Left out while generating (edit the tutorial or write these checks by hand):"]
        lines += [f"#   {note}" for note in notes]
    return "\n".join(lines) + "\n"


def generate(name: str, tutorial: Path, parent: Path, solution: Path | None = None) -> Generated:
    """Write parent/name/ from the tutorial; every exercise with a recorded call gets checks."""
    if not name.isidentifier():
        raise TutorialError(messages.NEW_BAD_NAME.format(name=name))
    folder = parent / name
    if folder.exists():
        raise TutorialError(messages.NEW_EXISTS.format(folder=folder))
    tutorial_cells = read_cells(tutorial)
    solution_cells = read_cells(solution) if solution else None
    exercises = find_exercises(tutorial_cells)
    if not exercises:
        raise TutorialError(f"{tutorial}: no exercise found (a function or class whose body raises "
                            "NotImplementedError)")  # fmt: skip
    known = definitions(solution_cells, False) if solution_cells else definitions(tutorial_cells, True)
    helpers_known = definitions(solution_cells or tutorial_cells, False)
    missing = [e.name for e in exercises if e.name not in known or raises_not_implemented(known[e.name][0])]
    if missing:
        where = f"{solution} defines no solution of" if solution else f"{tutorial} has no `# to_remove solution` cell"
        where += "" if solution else " for"
        raise TutorialError(f"{where} {', '.join(missing)}: give the solution notebook with --solution")
    for exercise in exercises:
        exercise.solution = known[exercise.name][1]
    title = _title(tutorial_cells) or tutorial.stem
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="autograder-new-") as tmp:
        cells, templates = solution_run(tutorial_cells, solution_cells)
        notes += record(cells, templates, exercises, Path(tmp))
    reference = reference_source(exercises, {**helpers_known, **known}, title)
    needs_helpers = sorted({c["class"] for e in exercises for call in e.calls for c in _objects(call)
                            if not c["exercise"]})  # fmt: skip
    checked = []
    for exercise in exercises:
        exercise.calls = exercise.calls[:MAX_CALLS]
        if exercise.calls:
            checked.append(exercise)
        else:
            notes.append(f"{exercise.name}: left out, the tutorial never calls it in a way that can be recorded")
    if not checked:
        raise TutorialError(f"{tutorial}: no exercise's calls could be recorded:\n  " + "\n  ".join(notes))
    folder.mkdir(parents=True)
    (folder / "checks").mkdir()
    (folder / "reference.py").write_text(reference, encoding="utf-8")
    if needs_helpers:
        helper_defs = {n: helpers_known[n] for n in needs_helpers if n in helpers_known}
        what = "The tutorial's classes whose instances the checks pass in (sent into workers)"
        classes = [Exercise(n, "class", n, "") for n in helper_defs]
        (folder / "helpers.py").write_text(reference_source(classes, helpers_known, title, what), encoding="utf-8")
    _write_checks(folder, checked, title, notes, bool(needs_helpers))
    _drop_what_the_reference_fails(folder, checked, title, notes, bool(needs_helpers))
    return Generated(folder, checked, notes)


def _objects(call: dict[str, Any]) -> list[dict[str, Any]]:
    found = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("t") == "object":
                found.append(value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk([call["call"], call.get("forward")])
    return found


def _write_checks(folder: Path, exercises: list[Exercise], title: str, notes: list[str], helpers: bool) -> None:
    for exercise in exercises:
        store: dict[str, Any] = {}
        text = check_source(exercise, split_points(len(exercise.calls)), store)
        (folder / "checks" / f"test_{exercise.name}.py").write_text(text, encoding="utf-8")
        data = folder / "checks" / f"test_{exercise.name}.pt"
        if store:
            save_store(store, data)
        else:
            data.unlink(missing_ok=True)
    (folder / "assignment.toml").write_text(toml_text(folder.name, title, exercises, notes, helpers), encoding="utf-8")


def _drop_what_the_reference_fails(folder: Path, exercises: list[Exercise], title: str, notes: list[str],
                                   helpers: bool) -> None:  # fmt: skip
    """Grade the reference; a check it fails (a call whose answer depends on randomness the check does not set)
    is dropped, and the checks are written again."""
    from autograder.authoring import validate
    from autograder.mutants import quiet_stdout

    with quiet_stdout():  # the reference's own prints (a training loop's progress)
        report = validate(folder)
    changed = False
    for exercise in exercises:
        passed = report.reference_checks.get(exercise.name, {})
        bad = {_number_of(name) - 1 for name, ok in passed.items() if not ok}
        if bad:
            notes.append(f"{exercise.name}: {len(bad)} recorded call(s) dropped: the reference fails them when graded "
                         "(an answer that depends on randomness the call does not seed, or on state)")  # fmt: skip
            exercise.calls = [c for i, c in enumerate(exercise.calls) if i not in bad]
            changed = True
    kept = [e for e in exercises if e.calls]
    if changed:
        for exercise in exercises:
            if not exercise.calls:
                (folder / "checks" / f"test_{exercise.name}.py").unlink()
                (folder / "checks" / f"test_{exercise.name}.pt").unlink(missing_ok=True)
                notes.append(f"{exercise.name}: left out, no recorded call could be checked")
        _write_checks(folder, kept, title, notes, helpers)


def _number_of(test_name: str) -> int:
    found = re.search(r"test_tutorial_call_(\d+)", test_name)
    return int(found.group(1)) if found else 0


def _title(cells: list[tuple[str, str]]) -> str:
    for kind, source in cells:
        if kind == "markdown":
            heading = heading_of(source.split("\n\n")[0]) if source.lstrip().startswith("#") else None
            if heading:
                return heading
    return ""
