"""The one boundary around student code: everything of the grader that starts, walls in, talks to and ends the
processes that run it. The rest of the engine uses what this module exports, nothing else of the package.

`worker` runs in the worker process (student code, requests, replies), after `setup` has walled it in; `keeper`
makes its namespaces, starts it, counts its memory and ends it; `sandbox` says which walls a worker gets and
enters them, `policy` what they grant, `namespaces` builds the view, `seccomp` the system-call allow-list; `wire`
and `channel` are what crosses the pipe and how it is read; `scratch` removes what a worker left; `definitions`
decides which top-level statements are run by default; `proxy` is the scoring process's side: it starts a worker,
asks it things within a time limit, and gives checks the `student` proxy.

Its names are imported when first used (PEP 562): a command can start the fork server (`start_early`, from the
light `forkserver` module) before anything here imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autograder.runner.channel import (
        MessageLost,
        receive_message,
    )
    from autograder.runner.deferred_seeding import (
        short_stacks,
    )
    from autograder.runner.forkserver import (
        FORK_SERVER_PRELOAD,
        SCORING_PRELOAD,
        bare_main_module,
        fork_server_context,
        preload_modules,
        start_early,
    )
    from autograder.runner.proxy import (
        ForkServerFailed,
        MissingSymbol,
        RemoteObject,
        ScoringEnded,
        StudentError,
        StudentProxy,
        SubmissionUnreadable,
        Worker,
        WorkerLost,
        decode,
        end_every_worker,
        end_this_process,
        fork_server_failure,
        guard_this_process,
        scoring_ended,
    )
    from autograder.runner.sandbox import (
        NO_NAMESPACES_ENV,
        Walls,
        missing_walls,
        name_this_process,
    )
    from autograder.runner.setup import (
        MAX_FILE_BYTES,
    )
    from autograder.runner.worker import (
        RequestHandler,
        WorkerConfig,
        describe_exception,
    )

_WHERE = {
    "MessageLost": "autograder.runner.channel",
    "receive_message": "autograder.runner.channel",
    "short_stacks": "autograder.runner.deferred_seeding",
    "FORK_SERVER_PRELOAD": "autograder.runner.forkserver",
    "SCORING_PRELOAD": "autograder.runner.forkserver",
    "bare_main_module": "autograder.runner.forkserver",
    "fork_server_context": "autograder.runner.forkserver",
    "preload_modules": "autograder.runner.forkserver",
    "start_early": "autograder.runner.forkserver",
    "ForkServerFailed": "autograder.runner.proxy",
    "MissingSymbol": "autograder.runner.proxy",
    "RemoteObject": "autograder.runner.proxy",
    "ScoringEnded": "autograder.runner.proxy",
    "StudentError": "autograder.runner.proxy",
    "StudentProxy": "autograder.runner.proxy",
    "SubmissionUnreadable": "autograder.runner.proxy",
    "Worker": "autograder.runner.proxy",
    "WorkerLost": "autograder.runner.proxy",
    "decode": "autograder.runner.proxy",
    "end_every_worker": "autograder.runner.proxy",
    "end_this_process": "autograder.runner.proxy",
    "fork_server_failure": "autograder.runner.proxy",
    "guard_this_process": "autograder.runner.proxy",
    "scoring_ended": "autograder.runner.proxy",
    "NO_NAMESPACES_ENV": "autograder.runner.sandbox",
    "Walls": "autograder.runner.sandbox",
    "missing_walls": "autograder.runner.sandbox",
    "name_this_process": "autograder.runner.sandbox",
    "MAX_FILE_BYTES": "autograder.runner.setup",
    "RequestHandler": "autograder.runner.worker",
    "WorkerConfig": "autograder.runner.worker",
    "describe_exception": "autograder.runner.worker",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'autograder.runner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "FORK_SERVER_PRELOAD",
    "ForkServerFailed",
    "MAX_FILE_BYTES",
    "MessageLost",
    "MissingSymbol",
    "NO_NAMESPACES_ENV",
    "RemoteObject",
    "RequestHandler",
    "SCORING_PRELOAD",
    "ScoringEnded",
    "StudentError",
    "StudentProxy",
    "SubmissionUnreadable",
    "Walls",
    "Worker",
    "WorkerConfig",
    "WorkerLost",
    "bare_main_module",
    "decode",
    "describe_exception",
    "end_every_worker",
    "end_this_process",
    "fork_server_context",
    "fork_server_failure",
    "guard_this_process",
    "missing_walls",
    "name_this_process",
    "preload_modules",
    "receive_message",
    "scoring_ended",
    "short_stacks",
    "start_early",
]
