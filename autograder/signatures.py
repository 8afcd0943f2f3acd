"""Whether a student's function or class can be called the way its exercise calls the reference: a function
written with a released tutorial's parameter names where the assignment asks for others (`n_epochs` for
`n_iter`) is told so once, with both signatures, rather than with a TypeError per check."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

_KINDS = {
    kind.name: kind
    for kind in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.VAR_KEYWORD,
    )
}
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
# How CPython words a call whose arguments do not fit the function's parameters.
BINDING_ERRORS = (
    "unexpected keyword argument",
    "required positional argument",
    "required keyword-only argument",
    "positional argument but",
    "positional arguments but",
    "multiple values for argument",
    "positional-only arguments passed as keyword",
)


def from_description(parameters: Any) -> inspect.Signature | None:
    """The signature a worker described (`describe("parameters")`), which is hostile data: None where it is not
    a list of {"name", "kind", "default"} that makes a valid signature."""
    if not isinstance(parameters, list) or len(parameters) > 200:
        return None
    made = []
    try:
        for p in parameters:
            kind = _KINDS[p["kind"]]
            default = inspect.Parameter.empty if p.get("default") is None else _Default(str(p["default"])[:80])
            made.append(inspect.Parameter(str(p["name"]), kind, default=default))
        return inspect.Signature(made)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


class _Default:
    """A default value as the worker showed it: only its presence matters here."""

    def __init__(self, shown: str) -> None:
        self.shown = shown

    def __repr__(self) -> str:
        return self.shown


def mismatch(expected: inspect.Signature, got: inspect.Signature) -> str | None:
    """Why a call the exercise may make, as `expected` allows it, does not fit `got`; None where every such call
    fits. The calls tried: every required parameter (positionally where it may be), then also every optional
    one by keyword. Compatible differences (extra optional parameters, other defaults, *args, **kwargs) pass."""
    args: list[object] = []
    required: dict[str, object] = {}
    optional: dict[str, object] = {}
    for p in expected.parameters.values():
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if p.default is inspect.Parameter.empty:
            if p.kind in _POSITIONAL:
                args.append(object())
            else:
                required[p.name] = object()
        elif p.kind is not inspect.Parameter.POSITIONAL_ONLY:
            optional[p.name] = object()
    for kwargs in (required, {**required, **optional}):
        try:
            got.bind(*args, **kwargs)
        except TypeError as exc:
            return str(exc)
    return None


def shown(signature: inspect.Signature) -> str:
    """A signature as the student sees it, defaults left out (they are the reference's own values)."""
    parts = [
        p.replace(annotation=inspect.Parameter.empty,
                  default=_Default("...") if p.default is not inspect.Parameter.empty else p.default)
        for p in signature.parameters.values()
    ]  # fmt: skip
    return str(signature.replace(parameters=parts, return_annotation=inspect.Signature.empty))


def is_binding_error(message: str) -> bool:
    return any(words in message for words in BINDING_ERRORS)


def reference_signatures(path: Path) -> dict[str, inspect.Signature]:
    """The signatures of a reference module's top-level functions and classes (a class's `__init__` less its
    first parameter), read from its source: the module itself is never touched (in a student bundle it is a
    recording, which must not be asked anything its checks did not ask)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return {}
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = _from_arguments(node.args)
        elif isinstance(node, ast.ClassDef):
            init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
            if init is not None:
                signature = _from_arguments(init.args)
                found[node.name] = signature.replace(parameters=list(signature.parameters.values())[1:])
    return found


def _from_arguments(arguments: ast.arguments) -> inspect.Signature:
    P = inspect.Parameter
    positional = [(a, P.POSITIONAL_ONLY) for a in arguments.posonlyargs] + [
        (a, P.POSITIONAL_OR_KEYWORD) for a in arguments.args
    ]
    first_default = len(positional) - len(arguments.defaults)
    made = [P(a.arg, kind, default=_Default("...") if i >= first_default else P.empty)
            for i, (a, kind) in enumerate(positional)]  # fmt: skip
    if arguments.vararg:
        made.append(P(arguments.vararg.arg, P.VAR_POSITIONAL))
    for a, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
        made.append(P(a.arg, P.KEYWORD_ONLY, default=P.empty if default is None else _Default("...")))
    if arguments.kwarg:
        made.append(P(arguments.kwarg.arg, P.VAR_KEYWORD))
    return inspect.Signature(made)
