"""The reference solutions as notebook code: what a master notebook holds between its solution markers, and what
a student bundle records answers with."""

from __future__ import annotations

import ast
from collections.abc import Sequence

from autograder.spec import AssignmentSpec

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"


def _with_solution_markers(source: str, names: Sequence[str]) -> tuple[str, str]:
    """(header, exercise code) of a reference module: the exercise's definitions with each function body (after
    its docstring) between BEGIN/END SOLUTION, so that the student version keeps signatures and docstrings."""
    tree = ast.parse(source)
    lines = source.splitlines()
    blocks = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
            start = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
            blocks.append((start, node.end_lineno or node.lineno, node))
    marked = []
    for start, end, node in blocks:
        chunk = lines[start:end]
        functions = (
            [node] if isinstance(node, ast.FunctionDef) else [n for n in node.body if isinstance(n, ast.FunctionDef)]
        )
        inserts: list[tuple[int, int, str]] = []
        for fn in functions:
            body = fn.body[1:] if ast.get_docstring(fn) is not None and len(fn.body) > 1 else fn.body
            first, last = body[0].lineno - 1 - start, (fn.end_lineno or fn.lineno) - start
            indent = " " * body[0].col_offset
            inserts.append((first, last, indent))
        for first, last, indent in sorted(inserts, reverse=True):
            chunk = [
                *chunk[:first],
                f"{indent}{BEGIN}",
                *chunk[first:last],
                f"{indent}{END}",
                *chunk[last:],
            ]
        marked.append("\n".join(chunk))
    header = [
        ast.get_source_segment(source, n) or ""
        for n in tree.body
        if isinstance(n, (ast.Import, ast.ImportFrom, ast.Assign))
    ]
    return "\n".join(header), "\n\n\n".join(marked)


def solution_cells(spec: AssignmentSpec) -> tuple[str, dict[str, str]]:
    """The reference solutions as notebook code: a header cell and one cell per exercise (with markers)."""
    source = spec.reference_path.read_text(encoding="utf-8")
    header = ""
    cells = {}
    for exercise in spec.exercises:
        header, code = _with_solution_markers(source, exercise.symbol_names)
        cells[exercise.id] = code
    return header, cells


def unmarked(code: str) -> str:
    """Solution code without its markers: what runs."""
    return "\n".join(line for line in code.splitlines() if line.strip() not in (BEGIN, END))


def solution_sources(spec: AssignmentSpec) -> list[str]:
    """The reference solutions as the cells of a notebook that solved every exercise: header, then each exercise."""
    header, cells = solution_cells(spec)
    return [header, *(unmarked(c) for c in cells.values())]
