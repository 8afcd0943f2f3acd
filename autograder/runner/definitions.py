"""Which top-level statements of a cell are definitions, the only ones run by default."""

from __future__ import annotations

import ast
import copy
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
    names: tuple[str, ...] = ()  # the names it binds: what is missing if it fails
    # A decorated def or class without its decorators: run when the decorated one fails (a course's widget
    # decorator such as `@widgets.interact(layout=my_layout)` must not hide the student's function).
    undecorated: CodeType | None = None


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
        Statement(
            _compiled(node, filename), node.lineno, kind_of(node), bound_names(node), _undecorated(node, filename)
        )  # fmt: skip
        for node in tree.body
    ]


def _compiled(node: ast.stmt, filename: str) -> CodeType:
    return compile(ast.Module(body=[node], type_ignores=[]), filename, "exec")


def _undecorated(node: ast.stmt, filename: str) -> CodeType | None:
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or not node.decorator_list:
        return None
    bare = copy.copy(node)
    bare.decorator_list = []
    return _compiled(bare, filename)


def bound_names(node: ast.stmt) -> tuple[str, ...]:
    """The names a top-level statement binds (a def's or class's name, what an import or assignment binds)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return (node.name,)
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return tuple(a.asname or a.name.split(".")[0] for a in node.names if a.name != "*")
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return tuple(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    if isinstance(node, (ast.Try, ast.If, ast.With, ast.For, ast.While)):
        inner = [s for field in ("body", "orelse", "finalbody") for s in getattr(node, field, [])]
        inner += [s for h in getattr(node, "handlers", []) for s in h.body]
        return tuple(dict.fromkeys(name for s in inner for name in bound_names(s)))
    return ()
