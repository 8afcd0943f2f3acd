"""The device a batch grades on, in one place: what `--device` means, which GPU a chunk of submissions goes to,
each worker's share of a GPU's memory, and how CUDA is set up in a worker and in a scoring process that judges
on a GPU. torch is imported where a device is resolved or used, never by building the command line."""

from __future__ import annotations

import math
import os
import re
import zlib

from autograder import messages

_DEVICE = re.compile(r"^(cpu|cuda)(?::(\d+))?$")


class Device(str):
    """A resolved device: "cpu", "cuda" (this machine's GPUs: each chunk of submissions is placed on one of them)
    or "cuda:N" (that GPU). A str, so that options and results carry it as the text it is."""

    def __new__(cls, text: str) -> Device:
        match = _DEVICE.match(str(text))
        if match is None or (match[1] == "cpu" and match[2] is not None):
            raise ValueError(messages.BAD_DEVICE.format(device=text))
        return super().__new__(cls, text)

    @property
    def is_cuda(self) -> bool:
        return self.startswith("cuda")

    @property
    def gpu(self) -> int | None:
        """The GPU a worker on this device uses ("cuda" is the first: torch.cuda.set_device needs an index)."""
        if not self.is_cuda:
            return None
        _, _, index = self.partition(":")
        return int(index) if index else 0


CPU = Device("cpu")


def resolve(requested: str) -> Device:
    """`--device`: "auto" is CUDA when present, else the CPU; asking for CUDA without it is an error to show."""
    import torch

    if requested == "auto":
        return Device("cuda" if torch.cuda.is_available() else "cpu")
    device = Device(requested)
    if device.is_cuda and not torch.cuda.is_available():
        raise ValueError(messages.NO_CUDA)
    return device


def place(device: Device, key: str) -> Device:
    """Where the GPUs are (the scoring process): with "cuda" and several GPUs, a chunk of submissions goes to one
    of them, chosen by `key`, so that every scoring process of the machine spreads over all of them."""
    import torch

    count = torch.cuda.device_count() if device == "cuda" else 0
    return Device(f"cuda:{zlib.crc32(key.encode()) % count}") if count > 1 else device


def memory_share(device: Device, sharing: int) -> float | None:
    """Where the GPUs are: each worker's share of its GPU's memory when `sharing` scoring processes of this machine
    grade on `device` at once (None: a GPU of its own, or the CPU)."""
    if not device.is_cuda:
        return None
    import torch

    count = max(1, torch.cuda.device_count()) if device == "cuda" else 1
    per_gpu = math.ceil(max(1, sharing) / count)
    return round(0.9 / per_gpu, 3) if per_gpu > 1 else None


def exact_float32() -> None:
    """Float32 products in full precision on a GPU, as on the CPU: no TF32 in matmuls or convolutions (TF32 keeps
    10 mantissa bits, so a correct answer could differ from the reference by 1e-3). cuDNN picks deterministic
    algorithms. Called in workers and in a scoring process that judges on a GPU."""
    import warnings

    import torch

    with warnings.catch_warnings():  # newer torch prefers fp32_precision and may warn about the older flags
        warnings.simplefilter("ignore")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def start_cuda(index: int, share: float | None, memory_mb: int | None) -> None:
    """In a worker: CUDA starts before seccomp and the audit hook, so that nothing it loads is refused. The
    worker's GPU memory is capped (its share of a GPU that several workers use, and --memory), so that one
    student's tensors cannot starve the others; an allocation past it raises torch.OutOfMemoryError in the
    student's code."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # lets cuBLAS be deterministic
    torch.cuda.set_device(index)
    torch.cuda.init()
    exact_float32()
    torch.use_deterministic_algorithms(True, warn_only=True)  # where torch has them; others only warn
    fraction = share or 1.0
    if memory_mb:
        total = torch.cuda.get_device_properties(index).total_memory
        fraction = min(fraction, memory_mb * 2**20 / total)
    if fraction < 1.0:
        torch.cuda.set_per_process_memory_fraction(fraction, index)
