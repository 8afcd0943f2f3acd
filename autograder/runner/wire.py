"""What crosses the pipe between a scoring process and its worker, in both directions.

Requests (scoring process -> worker) are trusted: pickle, with tensors written as their raw bytes instead of
torch's own reduction (a storage pickled through `torch.save`, ~1 ms a tensor to read back).

Replies (worker -> scoring process) are not: the worker runs student code, which can write anything to the pipe.
A reply is pickled plain data only (None, bool, int, float, str, list, tuple, dict) and read by an unpickler
that resolves no global at all, so no byte sequence can make the scoring process call anything. A tensor travels
as a `bytearray` (a type `RequestHandler.encode` never lets student values be: they become handles) holding a short
header (dtype, shape, device) and the tensor's bytes; the reader checks the header against the bytes before it
builds the tensor. This replaced `torch.save` / `torch.load(weights_only=True)`, which gave the same guarantee at
~2 ms a reply (bench.floor).
"""

from __future__ import annotations

import io
import math
import pickle
from typing import Any

import torch

from autograder.text import shown

PROTOCOL = pickle.HIGHEST_PROTOCOL
_HEADER_ALIGN = 16  # the tensor's bytes start at a multiple of this, so any dtype can view them in place
_MAX_DIMS = 64
MAX_STRING = 65536  # characters of one string in a reply (the worker's own messages and reprs are far shorter)
_DTYPES = {str(d).removeprefix("torch."): d for d in vars(torch).values() if isinstance(d, torch.dtype)}


class BadReply(ValueError):
    """The bytes are not a reply this module wrote: the worker (its student code) sent something else."""


# -- tensors as bytes ---------------------------------------------------------------------------------------
def _tensor_bytes(tensor: torch.Tensor) -> memoryview:
    flat = tensor.detach().resolve_conj().resolve_neg().reshape(-1)
    if flat.device.type != "cpu":
        flat = flat.cpu()
    return memoryview(flat.contiguous().view(torch.uint8).numpy())  # type: ignore[arg-type]


def _payload(tensor: torch.Tensor) -> bytearray:
    """A tensor as header + bytes: `float32;3,4;cpu` padded to the alignment, then its elements in order."""
    dtype = str(tensor.dtype).removeprefix("torch.")
    header = f"{dtype};{','.join(str(n) for n in tensor.shape)};{tensor.device}\n".encode("ascii")
    header += b" " * (-len(header) % _HEADER_ALIGN)
    data = _tensor_bytes(tensor)
    payload = bytearray(len(header) + data.nbytes)
    payload[: len(header)] = header
    payload[len(header) :] = data
    return payload


def _tensor(payload: bytearray | bytes, devices: tuple[str, ...] = ("cpu", "cuda")) -> torch.Tensor:
    """The tensor `_payload` wrote, after checking that the header describes the bytes that follow it."""
    end = payload.find(b"\n", 0, 512)
    if end < 0:
        raise BadReply("a tensor without its header")
    try:
        dtype_name, shape_text, device_text = bytes(payload[:end]).decode("ascii").split(";")
        dtype = _DTYPES[dtype_name]
        shape = tuple(int(n) for n in shape_text.split(",")) if shape_text else ()
        device = torch.device(device_text)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise BadReply(f"a tensor with an unreadable header ({exc})") from None
    if len(shape) > _MAX_DIMS or any(n < 0 for n in shape) or device.type not in devices:
        raise BadReply("a tensor with an impossible shape or device")
    start = end + 1 + (-(end + 1) % _HEADER_ALIGN)
    count = math.prod(shape)
    if len(payload) - start != count * dtype.itemsize:
        raise BadReply(f"a tensor of shape {shape} whose bytes do not match it")
    if count == 0:
        tensor = torch.empty(shape, dtype=dtype)
    else:
        # A copy: its own, resizable storage, not the reply's buffer.
        tensor = torch.frombuffer(payload, dtype=dtype, count=count, offset=start).reshape(shape).clone()
    return tensor if device.type == "cpu" else tensor.to(device)


# -- requests: scoring process -> worker -----------------------------------------------------------------
def _storage_payload(tensor: torch.Tensor) -> tuple[pickle.PickleBuffer, str, int, tuple[int, ...], tuple[int, ...]]:
    """A tensor as torch's own pickling sends it: its whole storage (unpickled as a bytearray), and where in it
    the tensor lies."""
    storage = tensor.untyped_storage()
    if storage.device.type != "cpu":
        storage = storage.cpu()
    data = torch.empty(0, dtype=torch.uint8).set_(storage).numpy()
    dtype = str(tensor.dtype).removeprefix("torch.")
    where = int(tensor.storage_offset()), tuple(tensor.shape), tuple(tensor.stride())
    return pickle.PickleBuffer(data), dtype, *where  # type: ignore[arg-type]


def request_tensor(
    storage: bytearray,
    dtype: str,
    offset: int,
    shape: tuple[int, ...],
    stride: tuple[int, ...],
    device: str,
    requires_grad: bool,
    parameter: bool,
) -> torch.Tensor:
    """Rebuilds, in the worker, a tensor the scoring process sent (see `_RequestWriter`): the same values,
    shape, strides and offset in a storage of its own, as torch's pickling gives."""
    own = torch.frombuffer(storage, dtype=torch.uint8).clone() if storage else torch.empty(0, dtype=torch.uint8)
    tensor = torch.empty(0, dtype=_DTYPES[dtype]).set_(own.untyped_storage(), offset, shape, stride)
    if device != "cpu":
        tensor = tensor.to(device)
    if parameter:
        return torch.nn.Parameter(tensor, requires_grad=requires_grad)
    return tensor.requires_grad_(requires_grad)


class _RequestWriter(pickle.Pickler):
    """pickle, with tensors and parameters written as their storage's bytes instead of torch's reduction (which
    goes through `torch.save`). Like torch's, each tensor gets a copy of its storage: two views of one storage
    arrive as two tensors. Tensor subclasses, quantized, sparse and non-leaf tensors keep torch's reduction."""

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if (kind is torch.Tensor or kind is torch.nn.Parameter) and _plain(obj):
            storage, dtype, offset, shape, stride = _storage_payload(obj)
            parameter = kind is torch.nn.Parameter
            return request_tensor, (
                storage,
                dtype,
                offset,
                shape,
                stride,
                str(obj.device),
                obj.requires_grad,
                parameter,
            )
        return NotImplemented


def _plain(tensor: torch.Tensor) -> bool:
    return bool(
        tensor.layout == torch.strided
        and tensor.grad_fn is None
        and not tensor.is_quantized
        and not tensor.is_conj()
        and not tensor.is_neg()
        and not getattr(tensor, "__dict__", None)
        and tensor.device.type in ("cpu", "cuda")
    )


def dumps_request(request: Any) -> bytes:
    buffer = io.BytesIO()
    _RequestWriter(buffer, protocol=PROTOCOL).dump(request)
    return buffer.getvalue()


# -- replies: worker -> scoring process -------------------------------------------------------------------
def _pack(value: Any) -> Any:
    """Tensors (exactly torch.Tensor) as payloads; plain containers walked; anything else left as it is, for
    pickle to write and the scoring process to refuse."""
    kind = type(value)
    if kind is torch.Tensor:
        return _payload(value)
    if kind is list:
        return [_pack(v) for v in value]
    if kind is tuple:
        return tuple(_pack(v) for v in value)
    if kind is dict:
        return {k: _pack(v) for k, v in value.items()}
    return value


def dumps_reply(reply: dict[str, Any]) -> bytes:
    """Called in the worker on a reply `RequestHandler.encode` made (plain data, tensors and handles only)."""
    return dumps_packed(_pack(reply))


def pack_tensor(value: Any) -> Any:
    """A tensor `encode` made, in its wire form; anything else (a tensor subclass's odd `clone`) as it is."""
    return _payload(value) if type(value) is torch.Tensor else value


def dumps_packed(reply: dict[str, Any]) -> bytes:
    """A reply whose tensors are already payloads (`RequestHandler.pack_tensor`)."""
    return pickle.dumps(reply, protocol=PROTOCOL)


class _PlainData(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise BadReply(f"it names {module}.{name}, and a reply may hold only tensors and plain data")

    def persistent_load(self, pid: Any) -> Any:
        raise BadReply("it refers to an object outside the reply")


class _Budget:
    """How many values a reply may unpack into: no more than its bytes. Every value written without sharing takes
    at least a byte, so only a reply that refers to one list from many places (a pickle memo) can exceed it: a
    few kilobytes that would expand into a billion values in the scoring process."""

    def __init__(self, size: int) -> None:
        self.left = size + 64

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise BadReply("it refers to the same values over and over (it would expand far beyond its size)")


def _unpack(value: Any, devices: tuple[str, ...], budget: _Budget) -> Any:
    budget.spend()
    kind = type(value)
    if kind is bytearray:
        return _tensor(value, devices)
    if kind is list:
        return [_unpack(v, devices, budget) for v in value]
    if kind is tuple:
        return tuple(_unpack(v, devices, budget) for v in value)
    if kind is dict:
        return {_unpack(k, devices, budget): _unpack(v, devices, budget) for k, v in value.items()}
    if kind is str:  # student text, made safe where it enters (autograder/text.py), and of a size one can show
        return shown(value if len(value) <= MAX_STRING else value[:MAX_STRING] + " [...]")
    if value is None or kind in (bool, int, float):
        return value
    raise BadReply(f"it holds a {kind.__name__}")


def loads_reply(data: bytes, devices: tuple[str, ...] = ("cpu", "cuda")) -> Any:
    """Read a reply in the scoring process; a BadReply (with what was wrong) for anything `dumps_reply` would not
    have written. `devices`: the device types a tensor in it may name."""
    try:
        return _unpack(_PlainData(io.BytesIO(data)).load(), devices, _Budget(len(data)))
    except BadReply:
        raise
    except RecursionError:
        raise BadReply("it is nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - truncated or made-up pickles raise all kinds of errors
        raise BadReply(f"{type(exc).__name__}: {exc}") from None
