"""What of an assignment's check files and helpers a student bundle may hold: the public checks and the
module-level code they use, nothing that only hidden checks use (their code and their names stay out)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Extracted:
    source: str  # the kept code, "" when nothing is kept
    kept_tests: tuple[str, ...]  # names of the test functions kept
    dropped_tests: tuple[str, ...]  # names of the test functions left out (hidden checks)
    helpers_used: frozenset[str]  # attributes the kept code reads from the `helpers` fixture


def is_public(node: ast.AST) -> bool:
    """Whether a test function carries `@pytest.mark.public` (or `@mark.public`)."""
    for decorator in getattr(node, "decorator_list", []):
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute) and target.attr == "public":
            inner = target.value
            if isinstance(inner, ast.Attribute) and inner.attr == "mark" or isinstance(inner, ast.Name):
                return True
    return False


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    return set()


def _used_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _segment(lines: list[str], node: ast.stmt) -> str:
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return "\n".join(lines[first - 1 : node.end_lineno or node.lineno])


def extract(source: str, is_root: Callable[[ast.stmt], bool], docstring: str) -> Extracted:
    """The statements `is_root` picks (top-level tests or definitions), every top-level definition they use,
    transitively, and the imports; comments inside kept statements stay, the module's docstring is replaced."""
    tree = ast.parse(source)
    lines = source.splitlines()
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    body = [n for n in body if not (isinstance(n, ast.ImportFrom) and n.module == "__future__")]
    roots = [n for n in body if is_root(n)]
    needed = set().union(*(_used_names(n) for n in roots)) if roots else set()
    kept = {id(n) for n in roots}
    changed = True
    while changed:  # definitions used by what is kept, and what they use in turn
        changed = False
        for node in body:
            if id(node) not in kept and not isinstance(node, (ast.Import, ast.ImportFrom)):
                if _bound_names(node) & needed:
                    kept.add(id(node))
                    needed |= _used_names(node)
                    changed = True
    imports = [n for n in body if isinstance(n, (ast.Import, ast.ImportFrom)) and _bound_names(n) & needed]
    chosen = [n for n in body if id(n) in kept]
    tests = [n for n in body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    helpers_used = {
        n.attr
        for node in chosen
        for n in ast.walk(node)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "helpers"
    }
    parts = [f'"""{docstring}"""', "\n".join(_segment(lines, n) for n in imports)]
    parts += [_segment(lines, n) for n in chosen]
    text = "\n\n\n".join(p for p in parts if p) + "\n" if chosen else ""
    return Extracted(
        source=text,
        kept_tests=tuple(n.name for n in tests if id(n) in kept),
        dropped_tests=tuple(n.name for n in tests if id(n) not in kept),
        helpers_used=frozenset(helpers_used),
    )


def public_checks(source: str, exercise: str) -> Extracted:
    """A check file's public tests, with what they use."""

    def is_root(node: ast.stmt) -> bool:
        return isinstance(node, ast.FunctionDef) and node.name.startswith("test_") and is_public(node)

    return extract(source, is_root, f"The public checks of {exercise} (written by autograder build for students).")


def helpers_subset(source: str, names: set[str] | frozenset[str]) -> Extracted:
    """The helpers module's definitions that the public checks use."""

    def is_root(node: ast.stmt) -> bool:
        return bool(_bound_names(node) & names) and not isinstance(node, (ast.Import, ast.ImportFrom))

    return extract(source, is_root, "What the public checks use of the assignment's helpers.")
