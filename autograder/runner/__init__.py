"""The one boundary around student code: everything of the grader that starts, walls in, talks to and ends the
processes that run it. The rest of the engine uses what this module exports, nothing else of the package.

`worker` runs in the worker process (student code, requests, replies), after `setup` has walled it in; `keeper`
makes its namespaces, starts it, counts its memory and ends it; `sandbox` says which walls a worker gets and
enters them, `policy` what they grant, `namespaces` builds the view, `seccomp` the system-call allow-list; `wire`
and `channel` are what crosses the pipe and how it is read; `scratch` removes what a worker left; `definitions`
decides which top-level statements are run by default; `proxy` is the scoring process's side: it starts a worker,
asks it things within a time limit, and gives checks the `student` proxy.
"""

from autograder.runner.channel import MessageLost, receive_message
from autograder.runner.deferred_seeding import short_stacks
from autograder.runner.proxy import (
    FORK_SERVER_PRELOAD,
    ForkServerFailed,
    MissingSymbol,
    RemoteObject,
    ScoringEnded,
    StudentError,
    StudentProxy,
    SubmissionUnreadable,
    Worker,
    WorkerLost,
    bare_main_module,
    decode,
    end_every_worker,
    end_this_process,
    fork_server_context,
    fork_server_failure,
    guard_this_process,
    preload_modules,
    scoring_ended,
)
from autograder.runner.sandbox import NO_NAMESPACES_ENV, Walls, missing_walls, name_this_process
from autograder.runner.setup import MAX_FILE_BYTES
from autograder.runner.worker import RequestHandler, WorkerConfig, describe_exception

__all__ = [
    "FORK_SERVER_PRELOAD",
    "MAX_FILE_BYTES",
    "NO_NAMESPACES_ENV",
    "ForkServerFailed",
    "MessageLost",
    "MissingSymbol",
    "RemoteObject",
    "ScoringEnded",
    "StudentError",
    "StudentProxy",
    "SubmissionUnreadable",
    "Walls",
    "Worker",
    "WorkerConfig",
    "WorkerLost",
    "RequestHandler",
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
]
