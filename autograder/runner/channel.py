"""The scoring process's end of the pipe to a worker: whole messages, each within a deadline and a size budget.

The worker writes with multiprocessing's `Connection.send_bytes` (a 4-byte signed big-endian length, or -1 and an
8-byte one, then the bytes). Student code can write to that pipe too: a header and then silence, a length of
gigabytes, a reply to a question never asked. Reading here never blocks past the deadline, never accepts more than
the budget (a longer message is refused from its header, before any of it is read), and writing a request never
blocks past the deadline either (a worker that stops reading cannot hold the scoring process).
"""

from __future__ import annotations

import os
import select
import struct
import time


class MessageLost(Exception):
    """No whole message within the deadline and the budget."""


class Closed(MessageLost):
    """The worker's end is closed: it ended."""


class TimedOut(MessageLost):
    """The deadline passed before the whole message crossed."""


class TooLarge(MessageLost):
    """The message's header announces more than the budget."""


def _wait(fd: int, events: int, deadline: float) -> None:
    poller = select.poll()
    poller.register(fd, events)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimedOut
        # at most half a second at a time: a signal the kernel gives another thread of this process (Ctrl-C) has
        # its handler run only when the main thread wakes, and a long poll would not wake it
        ready = poller.poll(max(1, int(min(left, 0.5) * 1000)))
        if ready:
            return


def send(fd: int, data: bytes, deadline: float) -> None:
    """Write one message (in the framing the worker reads) to the non-blocking descriptor `fd`."""
    header = struct.pack("!i", len(data)) if len(data) <= 0x7FFFFFFF else struct.pack("!iQ", -1, len(data))
    view = memoryview(header + data) if len(data) < 65536 else None
    parts = [view] if view is not None else [memoryview(header), memoryview(data)]
    for part in parts:
        while part:
            try:
                written = os.write(fd, part)
            except BlockingIOError:
                _wait(fd, select.POLLOUT, deadline)
                continue
            except (BrokenPipeError, ConnectionResetError):
                raise Closed from None
            part = part[written:]


def _read_exactly(fd: int, size: int, deadline: float) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    done = 0
    while done < size:
        try:
            got = os.readv(fd, [view[done:]])
        except BlockingIOError:
            _wait(fd, select.POLLIN, deadline)
            continue
        except ConnectionResetError:
            raise Closed from None
        if got == 0:
            raise Closed
        done += got
    return buffer


def receive(fd: int, deadline: float, budget: int) -> bytes:
    """Read one whole message from the non-blocking descriptor `fd`."""
    (size,) = struct.unpack("!i", _read_exactly(fd, 4, deadline))
    if size == -1:
        (size,) = struct.unpack("!Q", _read_exactly(fd, 8, deadline))
    if size < 0 or size > budget:
        raise TooLarge
    return bytes(_read_exactly(fd, size, deadline))


receive_message = receive  # as the runner exports it: the rest of the engine reads framed messages with it too
