"""The reference's answers to the public checks, recorded when a student bundle is built and replayed on the
student's machine, where the reference's code is absent.

A bundle's `reference.py` is a stub: each reference name is a `Recorded` handle. While building, the stub's book is
a `Recorder` that calls the real reference and keeps every answer under a digest of the call (its name, its
arguments' values and, where the answer depends on it, torch's global random state); on the student's machine it
is a `Replayer` that gives the same answers from the recording. Objects an answer holds that are not plain data
(a model the reference builds) come back as handles too, whose attribute reads and method calls are recorded
in order. What a call does to its arguments (a model trained in place) and to the global random state is replayed.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import inspect
import os
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

RECORDING_FILE = "recording.pt"
FORMAT = 1
ROOT = "reference"

NOT_RECORDED = (
    "This check needs the reference's answer to {call}, which the student bundle did not record for these inputs "
    "(the bundle answers only the inputs its checks used when it was built). Ask your instructor for an up-to-date "
    "bundle; your submission is graded with the full checks anyway."
)
UNRECORDABLE_VALUE = "{what} cannot be recorded for a student bundle: values of type {kind} have no stable digest"
NOT_A_RECORDING = "{path} is not a student bundle's recording (format {found!r}, expected {expected})"


class NotRecorded(AssertionError):
    """A call the recording does not answer; an assertion, so that the student reads the message."""


class Unrecordable(ValueError):
    pass


# -- digests --------------------------------------------------------------------------------------------------------
def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


class _Digest:
    """A sha256 over a canonical rendering of values: equal values give equal digests in any process."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def tag(self, text: str) -> None:
        data = text.encode()
        self.hash.update(struct.pack("<I", len(data)) + data)

    def add(self, value: Any, what: str = "an argument") -> None:  # noqa: C901 - one branch per kind of value
        if isinstance(value, Recorded):
            self.tag(f"handle:{value._id}:{value._book.version(value)}")
        elif value is None or isinstance(value, (bool, int, float, complex, str)):
            self.tag(f"{type(value).__name__}:{value!r}")
        elif isinstance(value, bytes):
            self.tag("bytes")
            self.hash.update(value)
        elif isinstance(value, torch.Tensor):
            self.tag(f"tensor:{value.dtype}:{tuple(value.shape)}:{value.layout}")
            self.hash.update(_tensor_bytes(value))
        elif isinstance(value, torch.nn.Module):
            self.tag(f"module:{type(value).__module__}.{type(value).__qualname__}:{value.training}:{value!r}")
            for name, tensor in value.state_dict().items():
                self.tag(name)
                self.add(tensor)
        elif isinstance(value, torch.Generator):
            self.tag("generator")
            self.add(value.get_state())
        elif isinstance(value, (torch.dtype, torch.device, torch.Size)):
            self.tag(f"{type(value).__name__}:{value}")
        elif isinstance(value, (tuple, list)):
            self.tag(f"{type(value).__name__}:{len(value)}")
            for item in value:
                self.add(item, what)
        elif isinstance(value, dict):
            self.tag(f"dict:{len(value)}")
            for key, item in value.items():
                self.add(key, what)
                self.add(item, what)
        elif callable(value) and hasattr(value, "__qualname__"):
            self.tag(f"callable:{getattr(value, '__module__', '')}.{value.__qualname__}")
        elif type(value).__module__ == "numpy":
            self.tag(f"numpy:{type(value).__name__}:{getattr(value, 'dtype', '')}:{getattr(value, 'shape', '')}")
            self.hash.update(value.tobytes() if hasattr(value, "tobytes") else repr(value).encode())
        else:
            raise Unrecordable(UNRECORDABLE_VALUE.format(what=what, kind=type(value).__name__))

    def hexdigest(self) -> str:
        return self.hash.hexdigest()[:32]


def digest(*parts: Any) -> str:
    d = _Digest()
    for part in parts:
        d.add(part)
    return d.hexdigest()


def _rng_digest() -> str:
    return digest(torch.get_rng_state())


# -- encoding answers -----------------------------------------------------------------------------------------------
_DATA = (type(None), bool, int, float, complex, str, bytes, torch.Tensor, torch.dtype, torch.device)


def _is_data(value: Any) -> bool:
    if isinstance(value, _DATA):
        return True
    if isinstance(value, (tuple, list)):
        return all(_is_data(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and _is_data(v) for k, v in value.items())
    return False


def _plain_tensor(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().cpu().clone()


def _devices(args: Any) -> torch.device | None:
    """The device of the first tensor among a call's arguments: where a recorded answer goes back to."""
    stack = [args]
    while stack:
        value = stack.pop(0)
        if isinstance(value, torch.Tensor):
            return value.device
        if isinstance(value, (tuple, list)):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
    return None


def _to_device(value: Any, device: torch.device | None) -> Any:
    if device is None or device.type == "cpu":
        return value
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(_to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value


# -- handles --------------------------------------------------------------------------------------------------------
class Recorded:
    """A reference name, or an object a reference call returned: calls and attribute reads go to its book."""

    def __init__(self, book: Book, handle_id: str, label: str, root: str) -> None:
        object.__setattr__(self, "_book", book)
        object.__setattr__(self, "_id", handle_id)
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_root", root)  # the handle whose state its operations share (a model's layers)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._book.call(self, "", args, kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._book.attribute(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"{self._label}: the checks may not set attributes on the reference's objects")

    def __repr__(self) -> str:
        return f"<recorded {self._label}>"


class _Method:
    """A method read from a handle, called later: `ours.state_dict()`."""

    def __init__(self, owner: Recorded, name: str) -> None:
        self.owner, self.name = owner, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.owner._book.call(self.owner, self.name, args, kwargs)


@dataclass
class Book:
    """Where handles send their operations: the recording, and the order of operations on each handle."""

    entries: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)  # operations so far on each root handle
    handles: dict[str, int] = field(default_factory=dict)  # handles made so far from each call key, this check
    check: str = ""

    def function(self, name: str) -> Recorded:
        return Recorded(self, f"{ROOT}.{name}", f"reference.{name}", "")

    def version(self, handle: Recorded) -> int:
        return self.versions.get(handle._root, 0) if handle._root else 0

    def _new_check(self) -> None:
        """Handles and their order are per check (pytest names the running test in the environment)."""
        current = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
        if current != self.check:
            self.check, self.versions, self.handles = current, {}, {}

    def _key(self, handle: Recorded, op: str, args: Any, kwargs: Any) -> str:
        label = f"{handle._label}.{op}" if op else handle._label
        d = _Digest()
        d.tag(f"{handle._id}:{self.version(handle)}:{op}")
        d.add(args, f"An argument of {label}")
        d.add(dict(sorted(kwargs.items())), f"A keyword argument of {label}")
        if handle._root:
            self.versions[handle._root] = self.version(handle) + 1
        return d.hexdigest()

    def _handle_id(self, key: str) -> str:
        count = self.handles.get(key, 0)
        self.handles[key] = count + 1
        return f"{key}#{count}"

    def call(self, handle: Recorded, op: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError

    def attribute(self, handle: Recorded, name: str) -> Any:
        raise NotImplementedError


def _mutable_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for index, value in enumerate(args):
        if isinstance(value, (torch.Tensor, torch.nn.Module, torch.Generator)):
            yield str(index), value
    for name, value in kwargs.items():
        if isinstance(value, (torch.Tensor, torch.nn.Module, torch.Generator)):
            yield name, value


def _state(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return _plain_tensor(value)
    if isinstance(value, torch.nn.Module):
        return {k: _plain_tensor(v) for k, v in value.state_dict().items()}
    return value.get_state().clone()


def _restore(value: Any, state: Any) -> None:
    if isinstance(value, torch.Tensor):
        with torch.no_grad():
            value.copy_(state.to(value.device))
    elif isinstance(value, torch.nn.Module):
        value.load_state_dict(state)
    elif isinstance(value, torch.Generator):
        value.set_state(state)


# -- building: the recorder -----------------------------------------------------------------------------------------
@dataclass
class Site:
    """Where a check called the reference, and the call's key, per submission graded while recording."""

    check: str
    where: str
    keys: dict[str, str] = field(default_factory=dict)


class Recorder(Book):
    """Calls the real reference and keeps its answers; the objects it answers with stay real behind handles."""

    def __init__(self, reference: ModuleType) -> None:
        super().__init__()
        self.reference = reference
        self.objects: dict[str, Any] = {}
        self.sites: dict[tuple[str, str, int], Site] = {}
        self.seen: dict[tuple[str, str], int] = {}

    def _target(self, handle: Recorded, op: str) -> Any:
        base = getattr(self.reference, handle._id.split(".", 1)[1]) if not handle._root else self.objects[handle._id]
        return getattr(base, op) if op else base

    def _note_site(self, key: str) -> None:
        """Remember which line of which check made this call, to find calls whose inputs vary by submission."""
        frame = sys._getframe(1)
        here = os.path.abspath(__file__)
        while frame is not None and os.path.abspath(frame.f_code.co_filename) == here:
            frame = frame.f_back  # type: ignore[assignment]
        where = f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}" if frame is not None else "?"
        check, _, submission = _split_check(self.check)
        count = self.seen.get((self.check, where), 0)
        self.seen[(self.check, where)] = count + 1
        site = self.sites.setdefault((check, where, count), Site(check, where))
        site.keys[submission] = key

    def call(self, handle: Recorded, op: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self._new_check()
        key = self._key(handle, op, args, kwargs)
        self._note_site(key)
        target = self._target(handle, op)
        before = torch.get_rng_state()
        probe = None if handle._root else _copy_or_none((args, kwargs))
        result = target(*args, **kwargs)
        if inspect.isgenerator(result) or isinstance(result, (map, filter, zip)):
            result = list(result)
        after = torch.get_rng_state()
        entry: dict[str, Any] = {"mutated": {n: _state(v) for n, v in _mutable_arguments(args, kwargs)}}
        if not torch.equal(before, after):
            entry["rng"] = after.clone()
            if not self._ignores_prior_rng(target, probe, result, after):
                # The answer depends on the random state the call found: key it by that state too.
                self.entries[key] = {"depends_on_rng": True}
                key = f"{key}:{digest(before)}"
        answer, encoded = self._encode(result, handle, key)
        entry["result"] = encoded
        self.entries[key] = entry
        return answer

    def _ignores_prior_rng(self, target: Any, probe: Any, result: Any, after: torch.Tensor) -> bool:
        """Whether a call that moved the global random state seeds it itself (same answer from another state)."""
        if probe is None:
            return False
        try:
            torch.manual_seed(0x5EED)
            again = target(*probe[0], **probe[1])
            if inspect.isgenerator(again):
                again = list(again)
            return _is_data(result) and digest(again) == digest(result) and torch.equal(torch.get_rng_state(), after)
        except Exception:
            return False
        finally:
            torch.set_rng_state(after)

    def attribute(self, handle: Recorded, name: str) -> Any:
        self._new_check()
        key = self._key(handle, f"getattr:{name}", (), {})
        value = self._target(handle, name)
        if inspect.ismethod(value) or inspect.isbuiltin(value) or type(value).__name__ == "method-wrapper":
            self.entries[key] = {"method": True}
            return _Method(handle, name)
        answer, encoded = self._encode(value, handle, key)
        self.entries[key] = {"result": encoded}
        return answer

    def _encode(self, value: Any, receiver: Recorded, key: str) -> tuple[Any, Any]:
        """(what the check gets, what the recording keeps): data as it is, any other object behind a handle."""
        if receiver._root and value is self.objects.get(receiver._id):
            return receiver, {"handle": receiver._id}
        if _is_data(value):
            return value, {"data": _plain_data(value)}
        if isinstance(value, (tuple, list)):
            pairs = [self._encode(v, receiver, f"{key}/{i}") for i, v in enumerate(value)]
            return type(value)(p[0] for p in pairs), {"sequence": type(value).__name__, "items": [p[1] for p in pairs]}
        handle_id = self._handle_id(key)
        self.objects[handle_id] = value
        label = f"{receiver._label}(...)"
        root = receiver._root or handle_id
        return Recorded(self, handle_id, label, root), {"handle": handle_id, "label": label, "root": root}

    def recording(self) -> dict[str, Any]:
        return {"format": FORMAT, "entries": self.entries}


def _copy_or_none(value: Any) -> Any:
    try:
        return copy.deepcopy(value)
    except Exception:  # an argument that will not copy: the call is then keyed by the random state it found
        return None


_recorders: dict[str, Recorder] = {}


def recorder_for(reference_path: str) -> Recorder:
    """The recorder of a reference module (imported from its file once): what a recording stub asks for, and
    what the bundle builder reads the answers from after the checks ran."""
    if reference_path not in _recorders:
        spec = importlib.util.spec_from_file_location("_recorded_reference", reference_path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _recorders[reference_path] = Recorder(module)
    return _recorders[reference_path]


def forget_recorder(reference_path: str) -> Recorder | None:
    return _recorders.pop(reference_path, None)


def _plain_data(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return _plain_tensor(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_plain_data(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain_data(v) for k, v in value.items()}
    return value


def _split_check(nodeid: str) -> tuple[str, str, str]:
    """(check without the submission, file, submission id) of a pytest node id such as `f.py::t[8-5-submission0]`."""
    file = nodeid.split("::", 1)[0]
    if "[" not in nodeid:
        return nodeid, file, ""
    name, params = nodeid[:-1].split("[", 1)
    ids = params.split("-")
    submission = next((i for i in ids if i.startswith("submission")), "")
    rest = [i for i in ids if i != submission]
    return (f"{name}[{'-'.join(rest)}]" if rest else name), file, submission


def varying_sites(recorder: Recorder) -> list[Site]:
    """Calls from the same line of the same check whose inputs differed between the submissions recorded."""
    return [site for site in recorder.sites.values() if len(set(site.keys.values())) > 1]


# -- the student's side: the replayer -------------------------------------------------------------------------------
class Replayer(Book):
    """Answers the checks' reference calls from a recording."""

    def __init__(self, entries: dict[str, Any]) -> None:
        super().__init__(entries=entries)

    @classmethod
    def load(cls, stub_file: str) -> Replayer:
        path = Path(stub_file).with_name(RECORDING_FILE)
        data = torch.load(path, weights_only=True)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise ValueError(NOT_A_RECORDING.format(path=path, found=found, expected=FORMAT))
        return cls(data["entries"])

    def _entry(self, handle: Recorded, op: str, key: str) -> dict[str, Any]:
        entry = self.entries.get(key)
        if entry is not None and entry.get("depends_on_rng"):
            entry = self.entries.get(f"{key}:{_rng_digest()}")
        if entry is None:
            call = f"{handle._label}.{op}(...)" if op else f"{handle._label}(...)"
            raise NotRecorded(NOT_RECORDED.format(call=call))
        return entry

    def call(self, handle: Recorded, op: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self._new_check()
        entry = self._entry(handle, op, self._key(handle, op, args, kwargs))
        mutable = dict(_mutable_arguments(args, kwargs))
        for name, state in entry.get("mutated", {}).items():
            if name in mutable:
                _restore(mutable[name], state)
        if "rng" in entry:
            torch.set_rng_state(entry["rng"])
        return self._decode(entry["result"], handle, _devices((args, kwargs)))

    def attribute(self, handle: Recorded, name: str) -> Any:
        self._new_check()
        entry = self._entry(handle, f"getattr:{name}", self._key(handle, f"getattr:{name}", (), {}))
        if entry.get("method"):
            return _Method(handle, name)
        return self._decode(entry["result"], handle, None)

    def _decode(self, encoded: dict[str, Any], receiver: Recorded, device: torch.device | None) -> Any:
        if "data" in encoded:
            return _to_device(encoded["data"], device)
        if "items" in encoded:
            items = [self._decode(item, receiver, device) for item in encoded["items"]]
            return tuple(items) if encoded["sequence"] == "tuple" else items
        if encoded["handle"] == receiver._id:
            return receiver
        return Recorded(self, encoded["handle"], encoded["label"], encoded["root"])


def stub_source(names: list[str], recorder_line: str) -> str:
    """A bundle's `reference.py`: one handle per reference name, and no reference code."""
    lines = [
        '"""The reference\'s answers to the public checks, recorded when this bundle was built; no reference code."""',
        "",
        recorder_line,
        "",
        *(f"{name} = _book.function({name!r})" for name in names),
    ]
    return "\n".join(lines) + "\n"


REPLAY_LINE = "from autograder.student.recording import Replayer\n\n_book = Replayer.load(__file__)"


def record_line(reference_path: Path) -> str:
    return f"from autograder.student.recording import recorder_for\n\n_book = recorder_for({str(reference_path)!r})"
