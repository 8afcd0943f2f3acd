"""What a Dask worker needs of the grader beyond its tasks; imported only where Dask is used."""

from __future__ import annotations

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
