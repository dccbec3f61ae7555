"""``POST /v1/backtests`` and ``POST /v1/sweeps``: validate, store the job and queue it for the workers.

Both answer **202** with ``Location: /v1/jobs/{id}`` and the job (:mod:`api.jobs`); with ``?wait=N`` they answer
200 with the finished job when it ends within N seconds. The work runs in ``liqrisk worker`` processes, never
here: this module imports only the light strategy fields (:mod:`backtest.params`) and dataset listing
(:mod:`backtest.datasets`). Uploaded bars (at most ``LIQRISK_BACKTEST_MAX_BARS`` bars and
``LIQRISK_JOB_MAX_UPLOAD_BYTES``) are stored with the job so a worker on any machine can run it. A submission
that uploads bars checks and stores them in its turn of the heavy lane (:mod:`api.heavy_lane`), which it gives
back before it waits for its job.
"""

from __future__ import annotations

import io
import math
from functools import cache
from typing import Any

import orjson
from flask import Blueprint, current_app, request
from marshmallow import ValidationError

import core

from ..errors import ApiError, flatten_messages, from_value_error, problem
from ..heavy_lane import end_turn
from ..jsonio import body, respond
from ..limits import client_key
from ._common import load

bp = Blueprint("backtests", __name__, url_prefix="/v1")


@cache
def _schemas():
    """Built on first use: they read the strategy fields from the backtest package, which the calculator
    routes never import."""
    from ..schemas.backtests import BacktestSchema, SweepSchema

    return BacktestSchema(), SweepSchema()


def _check_strategy(cfg: dict[str, Any], prefix: str = "strategy") -> None:
    from ..schemas.backtests import check_strategy

    try:
        check_strategy(cfg)
    except ValidationError as exc:
        errors = flatten_messages(exc.normalized_messages(), prefix)
        raise ApiError(422, "the request has invalid fields: " + ", ".join(sorted(errors)), errors) from None
    if "symbol" in cfg:
        from backtest.params import check_contract

        try:
            core.tiers_for(cfg.get("exchange", "binance"), cfg["symbol"])
            check_contract(cfg.get("exchange", "binance"), cfg["symbol"])
        except ValueError as exc:
            raise from_value_error(exc, prefix) from None


def _load(schema) -> dict[str, Any]:
    """The body loaded by ``schema``; uploaded bar columns longer than ``LIQRISK_BACKTEST_MAX_BARS`` are refused
    (413) before any of their values is checked."""
    from ..schemas.backtests import BAR_COLUMNS

    data = body()
    bars = data.get("bars")
    if isinstance(bars, dict):
        names = {name for name, _required, _nulls in BAR_COLUMNS}
        for key, column in bars.items():
            if key in names and isinstance(column, list):
                _bar_count(f"bars.{key}", len(column))
    return load(schema, data)


def _bar_count(field: str, n: int) -> None:
    """413 naming ``field`` when ``n`` bars are more than a job takes."""
    max_bars = current_app.config["BACKTEST_MAX_BARS"]
    if n > max_bars:
        raise ApiError(413, f"a job takes at most {max_bars} bars", {field: [f"{n} bars; at most {max_bars}"]})


def _source(data: dict[str, Any]) -> bytes | None:
    """The uploaded bars as stored with the job (None for a named dataset); 413 beyond the limits."""
    if "dataset" in data:
        ds = data["dataset"]
        _bar_count("dataset.bars", ds.get("bars", 8760) if ds["name"] == "synthetic" else 0)
        return None
    raw = orjson.dumps(data["bars"], option=orjson.OPT_SERIALIZE_NUMPY)  # the columns are float64 arrays
    limit = current_app.config["JOB_MAX_UPLOAD_BYTES"]
    if len(raw) > limit:
        raise ApiError(413, f"uploaded bars are stored with the job: at most {limit} bytes",
                       {"bars": [f"{len(raw)} bytes; at most {limit}"]})  # fmt: skip
    return raw


def _submit(kind: str, request_doc: dict[str, Any], bars: bytes | None, chunks=None):
    """Queue the job: ``(queue, job)``, or the 429 problem of a client holding too many unfinished jobs."""
    from .. import jobs

    queue = jobs.require()
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 255:
        raise ApiError(422, "Idempotency-Key: 1 to 255 characters", {"Idempotency-Key": ["1 to 255 characters"]})
    try:
        job, _created = queue.submit(kind, request_doc, client_key(), bars, chunks, key,
                                     current_app.config["JOB_MAX_QUEUED"])  # fmt: skip
    except ApiError as exc:
        if exc.status != 429:
            raise
        return problem(429, exc.detail, exc.errors, headers={"Retry-After": "5"})  # a job may have finished by then
    return queue, job


def _answer(submitted):
    """The answer to a submission (:func:`_submit`'s result), once the request's body, its loaded bars and their
    stored bytes are let go (they were in the frames that returned) and the heavy lane's turn is given back:
    waiting for the job (``?wait``) holds neither memory nor the turn."""
    from .. import jobs

    request.environ["wsgi.input"] = io.BytesIO()  # the raw body, which the heavy lane's read left there
    end_turn()
    if not isinstance(submitted, tuple):
        return submitted  # the 429
    queue, job = submitted
    wait = jobs.wait_seconds(request.args.get("wait"))
    if wait > 0 and job["status"] not in jobs.FINAL:
        job = queue.wait(job["id"], wait) or job
    resp = respond(job, 200 if job["status"] in jobs.FINAL and wait > 0 else 202)
    resp.headers["Location"] = f"/v1/jobs/{job['id']}"
    return resp


@bp.post("/backtests")
def backtests():
    return _answer(_backtest())


def _backtest():
    data = _load(_schemas()[0])
    _check_strategy(data["strategy"])
    bars = _source(data)
    doc = {k: v for k, v in data.items() if k != "bars"}
    return _submit("backtest", doc, bars)


@bp.post("/sweeps")
def sweeps():
    return _answer(_sweep())


def _sweep():
    from backtest.queue import sweep_chunks

    data = _load(_schemas()[1])
    _check_strategy(data["strategy"])
    grid = data["grid"]
    combos = math.prod(len(v) for v in grid.values())
    most = current_app.config["SWEEP_MAX_COMBINATIONS"]
    if combos > most:
        msg = f"{combos} combinations (the product of the value counts); at most {most}"
        raise ApiError(422, f"a sweep runs at most {most} combinations", {"grid": [msg]})
    bars = _source(data)
    chunk = current_app.config["SWEEP_CHUNK"]
    doc = {k: v for k, v in data.items() if k != "bars"}
    doc["split"] = data.get("split")  # null (dropped by load) means no in-sample/out-of-sample split
    doc["chunk"] = chunk
    return _submit("sweep", doc, bars, sweep_chunks(grid, chunk))
