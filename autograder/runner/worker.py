"""Worker processes: the only place student code runs.

The parent sends pickled requests; the worker answers with plain data and tensors (wire.py), which the parent
reads with an unpickler that resolves no name at all: nothing a student's object does at unpickling time can run
in the scoring process.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import importlib.abc
import inspect
import io
import linecache
import os
import pickle
import resource
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from autograder.runner import keeper, policy, sandbox, wire
from autograder.runner.definitions import Statement, split_statements
from autograder.runner.setup import set_up

MAX_REPLY_BYTES = 256 * 1024 * 1024
_MAX_DEPTH = 32
CELL_FILENAME = "<cell {index}>"
PROGRESS_BYTES = 48
SETUP_FAILED_EXIT = keeper.SETUP_FAILED_EXIT
MEMORY_EXIT = keeper.MEMORY_EXIT


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker is set up: derived from the grading options (`options.worker_config`), or written out by a
    test; `proxy.Worker` completes it with the worker's scratch folder and what no worker may see."""

    threads: int = 1
    sealed: tuple[str, ...] = ()  # files and folders the worker must not see at all (see sandbox.py)
    memory_mb: int | None = None  # memory the student's code may use, counted whole by the keeper
    cap_address_space: bool = True  # also cap address space at start + memory_mb (not with CUDA, which maps a lot)
    cpu_seconds: int | None = None  # CPU time of the whole worker
    cuda_index: int | None = None  # the GPU this worker uses, initialised before the sandbox closes
    gpu_memory_fraction: float | None = None  # this worker's share of the GPU's memory, when workers share one
    helpers: tuple[tuple[str, str], ...] = ()  # (module name, source) of the assignment's helpers module
    env: dict[str, str] = field(default_factory=dict)  # environment variables besides policy.WORKER_ENVIRONMENT
    scratch_mb: int = policy.DEFAULT_SCRATCH_MB  # the scratch folder's size
    scratch_files: int = policy.DEFAULT_SCRATCH_FILES  # and how many files and folders it may hold
    audit_hook: bool = True  # off only in the tests that probe the kernel's walls past it
    # Filled in by proxy.Worker as it starts the process:
    scratch: str = ""  # working directory of the worker (the host folder its view is mounted on)
    sealed_sys_path: tuple[str, ...] = ()  # sys.path entries the worker must not import from
    cpus: tuple[int, ...] = ()  # where it may run: its scoring process's CPUs (none: wherever the server may)
    blocked_modules: tuple[str, ...] = ("reference_solutions", "assignments")


class PassedFd:
    """A descriptor of the scoring process handed to the worker as the fork server starts it (SCM_RIGHTS); it
    arrives as a plain descriptor number."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, ...]:
        from multiprocessing import reduction

        return (_received, (reduction.DupFd(self.fd),))  # only while the process is being started


def _received(dup: Any) -> int:
    return int(dup.detach())


class Handle:
    """A reference, sent by the parent, to an object that lives in the worker."""

    __slots__ = ("id",)

    def __init__(self, id: int) -> None:
        self.id = id

    def __reduce__(self) -> tuple[type, tuple[int]]:
        return (Handle, (self.id,))


class GlobalRef:
    """A reference, sent by the parent, to a name the student's code defined."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (GlobalRef, (self.name,))


def read_progress(fd: int) -> tuple[int, int, int] | None:
    """(cell, statement, line) a worker was loading when it stopped, from its progress file; None if none."""
    try:
        cell, statement, line = (int(v) for v in os.pread(fd, PROGRESS_BYTES, 0).split())
    except (OSError, ValueError):
        return None
    return None if cell < 0 else (cell, statement, line)


def _graph_ops(output: torch.Tensor, limit: int = 10000) -> set[str]:
    """Names of the autograd nodes that produced `output`, e.g. {'MeanBackward0', 'ExpBackward0'}."""
    seen: set[Any] = set()
    names: set[str] = set()
    stack = [output.grad_fn]
    while stack and len(seen) < limit:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return names


def _qualname(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)[:4000]
    except Exception:
        return f"<{type(value).__name__}>"


def _is_float_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.is_floating_point()


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    # What torch.manual_seed does for the devices a worker can use, without its cost: before CUDA is initialised,
    # torch.manual_seed queues a lazy CUDA seeding and records the Python stack for it (~3 ms a call, paid on
    # every call into student code). A worker grading on CUDA initialises it before any student code runs.
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(seed)


def describe_exception(exc: BaseException, cell: int | None = None) -> dict[str, Any]:
    """The exception in the student's terms: type, message, and the innermost line of their own code."""
    where = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        filename = frame.f_code.co_filename
        if filename.startswith("<cell "):
            where = (int(filename[6:-1]), lineno, linecache.getline(filename, lineno).strip())
    if where is None and isinstance(exc, SyntaxError) and exc.filename and exc.filename.startswith("<cell "):
        where = (int(exc.filename[6:-1]), exc.lineno or 0, (exc.text or "").strip())
    try:
        message = str(exc)
    except Exception:  # a student exception whose __str__ itself fails
        message = "<the exception's message could not be shown>"
    return {
        "type": type(exc).__name__,
        "message": message[:2000],
        "cell": where[0] if where else cell,
        "line": where[1] if where else None,
        "source": where[2][:300] if where else None,
    }


DESCRIPTION_FIELDS = ("type", "repr", "signature", "parameters", "is_module", "is_class", "subclass_of_module",
                      "modules", "parameter_shapes")  # fmt: skip


def describe_object(obj: Any, fields: tuple[str, ...] = DESCRIPTION_FIELDS) -> dict[str, Any]:
    """What a check may ask about an object it cannot see: `fields` of DESCRIPTION_FIELDS (the module fields only
    for a torch module). Asking only for what is needed spares the reprs of every layer."""
    info: dict[str, Any] = {}
    wanted = set(fields)
    if "type" in wanted:
        info["type"] = _qualname(type(obj))
    if "repr" in wanted:
        info["repr"] = _safe_repr(obj)
    if "is_module" in wanted:
        info["is_module"] = isinstance(obj, torch.nn.Module)
    if "is_class" in wanted:
        info["is_class"] = isinstance(obj, type)
    if "subclass_of_module" in wanted:
        info["subclass_of_module"] = isinstance(obj, type) and issubclass(obj, torch.nn.Module)
    if wanted & {"signature", "parameters"}:
        try:
            signature = inspect.signature(obj)
            info["signature"] = str(signature)
            info["parameters"] = [
                {"name": p.name, "kind": p.kind.name, "default": None if p.default is p.empty else repr(p.default)}
                for p in signature.parameters.values()
            ]
        except (TypeError, ValueError):
            info["signature"], info["parameters"] = None, []
    if isinstance(obj, torch.nn.Module):
        if "modules" in wanted:
            info["modules"] = [
                {"name": name, "type": _qualname(type(m)), "repr": _safe_repr(m).split("\n")[0]}
                for name, m in obj.named_modules(remove_duplicate=False)
            ]
        if "parameter_shapes" in wanted:
            info["parameter_shapes"] = {n: tuple(p.shape) for n, p in obj.named_parameters()}
    return info


class _ForbiddenWatch(torch.overrides.TorchFunctionMode):
    """Notes every forbidden torch function called while it is installed, however it was reached: an alias, a
    getattr, a module's forward, an autograd.Function's forward."""

    def __init__(self, targets: dict[Any, str]) -> None:
        super().__init__()
        self.targets = targets
        self.seen: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        try:
            name = self.targets.get(func)
        except TypeError:  # an unhashable callable
            name = None
        if name is not None and name not in self.seen:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


def _resolve(dotted: str) -> Any:
    """The object a dotted name such as `torch.nn.functional.cross_entropy` names, or None."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attribute in parts[cut:]:
                found = getattr(found, attribute)
        except AttributeError:
            return None
        return found
    return None


DISPATCH_CHANGED = "torch's function dispatch (changed while the call ran)"


class RequestHandler:
    """The student's namespace and the objects the parent holds handles to; its `op_` methods are the requests a
    worker serves. `walls` are those the worker got; `progress_fd` the file in which it records the statement it
    is loading (none when the operations run outside a worker, as in bench.floor)."""

    def __init__(self, walls: sandbox.Walls | None = None, progress_fd: int | None = None) -> None:
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        self.objects: dict[int, Any] = {}
        self.walls = walls
        self.progress_fd = progress_fd
        # In a worker, `encode` writes tensors straight into their wire form (one walk of a reply, not two).
        self.pack_tensor: Callable[[Any], Any] | None = None
        self.last_arguments: tuple[Any, dict[str, Any]] = ((), {})  # of the last call, as it left them
        self.forbidden_seen: list[str] = []  # forbidden functions the calls since the last reply reached
        self._watch_targets: dict[tuple[str, ...], dict[Any, str]] = {}

    def mark_progress(self, cell: int, statement: int, line: int) -> None:
        """Record the statement being run, so that the parent knows which one a hang or crash came from."""
        if self.progress_fd is not None:
            os.pwrite(self.progress_fd, f"{cell} {statement} {line}".encode().ljust(PROGRESS_BYTES), 0)

    # -- operations the parent can ask for -------------------------------------------------------------
    def op_load(
        self, cells: list[tuple[int, str]], execute: str, skip: tuple[tuple[int, int], ...] = ()
    ) -> dict[str, Any]:
        """Run the cells (all statements, or only definitions); `skip` lists (cell, statement) pairs that
        stopped an earlier worker, which are left out this time."""
        errors: list[dict[str, Any]] = []
        skipped = 0
        for index, source in cells:
            filename = CELL_FILENAME.format(index=index)
            linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
            try:
                statements = split_statements(source, filename)
            except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
                errors.append({**describe_exception(exc, index), "unparsed": True})  # what it defines is unknown
                continue
            for number, statement in enumerate(statements):
                if (execute == "definitions" and statement.kind == "other") or (index, number) in skip:
                    skipped += 1
                    continue
                self.mark_progress(index, number, statement.lineno)
                try:
                    exec(statement.code, self.namespace)
                except BaseException as exc:  # SystemExit and KeyboardInterrupt from student code included
                    if execute == "definitions" and statement.kind == "assign":
                        # e.g. `n, m = data.shape` where `data` came from a call that was skipped: not an error
                        skipped += 1
                        continue
                    error = {**describe_exception(exc, index), "names": list(statement.names)}
                    if isinstance(exc, ImportError) and exc.name:
                        error["module"] = exc.name.split(".")[0]
                    if statement.undecorated is not None and self._run_undecorated(statement):
                        error["undecorated"] = True  # defined all the same, without its decorators
                    errors.append(error)
                    if execute == "all":
                        break  # a notebook cell stops at its first error; the next cell still runs
        self.mark_progress(-1, -1, 0)
        defined = [name for name in self.namespace if not name.startswith("__")]
        walls = self.walls.to_dict() if self.walls else {}
        return {"defined": defined, "errors": errors, "skipped": skipped, "sandbox": walls.get("layer", ""),
                "walls": walls}  # fmt: skip

    def _run_undecorated(self, statement: Statement) -> bool:
        assert statement.undecorated is not None
        try:
            exec(statement.undecorated, self.namespace)
        except BaseException:  # noqa: BLE001 - then it stays undefined, and its error says why
            return False
        return True

    def op_call(
        self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any], seed: int | None, watch: tuple[str, ...] = ()
    ) -> Any:
        """Call, watching for the forbidden functions `watch` names. Every call is made the same way: what it does
        to its arguments is kept (`op_arguments`), so no call can tell whether a check will look."""
        function = self.resolve(target)
        args, kwargs = self.resolve(args), self.resolve(kwargs)
        self.last_arguments = (args, kwargs)
        if seed is not None:
            seed_everything(seed)
        return self._watched(watch, function, args, kwargs)

    def op_arguments(self) -> dict[str, Any]:
        """The arguments of the last call as the call left them (in-place changes)."""
        args, kwargs = self.last_arguments
        return {"args": list(args), "kwargs": kwargs}

    def _watched(self, watch: tuple[str, ...], function: Any, args: Any, kwargs: Any) -> Any:
        if not watch:
            return function(*args, **kwargs)
        if watch not in self._watch_targets:
            resolved = ((_resolve(name), name) for name in watch)
            self._watch_targets[watch] = {obj: name for obj, name in resolved if obj is not None}
        mode = _ForbiddenWatch(self._watch_targets[watch])
        depth = torch._C._len_torch_function_stack()
        mode.__enter__()
        try:
            return function(*args, **kwargs)
        finally:
            intact = torch._C._len_torch_function_stack() == depth + 1 and (
                torch._C._get_function_stack_at(depth) is mode
            )
            if intact:
                mode.__exit__(None, None, None)
            else:  # the student's code pushed or popped modes: put the stack back as it was, and say so
                while torch._C._len_torch_function_stack() > depth:
                    torch._C._pop_torch_function_stack()
                mode.seen.append(DISPATCH_CHANGED)
            self.forbidden_seen += [name for name in mode.seen if name not in self.forbidden_seen]

    def op_put(self, value: Any) -> dict[str, Any]:
        """Keep an object the grader sent (e.g. a small network, or a helper function to run) and return a handle."""
        return self.store(value)

    def op_getattr(self, target: Any, name: str) -> Any:
        return getattr(self.resolve(target), name)

    def op_describe(self, target: Any, fields: tuple[str, ...] = DESCRIPTION_FIELDS) -> dict[str, Any]:
        return describe_object(self.resolve(target), fields)

    def op_grad(
        self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any], seed: int | None, watch: tuple[str, ...] = ()
    ) -> Any:
        """Call, then backpropagate sum(output): gradients of the floating-point tensor arguments and, for
        a module, of its parameters."""
        function = self.resolve(target)
        args, kwargs = self.resolve(args), self.resolve(kwargs)
        leaves = [a.detach().requires_grad_() for a in args if _is_float_tensor(a)]
        it = iter(leaves)
        args = tuple(next(it) if _is_float_tensor(a) else a for a in args)
        self.last_arguments = (args, kwargs)
        if seed is not None:
            seed_everything(seed)
        output = self._watched(watch, function, args, kwargs)
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"returned {type(output).__name__}, not a tensor, so no gradient can flow")
        params = dict(function.named_parameters()) if isinstance(function, torch.nn.Module) else {}
        inputs = leaves + list(params.values())
        if not output.requires_grad:
            grads: tuple[Any, ...] = (None,) * len(inputs)
        else:
            grads = torch.autograd.grad(output.sum(), inputs, allow_unused=True)
        by_position = iter(grads[: len(leaves)])
        return {
            "output": output,
            "graph": sorted(_graph_ops(output)),
            # one entry per positional argument, None where it was not a floating-point tensor
            "input_grads": [next(by_position) if _is_float_tensor(a) else None for a in args],
            "param_grads": dict(zip(params, grads[len(leaves) :], strict=True)),
        }

    def op_stats(self) -> dict[str, float]:
        """Peak resident memory of this worker, in MiB."""
        return {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}

    # -- helpers -----------------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, Handle):
            return self.objects[value.id]
        if isinstance(value, GlobalRef):
            return self.namespace[value.name]
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.resolve(v) for v in value)
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value

    def encode(self, value: Any, depth: int = 0) -> Any:
        """Plain data as itself, tensors detached and compact, anything else as a handle."""
        if value is None or type(value) in (bool, int, float, str):
            return value
        if depth > _MAX_DEPTH:
            raise ValueError("the returned value is nested too deeply to send back")
        if isinstance(value, torch.Tensor):
            size = value.nelement() * value.element_size()
            if size > MAX_REPLY_BYTES:  # said at once, not after copying and packing hundreds of MiB to be refused
                raise ValueError(f"the returned tensor is {size / 2**20:.0f} MiB, more than the "
                                 f"{MAX_REPLY_BYTES // 2**20} MiB a value may be to be sent back")  # fmt: skip
            tensor = value.detach().as_subclass(torch.Tensor).clone(memory_format=torch.contiguous_format)
            return self.pack_tensor(tensor) if self.pack_tensor else tensor
        if isinstance(value, torch.Size):
            return tuple(int(v) for v in value)
        if isinstance(value, (torch.dtype, torch.device)):
            return {"__repr__": str(value)}
        if type(value).__module__ == "numpy":
            return self.encode(torch.as_tensor(value.copy()) if hasattr(value, "shape") else value.item(), depth)
        if type(value) in (list, tuple):
            encoded = [self.encode(v, depth + 1) for v in value]
            return encoded if type(value) is list else tuple(encoded)
        if type(value) in (dict,) or type(value).__name__ == "OrderedDict":
            if all(type(k) in (str, int) for k in value):
                return {k: self.encode(v, depth + 1) for k, v in value.items()}
        return self.store(value)

    def store(self, value: Any) -> dict[str, Any]:
        handle = len(self.objects) + 1
        self.objects[handle] = value
        return {"__remote__": handle, "type": _qualname(type(value)), "repr": _safe_repr(value)}


class _Helpers:
    """The assignment's helpers module, made from its source the first time a request names it. It is never put
    in sys.modules: the checks' objects can use it, the student's code cannot import it."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.sources = sources
        self.modules: dict[str, types.ModuleType] = {}

    def get(self, name: str) -> types.ModuleType | None:
        if name not in self.sources:
            return None
        if name not in self.modules:
            module = types.ModuleType(name)
            module.__dict__["__builtins__"] = builtins
            exec(compile(self.sources[name], f"<{name}>", "exec"), module.__dict__)
            self.modules[name] = module
        return self.modules[name]


class _Requests(pickle.Unpickler):
    """Reads one request; names from the helpers module resolve there."""

    def __init__(self, data: bytes, helpers: _Helpers) -> None:
        super().__init__(io.BytesIO(data))
        self.helpers = helpers

    def find_class(self, module: str, name: str) -> Any:
        found = self.helpers.get(module)
        if found is not None:
            return getattr(found, name)
        return super().find_class(module, name)


def worker_main(conn: Any, config: WorkerConfig, output_fd: int, progress_fd: int) -> None:
    """The process the fork server starts: the keeper (keeper.py), which starts the worker proper, `_work`."""
    os.environ.update(config.env)  # e.g. the layer to try, for tests (the worker's own environment is rebuilt)
    if config.cpus:  # before the keeper forks: its init and worker run there too
        with contextlib.suppress(OSError):  # a CPU this machine's cpuset no longer allows: run anywhere
            os.sched_setaffinity(0, config.cpus)
    tmpfs = (config.scratch_mb * 2**20, config.scratch_files, policy.SHM_MB * 2**20)
    work = functools.partial(_work, conn, config, progress_fd)
    keeper.run(conn, output_fd, config.memory_mb, config.scratch, tmpfs, work)


def _work(conn: Any, config: WorkerConfig, progress_fd: int, entered: sandbox.Entered) -> None:
    walls = set_up(config, entered, conn.fileno(), progress_fd)
    state = RequestHandler(walls, progress_fd)
    state.pack_tensor = wire.pack_tensor
    serve(conn, state, _Helpers(dict(config.helpers)))
    os._exit(0)


def serve(conn: Any, state: RequestHandler, helpers: _Helpers) -> None:
    """Answer requests until the scoring process closes the connection."""
    handlers: dict[str, Callable[..., Any]] = {
        name[3:]: getattr(state, name) for name in dir(state) if name.startswith("op_")
    }
    while True:
        try:
            seq, op, args = _Requests(conn.recv_bytes(), helpers).load()
        except (EOFError, OSError):
            return
        try:
            reply = {"seq": seq, "ok": True, "value": state.encode(handlers[op](*args))}
            if state.forbidden_seen:
                reply["forbidden"] = state.forbidden_seen
            data = wire.dumps_packed(reply)
        except BaseException as exc:  # student code may raise anything, SystemExit included
            reply = {"seq": seq, "ok": False, "error": describe_exception(exc)}
            if state.forbidden_seen:
                reply["forbidden"] = state.forbidden_seen
            data = wire.dumps_reply(reply)
        state.forbidden_seen = []
        conn.send_bytes(data)
