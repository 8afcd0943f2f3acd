"""Helpers for writing checks whose failures read as advice to a student.

Every failure has one shape: a headline in the student's terms, the inputs used, expected vs got, a hint.
Shape, dtype and device are compared before values, so a wrong shape is never reported as "not close".
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from autograder.messages import describe_value
from autograder.submission import parse_cell

T = TypeVar("T")


class CheckFailure(AssertionError):
    """A check's verdict with the message the student will read."""


def fail(headline: str, *, inputs: str = "", details: str = "", hint: str = "") -> None:
    lines = [headline]
    if inputs:
        lines.append(f"Inputs: {inputs}")
    if details:
        lines.append(details)
    if hint:
        lines.append(f"Hint: {hint}")
    raise CheckFailure("\n".join(lines))


def expect(condition: bool, headline: str, *, inputs: str = "", details: str = "", hint: str = "") -> None:
    if not condition:
        fail(headline, inputs=inputs, details=details, hint=hint)


def describe_inputs(seed: int | None = None, **named: Any) -> str:
    """'x (8, 5) float32, labels (8,) int64, seed 3'."""
    parts = [f"{name} {describe_value(value).removeprefix('tensor ')}" for name, value in named.items()]
    if seed is not None:
        parts.append(f"seed {seed}")
    return ", ".join(parts)


def expect_tensor(
    actual: Any,
    expected: torch.Tensor,
    *,
    what: str,
    inputs: str = "",
    hint: str = "",
    rtol: float | None = None,
    atol: float | None = None,
    check_dtype: bool = True,
    check_device: bool = False,
) -> None:
    """`actual` must be a tensor like `expected`: type, shape, dtype (and device), then values."""
    if not isinstance(actual, torch.Tensor):
        fail(f"{what} should be a tensor but is {describe_value(actual)}.", inputs=inputs, hint=hint)
    if actual.shape != expected.shape:
        fail(
            f"{what} has the wrong shape--got {tuple(actual.shape)}, expected {tuple(expected.shape)}.",
            inputs=inputs,
            hint=hint,
        )
    if check_dtype and actual.dtype != expected.dtype:
        fail(f"{what} has dtype {_dtype(actual)} but {_dtype(expected)} was expected.", inputs=inputs, hint=hint)
    if check_device and actual.device.type != expected.device.type:
        fail(f"{what} is on {actual.device} but should be on {expected.device}.", inputs=inputs, hint=hint)
    difference = value_difference(actual, expected, rtol=rtol, atol=atol)
    if difference:
        fail(f"{what} has the wrong values.", inputs=inputs, details=difference, hint=hint)


def expect_scalar(
    actual: Any,
    expected: float,
    *,
    what: str,
    inputs: str = "",
    hint: str = "",
    rtol: float = 1.3e-6,
    atol: float = 1e-5,
) -> None:
    """A number, or a tensor holding one number, close to `expected`."""
    if isinstance(actual, torch.Tensor):
        if actual.numel() != 1:
            fail(f"{what} should be a single number but has shape {tuple(actual.shape)}.", inputs=inputs, hint=hint)
        value = float(actual.detach().cpu().reshape(()).item())
    elif isinstance(actual, (int, float)) and not isinstance(actual, bool):
        value = float(actual)
    else:
        fail(f"{what} should be a number but is {describe_value(actual)}.", inputs=inputs, hint=hint)
    allowed = atol + rtol * abs(expected)
    if not abs(value - expected) <= allowed:
        fail(
            f"{what} is wrong.",
            inputs=inputs,
            details=f"Expected {expected:.6g} but got {value:.6g} (difference {abs(value - expected):.3g}, "
            f"up to {allowed:.1g} allowed).",
            hint=hint,
        )


def expect_like(actual: Any, expected: Any, *, what: str, inputs: str = "", hint: str = "") -> None:
    """`actual` must be like `expected`, whatever it is: a tensor (expect_tensor, at its dtype's tolerance), a
    number (expect_scalar), a tuple, list or dict of such (item by item, named by index or key), anything else
    equal. What generated checks compare with."""
    if isinstance(expected, torch.Tensor):
        expect_tensor(actual, expected.detach(), what=what, inputs=inputs, hint=hint)
    elif isinstance(expected, (tuple, list)):
        kind = type(expected).__name__
        expect(isinstance(actual, (tuple, list)) and len(actual) == len(expected),
               f"{what} should be a {kind} of {len(expected)} items but is {describe_value(actual)}.",
               inputs=inputs, hint=hint)  # fmt: skip
        for i, (got, want) in enumerate(zip(actual, expected, strict=True)):
            expect_like(got, want, what=f"{what}[{i}]", inputs=inputs, hint=hint)
    elif isinstance(expected, dict):
        expect(isinstance(actual, dict) and set(actual) == set(expected),
               f"{what} should be a dict with keys {sorted(map(str, expected))} but is {describe_value(actual)}.",
               inputs=inputs, hint=hint)  # fmt: skip
        for key, want in expected.items():
            expect_like(actual[key], want, what=f"{what}[{key!r}]", inputs=inputs, hint=hint)
    elif isinstance(expected, float) or (isinstance(expected, int) and not isinstance(expected, bool)):
        expect_scalar(actual, float(expected), what=what, inputs=inputs, hint=hint)
    else:
        expect(actual == expected, f"{what} is {describe_value(actual)}, expected {describe_value(expected)}.",
               inputs=inputs, hint=hint)  # fmt: skip


def recorded_tensor(dtype: str, shape: tuple[int, ...], data: str) -> torch.Tensor:
    """A tensor recorded by `autograder new --from`, from its raw bytes (base64): exactly the values it had."""
    import base64

    raw = bytearray(base64.b64decode(data))
    return torch.frombuffer(raw, dtype=getattr(torch, dtype)).reshape(shape).clone() if raw else torch.empty(
        shape, dtype=getattr(torch, dtype))  # fmt: skip


def bound_arguments(function: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """{parameter name: value} of a call, for describe_inputs; positional names where the signature hides them."""
    import inspect

    try:
        return dict(inspect.signature(function).bind(*args, **kwargs).arguments)
    except (TypeError, ValueError):
        return {**{f"arg{i}": a for i, a in enumerate(args)}, **kwargs}


def value_difference(actual: torch.Tensor, expected: torch.Tensor, *, rtol: float | None, atol: float | None) -> str:
    """'' when close; else how many elements differ, the first one, and the greatest difference. A tolerance left
    out is that of the less precise of the two dtypes (`default_tolerance`); the values are compared in float64
    (complex128), so the comparison itself rounds nothing."""
    default_rtol, default_atol = default_tolerance(actual.dtype, expected.dtype)
    rtol_ = default_rtol if rtol is None else rtol
    atol_ = default_atol if atol is None else atol
    wide = torch.complex128 if actual.is_complex() or expected.is_complex() else torch.float64
    a = actual.detach().to("cpu", wide)
    e = expected.detach().to("cpu", wide)
    bad = ~torch.isclose(a, e, rtol=rtol_, atol=atol_)
    count = int(bad.sum())
    if not count:
        return ""
    index = tuple(int(i) for i in bad.nonzero()[0])
    finite = torch.isfinite(a - e)
    greatest = float((a - e).abs()[finite].max()) if finite.any() else float("nan")
    first = f"at index {index}: expected {_number(e[index])}, got {_number(a[index])}"
    return (
        f"{count} of {a.numel()} values differ; first {first}. Greatest absolute difference {greatest:.3g} "
        f"(allowed: {atol_:.1g} + {rtol_:.1g} x |expected|)."
    )


# torch.testing's defaults: a result may differ from the reference by what rounding in that dtype allows, since a
# correct computation written differently (a hand-written weighted sum against nn.Linear) rounds differently.
_TOLERANCES = {
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
    torch.float32: (1.3e-6, 1e-5),
    torch.float64: (1e-7, 1e-7),
    torch.complex32: (1e-3, 1e-5),
    torch.complex64: (1.3e-6, 1e-5),
    torch.complex128: (1e-7, 1e-7),
}


def default_tolerance(*dtypes: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) for comparing values of these dtypes: the loosest of theirs; integers and booleans exactly."""
    pairs = [_TOLERANCES.get(dtype, (0.0, 0.0)) for dtype in dtypes]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


def _number(value: torch.Tensor) -> str:
    return f"{complex(value):.6g}" if value.is_complex() else f"{float(value):.6g}"


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


# What torch says when code mixes a CPU tensor into a GPU computation (a tensor made inside without a device,
# a detour through numpy).
_DEVICE_MIX = (
    "Expected all tensors to be on the same device",
    "should be the same or input should be a MKLDNN tensor",
    "can't convert cuda",
    "is on cpu, but expected",
    "Expected object of device type",
)


def on_any_device(device: torch.device, compare: Callable[[torch.device], T]) -> T:
    """`compare(device)`, or `compare(cpu)` where the student's code mixes devices on a GPU. Device handling is not
    what the exercises grade, and `--device cuda` must give the verdicts `--device cpu` gives: code that is right
    on the CPU is judged there."""
    from autograder.runner import StudentError

    try:
        return compare(device)
    except (StudentError, RuntimeError) as exc:  # RuntimeError: a student's CPU tensor met the check's GPU ones
        if device.type == "cpu" or not any(text in str(exc) for text in _DEVICE_MIX):
            raise
    return compare(torch.device("cpu"))


def parameter_shapes(remote_model: Any) -> dict[str, tuple[int, ...]]:
    """Names and shapes of a student's module parameters, in registration order."""
    info = remote_model.describe("parameter_shapes")
    return {name: tuple(shape) for name, shape in info.get("parameter_shapes", {}).items()}


def transplant(reference_model: torch.nn.Module, remote_model: Any, *, what: str, hint: str = "") -> None:
    """Load the reference model's weights into the student's model, matching parameters by order and shape,
    so both compute with the same weights whatever the student named their layers."""
    ours = [(n, tuple(p.shape)) for n, p in reference_model.named_parameters()]
    theirs = list(parameter_shapes(remote_model).items())
    if [s for _, s in theirs] != [s for _, s in ours]:
        fail(
            f"{what} does not have the expected layers.",
            details=f"Parameter shapes, in order--got {[s for _, s in theirs]}, expected {[s for _, s in ours]}.",
            hint=hint or "build the layers the exercise describes, in that order, with nn.Linear / nn.Conv2d.",
        )
    weights = {name: p.detach().clone() for (name, _), p in zip(theirs, reference_model.parameters(), strict=True)}
    remote_model.load_state_dict(weights, strict=False)


FORBIDDEN_DYNAMIC = {"getattr", "eval", "exec", "__import__", "import_module", "globals", "vars", "__dict__"}
# Ways around the run-time watch for forbidden calls (worker._ForbiddenWatch, a torch function mode).
TORCH_DISPATCH = {
    "DisableTorchFunction", "DisableTorchFunctionSubclass", "_pop_torch_function_stack",
    "_push_on_torch_function_stack", "TorchFunctionMode", "__torch_function__", "_set_torch_function_state",
}  # fmt: skip


def function_sources(cells: list[str], name: str) -> list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    """The top-level definition of `name` in the student's code and, transitively, the top-level functions and
    classes it refers to by name (a helper cannot hide a forbidden call)."""
    definitions: dict[str, Any] = {}
    for tree in (t for t in map(_parse_or_none, cells) if t is not None):
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                definitions[node.name] = node  # the last definition wins, as when the notebook runs
    found, todo = [], [name]
    while todo:
        current = todo.pop()
        node = definitions.pop(current, None)
        if node is None:
            continue
        found.append(node)
        todo.extend(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in definitions)
    return found


def forbidden_uses(cells: list[str], name: str, forbidden: tuple[str, ...]) -> list[str]:
    """Forbidden names (matched on their last part) and dynamic look-ups used by `name` or its helpers."""
    last_parts = {f.rsplit(".", 1)[-1] for f in forbidden}
    uses = []
    for definition in function_sources(cells, name):
        for node in ast.walk(definition):
            ident = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            line = getattr(node, "lineno", "?")
            if ident in last_parts:
                uses.append(f"{ident} (line {line} of {definition.name})")
            elif ident in FORBIDDEN_DYNAMIC:
                uses.append(f"{ident} (line {line} of {definition.name}: a dynamic look-up)")
            elif ident in TORCH_DISPATCH:
                uses.append(f"{ident} (line {line} of {definition.name}: changes how torch calls functions)")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in last_parts:
                uses.append(f"'{node.value}' (line {line} of {definition.name})")
    return uses


def forbidden_found(student: Any, name: str, forbidden: tuple[str, ...]) -> list[str]:
    """`forbidden_uses` in the student's source, and the forbidden functions their code called while this
    exercise's checks ran it, however it reached them (an alias, getattr, an autograd.Function): call the student's
    code first, then ask."""
    found = forbidden_uses(student.cells, name, forbidden)
    named = " ".join(found)
    for called in student.forbidden_calls:
        if called.rsplit(".", 1)[-1] + " " not in named + " ":
            found.append(f"{called} (called while your code ran)")
    return found


@functools.lru_cache(maxsize=256)  # the static checks of a submission parse the same cells, read-only
def _parse_or_none(chunk: str) -> ast.Module | None:
    return parse_cell(chunk)
