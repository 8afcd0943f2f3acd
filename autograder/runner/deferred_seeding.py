"""Cheaper stacks for torch's deferred device calls.

Before CUDA (or XPU, MTIA) is initialised, `torch.manual_seed` queues the seeding of each of those devices for
when it is, together with `traceback.format_stack()` of the caller, shown only if the deferred call later fails.
Formatting a stack reads every frame's source line and, on Python 3.11, parses it for the error carets: ~1 ms a
device at the depth of a pytest check, ~3 ms for every `torch.manual_seed` a reference, a check or a student's
function calls, several times per submission (the largest single item in a profile of the realistic class).

`short_stacks()` has those three modules record the same frames (file, line, function) without reading source:
what is queued, and when it runs, does not change, only the text of that rare error loses its source lines.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import traceback
import types
from collections.abc import Iterator

_DEFERRING_MODULES = ("torch.cuda", "torch.xpu", "torch.mtia")


def _frames_without_source(f: types.FrameType | None = None, limit: int | None = None) -> list[str]:
    """`traceback.format_stack`'s frames, outermost first, without their source lines."""
    frame: types.FrameType | None = f if f is not None else sys._getframe(1)
    lines: list[str] = []
    while frame is not None and (limit is None or len(lines) < limit):
        code = frame.f_code
        lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}\n')
        frame = frame.f_back
    return lines[::-1]


class _ShortTraceback(types.ModuleType):
    """The traceback module, but for `format_stack`."""

    format_stack = staticmethod(_frames_without_source)

    def __getattr__(self, name: str) -> object:
        return getattr(traceback, name)


_SHORT = _ShortTraceback("traceback")


def _shorten() -> list[types.ModuleType]:
    """Point the deferring modules that use the real traceback module at the short one; returns those changed."""
    patched = []
    for name in _DEFERRING_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # an older torch without that device
            continue
        if getattr(module, "traceback", None) is traceback:
            module.traceback = _SHORT  # type: ignore[attr-defined]
            patched.append(module)
    return patched


@contextlib.contextmanager
def short_stacks() -> Iterator[None]:
    """Within: the deferring modules record stacks without source lines (see the module docstring). Nested or
    in a process where it is already in place, it changes nothing."""
    patched = _shorten()
    try:
        yield
    finally:
        for module in patched:
            module.traceback = traceback  # type: ignore[attr-defined]


def install_short_stacks() -> None:
    """For good, in a process that only grades (the fork server, and so every worker and scoring process). Not
    `short_stacks().__enter__()`: that context manager, once garbage, would run its `finally` and undo it."""
    _shorten()
