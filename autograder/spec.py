"""Assignment specs: an assignment folder's `assignment.toml` turned into typed, validated objects.

An assignment is a self-contained folder: `assignment.toml` (exercises, points, statements), the reference module
(`reference`, a path relative to the folder), `checks/test_<exercise>.py`, optionally a `helpers` module whose
objects checks send into workers, and `statements/<exercise>.md` for statements not written in the toml.
"""

from __future__ import annotations

import ast
import difflib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from autograder import messages
from autograder.paths import assignment_dir, builtin_names

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SymbolKind = Literal["function", "class"]
_KINDS = ("function", "class")
_TOP_KEYS = {"name", "title", "source", "reference", "exercises", "intro", "helpers", "preload"}
_EXERCISE_KEYS = {"id", "title", "symbols", "kind", "points", "reference", "forbidden", "statement"}
STATEMENTS_DIR = "statements"


class SpecError(ValueError):
    """A spec file that cannot be used; the message names the file, the field and the problem."""


@dataclass(frozen=True)
class SymbolSpec:
    name: str
    kind: SymbolKind


@dataclass(frozen=True)
class ExerciseSpec:
    id: str
    title: str
    symbols: tuple[SymbolSpec, ...]
    points: float
    reference: tuple[str, ...]  # names in the reference module this exercise is judged against
    forbidden: tuple[str, ...]  # dotted names the student's code may not call
    statement: str = ""  # what the student is asked to do (Markdown), shown in the student notebook

    @property
    def symbol_names(self) -> tuple[str, ...]:
        return tuple(symbol.name for symbol in self.symbols)


@dataclass(frozen=True)
class AssignmentSpec:
    name: str
    title: str
    source: str
    folder: Path
    reference_path: Path
    exercises: tuple[ExerciseSpec, ...]
    intro: str = ""  # the notebook's opening paragraph (Markdown)
    helpers_path: Path | None = None  # a module of objects the checks send into workers (models, loops)
    preload: tuple[str, ...] = ()  # modules the fork server imports for every worker, beyond the usual ones

    @property
    def helpers_module(self) -> str:
        """The name the helpers module is known by, in the scoring process and in workers alike."""
        return f"autograder_helpers_{self.name}"

    @property
    def checks_dir(self) -> Path:
        return self.folder / "checks"

    @property
    def exercise_ids(self) -> tuple[str, ...]:
        return tuple(exercise.id for exercise in self.exercises)

    @property
    def max_score(self) -> float:
        return sum(exercise.points for exercise in self.exercises)

    def exercise(self, exercise_id: str) -> ExerciseSpec:
        for exercise in self.exercises:
            if exercise.id == exercise_id:
                return exercise
        raise KeyError(exercise_id)


def load_assignment(name_or_path: str | Path | AssignmentSpec) -> AssignmentSpec:
    """Load a built-in assignment by name (`mlp`) or any assignment folder or `assignment.toml` path."""
    if isinstance(name_or_path, AssignmentSpec):
        return name_or_path
    path = Path(name_or_path)
    if path.name == "assignment.toml":
        folder = path.parent.resolve()
    else:
        folder = assignment_dir(name_or_path)
    spec_file = folder / "assignment.toml"
    if not spec_file.is_file():
        raise SpecError(_not_found(name_or_path, spec_file))
    return parse_spec(spec_file)


def _not_found(name_or_path: str | Path, spec_file: Path) -> str:
    """A bare name that is neither a built-in nor a folder here: list the built-ins (and the closest one)."""
    name = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in name or Path(name).exists():
        return messages.SPEC_NOT_FOUND.format(name=name, path=spec_file)
    builtins = builtin_names()
    close = difflib.get_close_matches(name, builtins, n=1)
    hint = messages.DID_YOU_MEAN.format(guess=close[0]) if close else ""
    return messages.UNKNOWN_ASSIGNMENT.format(name=name, hint=hint, builtins=", ".join(builtins))


def parse_spec(spec_file: Path) -> AssignmentSpec:
    """Parse and validate one `assignment.toml`."""
    try:
        data = tomllib.loads(spec_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(messages.SPEC_UNREADABLE.format(file=spec_file, problem=exc)) from exc
    return _Validator(spec_file).assignment(data)


class _Validator:
    def __init__(self, spec_file: Path) -> None:
        self.file = spec_file
        self.folder = spec_file.parent

    def fail(self, field: str, problem: str) -> SpecError:
        return SpecError(messages.SPEC_FIELD.format(file=self.file, field=field, problem=problem))

    def assignment(self, data: dict[str, Any]) -> AssignmentSpec:
        self.unknown_keys(data, _TOP_KEYS, "")
        name = self.string(data, "name", "name")
        if name != self.folder.name:
            raise self.fail("name", f"is {name!r} but the folder is named {self.folder.name!r}; they must agree")
        reference_path = self.reference_path(self.string(data, "reference", "reference"))
        raw_exercises = data.get("exercises")
        if not isinstance(raw_exercises, list) or not raw_exercises:
            raise self.fail("exercises", "must be a non-empty array of tables ([[exercises]])")
        defined = _top_level_names(reference_path)
        exercises = tuple(self.exercise(raw, i, defined) for i, raw in enumerate(raw_exercises))
        self.no_duplicates(exercises)
        helpers = data.get("helpers")
        return AssignmentSpec(
            name=name,
            title=self.string(data, "title", "title"),
            source=self.string(data, "source", "source"),
            folder=self.folder,
            reference_path=reference_path,
            exercises=exercises,
            intro=self.string(data, "intro", "intro") if "intro" in data else "",
            helpers_path=self.file_in_folder(self.string(data, "helpers", "helpers")) if helpers is not None else None,
            preload=self.modules(data.get("preload", [])),
        )

    def modules(self, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail("preload", f"must be an array of module names; got {value!r}")
        for name in value:
            if not all(part.isidentifier() for part in name.split(".")):
                raise self.fail("preload", f"{name!r} is not a module name (e.g. 'scipy.signal')")
        return tuple(value)

    def exercise(self, raw: Any, index: int, defined: set[str]) -> ExerciseSpec:
        where = f"exercises[{index}]"
        if not isinstance(raw, dict):
            raise self.fail(where, "must be a table")
        self.unknown_keys(raw, _EXERCISE_KEYS, where + ".")
        exercise_id = self.string(raw, "id", f"{where}.id")
        if not exercise_id.isidentifier():
            raise self.fail(f"{where}.id", f"{exercise_id!r} is not a Python identifier (it names test_<id>.py)")
        symbols = self.symbols(raw.get("symbols"), f"{where}.symbols")
        reference = self.names(raw.get("reference", [s.name for s in symbols]), f"{where}.reference")
        for ref_name in reference:
            if ref_name not in defined:
                raise self.fail(f"{where}.reference", f"{ref_name!r} is not defined in {self.reference_file}")
        return ExerciseSpec(
            id=exercise_id,
            title=self.string(raw, "title", f"{where}.title"),
            symbols=symbols,
            points=self.points(raw.get("points"), f"{where}.points"),
            reference=reference,
            forbidden=self.dotted_names(raw.get("forbidden", []), f"{where}.forbidden"),
            statement=self.statement(raw, exercise_id, f"{where}.statement"),
        )

    def statement(self, raw: dict[str, Any], exercise_id: str, field: str) -> str:
        """The `statement` text, else `statements/<id>.md` beside the toml, else none."""
        if "statement" in raw:
            return self.string(raw, "statement", field).strip()
        path = self.folder / STATEMENTS_DIR / f"{exercise_id}.md"
        try:
            return path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return ""
        except (OSError, UnicodeDecodeError) as exc:
            raise self.fail(field, f"could not be read from {path}: {exc}") from exc

    def symbols(self, raw: Any, field: str) -> tuple[SymbolSpec, ...]:
        if not isinstance(raw, dict) or not raw:
            raise self.fail(field, 'must be a non-empty table of name = "function" | "class"')
        result = []
        for name, kind in raw.items():
            if not name.isidentifier():
                raise self.fail(f"{field}.{name}", "is not a Python identifier")
            if kind not in _KINDS:
                raise self.fail(f"{field}.{name}", f"kind must be one of {', '.join(_KINDS)}; got {kind!r}")
            result.append(SymbolSpec(name=name, kind=kind))
        return tuple(result)

    def points(self, raw: Any, field: str) -> float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw <= 0:
            raise self.fail(field, f"must be a positive number; got {raw!r}")
        return float(raw)

    def names(self, raw: Any, field: str) -> tuple[str, ...]:
        if not isinstance(raw, list) or not all(isinstance(n, str) and n.isidentifier() for n in raw):
            raise self.fail(field, f"must be a list of Python identifiers; got {raw!r}")
        return tuple(raw)

    def dotted_names(self, raw: Any, field: str) -> tuple[str, ...]:
        ok = isinstance(raw, list) and all(
            isinstance(n, str) and all(part.isidentifier() for part in n.split(".")) for n in raw
        )
        if not ok:
            raise self.fail(
                field, f"must be a list of dotted names such as 'torch.nn.functional.cross_entropy'; got {raw!r}"
            )
        return tuple(raw)

    def string(self, data: dict[str, Any], key: str, field: str) -> str:
        value = data.get(key)
        if value is None:
            raise self.fail(field, "is required")
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, f"must be a non-empty string; got {value!r}")
        return value

    def unknown_keys(self, data: dict[str, Any], allowed: set[str], prefix: str) -> None:
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise self.fail(prefix + unknown[0], f"is not a known field (known: {', '.join(sorted(allowed))})")

    def no_duplicates(self, exercises: tuple[ExerciseSpec, ...]) -> None:
        seen: set[str] = set()
        for index, exercise in enumerate(exercises):
            if exercise.id in seen:
                raise self.fail(f"exercises[{index}].id", f"{exercise.id!r} is used by more than one exercise")
            seen.add(exercise.id)

    def reference_path(self, relative: str) -> Path:
        # Relative to the assignment folder; an older spec's path relative to the folder's grandparent (the
        # `assignments/<name>/` + `reference_solutions/` layout) is still found.
        self.reference_file = relative
        path = (self.folder / relative).resolve()
        legacy = (self.folder.parent.parent / relative).resolve()
        if not path.is_file() and legacy.is_file():
            return legacy
        if not path.is_file():
            raise self.fail("reference", f"{relative!r} does not exist (looked for {path})")
        return path

    def file_in_folder(self, relative: str) -> Path:
        path = (self.folder / relative).resolve()
        if not path.is_file():
            raise self.fail("helpers", f"{relative!r} does not exist (looked for {path})")
        return path


def _top_level_names(path: Path) -> set[str]:
    """Names a module defines at top level, found without importing it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names
