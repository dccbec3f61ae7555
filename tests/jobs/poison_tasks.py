"""A task for the fault tests only (loaded with ``liqrisk worker --include tests.jobs.poison_tasks``): it kills
its own pool process every time it starts, as a job that crashes the interpreter or runs out of memory would."""

from __future__ import annotations

import os
import signal

from backtest.tasks import _Run, app


@app.task(name="tests.poison", bind=True)
def poison(self, job_id: str) -> None:
    with _Run(self, job_id, "backtest", record=True):
        os.kill(os.getpid(), signal.SIGKILL)
