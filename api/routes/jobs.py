"""``GET``/``DELETE /v1/jobs/{id}`` (a backtest or sweep job: status, progress, result or error; DELETE cancels)
and ``GET /v1/datasets`` (the synthetic generator and the datasets under ``LIQRISK_DATA_DIR``). The queue client
is imported on first use, so the calculator routes never load it."""

from __future__ import annotations

import re

from flask import Blueprint, current_app

from ..errors import ApiError
from ..jsonio import respond

bp = Blueprint("jobs", __name__, url_prefix="/v1")
JOB_ID = re.compile(r"[0-9a-f]{32}")


def _job_or_404(job_id: str, job):
    if job is None:
        raise ApiError(404, f"no job {job_id[:64]!r} (unknown, or expired after the results TTL)",
                       {"id": ["unknown or expired job id"]})  # fmt: skip
    return respond(job)


@bp.get("/jobs/<id>")
def get_job(id: str):  # noqa: A002 (the path parameter's name in the contract)
    from ..jobs import require

    queue = require()
    return _job_or_404(id, queue.view(id) if JOB_ID.fullmatch(id) else None)


@bp.delete("/jobs/<id>")
def cancel_job(id: str):  # noqa: A002
    from ..jobs import require

    queue = require()
    return _job_or_404(id, queue.cancel(id) if JOB_ID.fullmatch(id) else None)


@bp.get("/datasets")
def datasets():
    from backtest import datasets

    return respond({"datasets": [datasets.SYNTHETIC, *datasets.discover(current_app.config["DATA_DIR"])]})
