"""What a Dask worker needs of the grader beyond its tasks; imported only where Dask is used."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from distributed import WorkerPlugin

from autograder.runner import end_every_worker


class EndWorkersWithDask(WorkerPlugin):
    """A closing Dask worker (SIGTERM or Ctrl-C of `dask worker`, its nanny's restart, a cluster shut down) first
    tears its plugins down, then waits for its running task: this ends the grader's workers in that process
    at once, with their process trees, instead of letting the task's student code run to its time limit.
    Registered once per cluster (`idempotent`): registering it again must not tear down the one in use."""

    name = "autograder-end-workers"
    idempotent = True

    def teardown(self, worker: Any) -> None:
        end_every_worker()


@contextlib.contextmanager
def quiet_client() -> Iterator[None]:
    """While a batch runs: the client's and its connections' own error logs (a traceback per failed reconnect)
    are left out; a lost scheduler is reported once, by `grade`, with what was kept."""
    loggers = [logging.getLogger(name) for name in ("distributed.client", "distributed.comm", "distributed.core")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
