"""Which top-level statements of a cell are definitions, the only ones run by default."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from types import CodeType

# Expressions that only name or combine values: evaluating them runs no student function, no download,
# no training. Calls, comprehensions, awaits and yields are left out on purpose.
_CONSTANT_EXPRESSIONS = (
    ast.Constant,
    ast.Name,
    ast.Attribute,
    ast.Tuple,
    ast.List,
    ast.Set,
    ast.Dict,
    ast.UnaryOp,
    ast.BinOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Subscript,
    ast.Slice,
    ast.JoinedStr,
    ast.FormattedValue,
    ast.Starred,
    ast.Lambda,  # defining a lambda runs nothing; its body is not visited below
    ast.Load,
    ast.Store,
    ast.expr_context,
    ast.operator,
    ast.unaryop,
    ast.boolop,
    ast.cmpop,
    ast.arguments,
    ast.arg,
)


@dataclass(frozen=True)
class Statement:
    """One top-level statement to run, compiled on its own so that a failure stops only this statement."""

    code: CodeType
    lineno: int
    kind: str  # "import", "def", "class", "assign", "try", or "other" (only run with --execute all)


def is_constant_expression(node: ast.AST) -> bool:
    if isinstance(node, ast.Lambda):
        return all(is_constant_expression(d) for d in node.args.defaults + node.args.kw_defaults if d is not None)
    if not isinstance(node, _CONSTANT_EXPRESSIONS):
        return False
    return all(is_constant_expression(child) for child in ast.iter_child_nodes(node))


def kind_of(node: ast.stmt) -> str:
    """How a top-level statement counts: a definition kind, or 'other'."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return "import"
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return "def"
    if isinstance(node, ast.ClassDef):
        return "class"
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        value = node.value
        return "assign" if value is None or is_constant_expression(value) else "other"
    if isinstance(node, ast.Try):
        # `try: import x / except ImportError: ...` is a common guarded import; keep it if it only defines.
        parts = node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
        return "try" if all(kind_of(s) != "other" or isinstance(s, ast.Pass) for s in parts) else "other"
    return "other"


def split_statements(source: str, filename: str) -> list[Statement]:
    """The cell's top-level statements, compiled from their syntax trees (so `import x; fit()` splits
    into two statements); raises SyntaxError for a cell that does not parse."""
    tree = ast.parse(source, filename=filename)
    return [
        Statement(compile(ast.Module(body=[node], type_ignores=[]), filename, "exec"), node.lineno, kind_of(node))
        for node in tree.body
    ]
