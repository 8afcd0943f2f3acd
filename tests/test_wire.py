"""The pipe's format (autograder/runner/wire.py): what replies can carry, and what a hostile worker cannot."""

from __future__ import annotations

import os
import pickle
import socket
import struct
import time

import pytest
import torch

from autograder.runner import channel, wire
from autograder.runner.worker import Handle, _Helpers, _Requests


@pytest.mark.parametrize(
    "tensor",
    [
        torch.randn(3, 4),
        torch.randn(2, 3, dtype=torch.float64).t(),  # not contiguous
        torch.arange(10)[2:7],  # a view with an offset
        torch.tensor(1.5),  # no dimensions
        torch.empty(0, 5),
        torch.randn(4).to(torch.bfloat16),
        torch.tensor([True, False]),
        torch.randn(3, dtype=torch.complex64).conj(),
        torch.randint(0, 255, (7,), dtype=torch.uint8),
    ],
    ids=["float32", "transposed", "view", "scalar", "empty", "bfloat16", "bool", "conj", "uint8"],
)
def test_a_reply_brings_back_the_same_tensor(tensor):
    reply = {"seq": 1, "ok": True, "value": {"out": tensor, "list": [tensor, None, 2.5, "x"], "t": (tensor,)}}
    back = wire.loads_reply(wire.dumps_reply(reply))
    for got in (back["value"]["out"], back["value"]["list"][0], back["value"]["t"][0]):
        assert type(got) is torch.Tensor
        assert got.dtype == tensor.dtype and got.shape == tensor.shape
        assert torch.equal(got, tensor.resolve_conj())
        got.resize_(0)  # its own storage, not the reply's buffer
    assert back["value"]["list"][1:] == [None, 2.5, "x"]


def _evil(marker):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    return Evil()


def test_a_reply_that_names_anything_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps({"seq": 1, "ok": True, "value": _evil(marker)})
    with pytest.raises(wire.BadReply, match="posix.system|os.system"):
        wire.loads_reply(data)
    assert not marker.exists()
    # the writer leaves such an object to pickle, so that it is refused here too
    with pytest.raises(wire.BadReply):
        wire.loads_reply(wire.dumps_reply({"seq": 1, "ok": True, "value": _evil(marker)}))
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload, problem",
    [
        (bytearray(b"float32;2,2;cpu\n" + b"\0" * 12), "do not match"),  # three floats for a 2x2
        (bytearray(b"float32;1000000000;cpu".ljust(16) + b"\n" + b"\0" * 15), "without its header|do not match"),
        (bytearray(b"object;1;cpu\n".ljust(16) + b"\0" * 8), "unreadable header"),
        (bytearray(b"float32;-1;cpu\n".ljust(16)), "impossible"),
        (bytearray(b"float32;1;meta\n".ljust(16) + b"\0" * 4), "impossible"),
        (bytearray(b"no header at all"), "without its header"),
    ],
    ids=["short", "huge", "dtype", "negative", "device", "header"],
)
def test_a_made_up_tensor_is_refused(payload, problem):
    with pytest.raises(wire.BadReply, match=problem):
        wire.loads_reply(pickle.dumps({"seq": 1, "value": payload}, protocol=5))


@pytest.mark.parametrize("value", [b"bytes", {1, 2}, 1 + 2j], ids=["bytes", "set", "complex"])
def test_what_encode_never_sends_is_refused(value):
    with pytest.raises(wire.BadReply):
        wire.loads_reply(pickle.dumps({"seq": 1, "value": value}, protocol=5))


def test_garbage_and_deep_nesting_are_refused():
    for data in (b"", b"\x80\x05garbage", pickle.dumps({"seq": 1})[:-3], os.urandom(64)):
        with pytest.raises(wire.BadReply):
            wire.loads_reply(data)
    deep = b"\x80\x05" + b"]" * 100_000 + b"a" * 99_999 + b"."  # a list in a list ... 100,000 deep
    with pytest.raises(wire.BadReply, match="nested too deeply"):
        wire.loads_reply(deep)


def test_a_request_keeps_parameters_gradients_strides_and_handles():
    model = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3, requires_grad=True)
    base = torch.arange(12.0).reshape(3, 4)
    transposed, view = base.t(), base[1:, 2:]
    request = (1, "call", (Handle(7), model, x, x, base, transposed, view, {"k": torch.ones(2)}))
    seq, op, (handle, m, a, b, c, t, v, kw) = _Requests(wire.dumps_request(request), _Helpers({})).load()
    assert (seq, op, handle.id) == (1, "call", 7)
    assert type(m.weight) is torch.nn.Parameter and m.weight.requires_grad
    assert torch.equal(m.weight, model.weight) and torch.equal(m.bias, model.bias)
    assert a is b and a.requires_grad and torch.equal(a, x)  # one object sent twice stays one object
    assert torch.equal(c, base) and torch.equal(t, transposed) and torch.equal(v, view)
    assert not t.is_contiguous() and t.stride() == transposed.stride()  # a check's strided input stays so
    assert v.storage_offset() == view.storage_offset() and v.stride() == view.stride()
    v.fill_(0)  # a copy of the storage, as torch's own pickling gives
    assert base.sum() == 66
    assert torch.equal(kw["k"], torch.ones(2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_cross_in_both_directions_and_stay_on_their_device():
    x = torch.randn(4, 3, device="cuda")
    back = wire.loads_reply(wire.dumps_reply({"seq": 1, "ok": True, "value": x}))["value"]
    assert back.device == x.device and torch.equal(back, x)
    seq, op, (a,) = _Requests(wire.dumps_request((1, "call", (x.t(),))), _Helpers({})).load()
    assert a.device == x.device and torch.equal(a, x.t()) and a.stride() == x.t().stride()
    with pytest.raises(wire.BadReply):  # a reply may not name a device the reader does not allow
        wire.loads_reply(wire.dumps_reply({"seq": 1, "value": x}), devices=("cpu",))


def test_a_reply_that_expands_beyond_its_size_is_refused_at_once():
    shared = pickle.dumps({"seq": 1, "ok": True, "value": [[[None] * 1000] * 1000] * 60})
    started = time.perf_counter()
    with pytest.raises(wire.BadReply, match="expand far beyond its size"):
        wire.loads_reply(shared)
    assert time.perf_counter() - started < 1.0 and len(shared) < 10_000
    repeated = pickle.dumps({"seq": 1, "ok": True, "value": ["relu"] * 5000})  # shared strings: a legit reply
    assert wire.loads_reply(repeated)["value"] == ["relu"] * 5000


def test_strings_in_a_reply_are_shown_safely_and_bounded():
    reply = wire.loads_reply(pickle.dumps({"seq": 1, "error": "\x1b[2J\ud800" + "x" * 100_000}))
    assert reply["error"].startswith("\\x1b[2J\ufffd") and len(reply["error"]) < wire.MAX_STRING + 100


@pytest.fixture
def pipe():
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    yield ours.fileno(), theirs
    ours.close()
    theirs.close()


def test_a_header_and_then_silence_costs_the_deadline_not_the_batch(pipe):
    fd, worker = pipe
    worker.sendall(struct.pack("!i", 1000) + b"abc")
    started = time.monotonic()
    with pytest.raises(channel.TimedOut):
        channel.receive(fd, time.monotonic() + 0.3, budget=10_000)
    assert time.monotonic() - started < 1.0


def test_a_message_over_the_budget_is_refused_from_its_header(pipe):
    fd, worker = pipe
    worker.sendall(struct.pack("!iQ", -1, 2**40))
    with pytest.raises(channel.TooLarge):
        channel.receive(fd, time.monotonic() + 5, budget=10_000)


def test_a_worker_that_stops_reading_cannot_hold_a_request(pipe):
    fd, _ = pipe  # the worker never reads: the socket's buffer fills
    with pytest.raises(channel.TimedOut):
        channel.send(fd, b"x" * 50_000_000, time.monotonic() + 0.3)


def test_whole_messages_cross_in_both_framings(pipe):
    fd, worker = pipe
    worker.sendall(struct.pack("!i", 5) + b"hello")
    assert channel.receive(fd, time.monotonic() + 5, budget=100) == b"hello"
    channel.send(fd, b"request", time.monotonic() + 5)
    assert worker.recv(100) == struct.pack("!i", 7) + b"request"
    worker.close()
    with pytest.raises(channel.Closed):
        channel.receive(fd, time.monotonic() + 5, budget=100)
