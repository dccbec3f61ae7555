"""The job workers' tasks: a backtest, and a sweep as chunk tasks combined in order (a Celery chord).

``liqrisk worker`` imports this module, warms the numba kernels and vectorbt once in the worker's main process
and then forks its pool processes, which inherit them. Every task calls :mod:`backtest.run`'s public functions
(:func:`~backtest.run.run_backtest`, :func:`~backtest.run.sweep`, :func:`~backtest.run.overfitting`), so a
queued run is the in-process run.

A task that raises is not retried (the same input fails the same way): the job becomes ``failed`` with a
problem object (``ValueError("field: message")`` → 422 naming the field; an unexpected error → 500 saying only
that it was logged). A task whose worker died is requeued by Celery (``acks_late``); the job record counts its
starts and fails it, as poisoned, once it has started ``LIQRISK_JOB_MAX_ATTEMPTS`` times.
"""

from __future__ import annotations

import logging
import os
import time
from functools import cache, lru_cache
from typing import Any

import orjson
from celery.exceptions import Ignore, SoftTimeLimitExceeded

from core.errors import as_input_error

from . import datasets, queue

log = logging.getLogger("liqrisk.worker")
app = queue.app_from_env()


@cache
def store() -> queue.JobStore:
    return queue.JobStore.from_url(queue.broker_url(), queue.settings()["result_ttl"])


def data_dir() -> str:
    return os.environ.get("LIQRISK_DATA_DIR", "")


def _field_problem(exc: ValueError, prefix: str) -> dict[str, Any]:
    """The job's problem for a bad value: core's :class:`~core.errors.InputError` as raised, a backtester
    ``ValueError("field: message")`` read as one; 404 for an unknown exchange or symbol (as the API answers)."""
    err = as_input_error(exc)
    field = err.field
    path = field if field.startswith(("bars.", "dataset")) or field == "body" else f"{prefix}.{field}"
    return queue.problem(404 if err.kind == "unknown" else 422, str(exc), {path: [err.message]})


class _Run:
    """Start, cancel check, attempt count, errors and metrics around one task of a job."""

    def __init__(self, task, job_id: str, kind: str, record: bool):
        self.task, self.job_id, self.kind, self.record = task, job_id, kind, record
        self.task_id = task.request.id or job_id

    def __enter__(self):
        st, limits = store(), queue.settings()
        self.stopped = False
        got = st.start(self.job_id, self.task_id, self.task.request.hostname or "", os.getpid(), limits["time_limit"],
                       limits["max_attempts"])  # fmt: skip
        if got is None:  # expired before a worker got to it
            raise Ignore()
        starts, job = got
        if starts > limits["max_attempts"]:
            detail = (f"the job's worker was lost {limits['max_attempts']} times while running it; "
                      "it is not retried again")  # fmt: skip
            self.fail(queue.problem(500, detail, {"job": ["poisoned: stopped after the bounded number of retries"]}))
        if job.get("status") == "cancelled":
            raise Ignore()
        self.request = orjson.loads(job["request"])
        self.job = job
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.stopped:
            store().stopped(self.task_id)
        if exc is None or isinstance(exc, (Ignore, queue.JobFailed)):
            return False
        if isinstance(exc, SoftTimeLimitExceeded | TimeoutError):
            limit = queue.settings()["time_limit"] if isinstance(exc, SoftTimeLimitExceeded) else _backtest_budget()
            self.fail(queue.problem(422, f"the job needs more than its {limit:g} s run-time budget",
                                {"dataset": ["use fewer bars or fewer combinations"]}))  # fmt: skip
        from .data import DataError

        if isinstance(exc, DataError):  # a dataset file the loader cannot use: it names the file, line and column
            self.fail(queue.problem(422, str(exc), {"dataset": [str(exc)]}))
        if isinstance(exc, ValueError):
            self.fail(_field_problem(exc, "grid" if self.kind == "sweep" else "strategy"))
        log.error("job %s failed", self.job_id, exc_info=(exc_type, exc, tb))
        self.fail(queue.problem(500, "the job failed with an internal error; it has been logged"))
        return False

    def progress(self, value: float) -> None:
        store().update(self.job_id, progress=str(round(value, 4)))

    def fail(self, problem: dict[str, Any]):
        st = store()
        st.update(self.job_id, status="failed", error=orjson.dumps(problem).decode(), finished_at=queue.now_iso())
        st.record(self.kind, "failed", self.elapsed())
        st.stopped(self.task_id)
        raise queue.JobFailed(problem)

    def elapsed(self) -> float | None:
        job = store().get(self.job_id) or {}
        try:
            return time.time() - float(job["started_ts"])
        except (KeyError, ValueError):
            return None

    def succeeded(self) -> None:
        st = store()
        st.update(self.job_id, status="succeeded", progress="1", finished_at=queue.now_iso())
        st.touch(self.job_id)
        st.record(self.kind, "succeeded", self.elapsed())


@lru_cache(maxsize=4)
def _dataset_frame(folder: str, symbol: str, timeframe: str, stamp: tuple):
    from . import data

    del stamp  # cache key: the folder's files and their modification times
    frame, reports, warnings = data.load_dataset(folder, symbol, timeframe)
    for r in reports:
        warnings = warnings + r.warnings
    return frame, warnings


@lru_cache(maxsize=4)
def _dataset_window(folder: str, symbol: str, timeframe: str, stamp: tuple, start: str | None, end: str | None):
    """The bars from ``start`` to ``end`` (cached too: every chunk of a sweep asks for the same window)."""
    frame, warnings = _dataset_frame(folder, symbol, timeframe, stamp)
    if start:
        frame = frame[frame.index >= start]
    if end:
        frame = frame[frame.index <= end]
    return frame, warnings


@lru_cache(maxsize=4)
def _synthetic_frame(bars: int, timeframe: str, seed: int):
    from .synthetic import synthetic_market

    return synthetic_market(bars=bars, timeframe=timeframe, seed=seed)


@lru_cache(maxsize=2)
def _uploaded_frame(job_id: str):
    from . import data

    raw = store().bars(job_id)
    if raw is None:
        raise ValueError("bars: the uploaded bars of this job have expired")
    return data.frame_from_columns(orjson.loads(raw))


def load_frame(job_id: str, request: dict[str, Any]):
    """The job's market frame, its warnings and the symbol its liquidations are priced with."""
    ds = request.get("dataset")
    if ds is None:
        frame, warnings = _uploaded_frame(job_id)
        return frame, list(warnings), None
    if ds["name"] == "synthetic":
        frame = _synthetic_frame(int(ds.get("bars", 8760)), ds.get("timeframe", "1h"), int(ds.get("seed", 7)))
        return frame, [], None
    root = data_dir()
    if not datasets.find(root, ds["name"], ds["symbol"], ds["timeframe"]):
        raise ValueError(f"dataset: no dataset {ds['name']} {ds['symbol']} {ds['timeframe']} on this worker")
    folder = datasets.folder_of(root, ds["name"])
    stamp = tuple(sorted((f, os.stat(os.path.join(folder, f)).st_mtime) for f in os.listdir(folder)))
    frame, warnings = _dataset_window(folder, ds["symbol"], ds["timeframe"], stamp, ds.get("start"), ds.get("end"))
    max_bars = int(os.environ.get("LIQRISK_BACKTEST_MAX_BARS", 250_000))
    if len(frame) > max_bars:
        raise ValueError(f"dataset: {len(frame)} bars; at most {max_bars} (narrow start/end)")
    if len(frame) < 10:
        raise ValueError("dataset: fewer than 10 bars between start and end")
    return frame, list(warnings), datasets.normalise_symbol(ds["symbol"])


def _backtest_budget() -> float:
    """Run-time budget of one backtest in seconds (``LIQRISK_BACKTEST_TIMEOUT``, default 30)."""
    try:
        return float(os.environ.get("LIQRISK_BACKTEST_TIMEOUT", 30))
    except ValueError:
        return 30.0


def _config(request: dict[str, Any], symbol: str | None) -> dict[str, Any]:
    cfg = dict(request.get("strategy") or {})
    if symbol and "symbol" not in cfg:
        cfg["symbol"] = symbol
    return cfg


@app.task(name=queue.TASK_BACKTEST, bind=True)
def backtest_job(self, job_id: str) -> dict[str, Any]:
    """One backtest; returns the body ``POST /v1/backtests`` used to answer with."""
    from core.jsonable import to_jsonable

    from .run import downsample, run_backtest

    with _Run(self, job_id, "backtest", record=True) as run:
        req = run.request
        frame, warnings, symbol = load_frame(job_id, req)
        run.progress(0.2)
        result = run_backtest(frame, _config(req, symbol), deadline=time.monotonic() + _backtest_budget())
        out = to_jsonable(
            {
                "metrics": result["metrics"],
                "trades": result["trades"] if req.get("include_trades", True) else [],
                "equity": downsample(frame.index, result["equity"], req.get("equity_points", 500)),
                "bars": len(frame),
                "start": frame.index[0].isoformat(),
                "end": frame.index[-1].isoformat(),
                "warnings": warnings + list(result.get("warnings", [])),
                "strategy": result["config"],
                "seconds": result["seconds"],
            }
        )
        run.succeeded()
        return out


#: most columns simulated at once in a chunk task, as in the in-process sweep: a year of hourly bars costs ~25 %
#: more per column at 256 (the equity curves and returns leave the CPU cache), 5-minute bars more at 32 or 64
SIM_COLUMNS = 128


class _SignalCache(dict):
    """The signal columns a worker computed for one job (see :func:`backtest.run.sweep`), at most ``budget``
    bytes: the exit signals every chunk of a sweep shares are computed once per worker process."""

    def __init__(self, budget: int = 32 * 1024 * 1024):
        super().__init__()
        self.budget = budget

    def __setitem__(self, key, value) -> None:
        if value.nbytes <= self.budget:
            self.budget -= value.nbytes
            super().__setitem__(key, value)


@lru_cache(maxsize=2)
def _signal_cache(job_id: str) -> _SignalCache:
    return _SignalCache()


def pack_part(columns: dict[str, Any]) -> bytes:
    """A chunk's metric columns as bytes: a JSON header (name, numpy dtype, byte count of each column), a
    newline, then the columns' raw values (exact: no float goes through text)."""
    import numpy as np

    arrays = {k: np.ascontiguousarray(v) for k, v in columns.items()}
    header = [[k, a.dtype.str, a.nbytes] for k, a in arrays.items()]
    return orjson.dumps(header) + b"\n" + b"".join(a.tobytes() for a in arrays.values())


def unpack_part(raw: bytes) -> dict[str, Any]:
    import numpy as np

    head, _, body = raw.partition(b"\n")
    out, at = {}, 0
    for name, dtype, nbytes in orjson.loads(head):
        out[name] = np.frombuffer(body, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize, offset=at)
        at += nbytes
    return out


@app.task(name=queue.TASK_CHUNK, bind=True)
def sweep_chunk(self, job_id: str, index: int, total: int, grid: dict[str, list]) -> dict[str, Any]:
    """One chunk of a sweep: :func:`backtest.run.sweep` over a sub-grid (a contiguous run of the full grid's
    rows). Its metric columns go to Redis as one binary part (:func:`pack_part`, beside the job record) for the
    combining task; the task's own result is only the chunk's index and row count."""
    from .run import sweep

    with _Run(self, job_id, "sweep", record=False) as run:
        req = run.request
        frame, _warnings, symbol = load_frame(job_id, req)
        block = min(int(req.get("chunk", 128)), SIM_COLUMNS)
        table = sweep(frame, grid, _config(req, symbol), split=req.get("split"), chunk=block,
                      signal_cache=_signal_cache(job_id))  # fmt: skip
        part = pack_part({k: table[k].to_numpy() for k in table.columns if k not in grid})
        store().chunk_done(job_id, index, total, part, run.task_id)
        run.stopped = True
        return {"index": index, "rows": len(table)}


@app.task(name=queue.TASK_COMBINE, bind=True)
def sweep_combine(self, parts: list[dict[str, Any]], job_id: str) -> dict[str, Any]:
    """The chunks in order → the ranked table (in-sample/out-of-sample metrics), the best configuration and how
    well in-sample ranks carry out of sample."""
    import numpy as np

    from core.jsonable import to_jsonable

    from .run import grid_table, overfitting, sweep_warnings

    with _Run(self, job_id, "sweep", record=True) as run:
        req = run.request
        rows = {p["index"]: p["rows"] for p in parts}
        if sorted(rows) != list(range(len(rows))):
            raise RuntimeError(f"sweep chunks missing: got {sorted(rows)}")
        s = queue.settings()
        raw = store().parts(job_id, len(rows), keep=max(600, 2 * s["visibility_timeout"]))
        if any(r is None for r in raw):
            raise RuntimeError(f"sweep parts missing: {[i for i, r in enumerate(raw) if r is None]}")
        got = [unpack_part(r) for r in raw]
        table = grid_table(req["grid"])
        if len(table) != sum(rows.values()):
            raise RuntimeError(f"sweep chunks have {sum(rows.values())} rows for {len(table)} combinations")
        for k in got[0] if got else ():
            table[k] = np.concatenate([g[k] for g in got])
        frame, warnings, _symbol = load_frame(job_id, req)
        split = req.get("split")
        sort = req.get("sort", "sharpe")
        key = ("is_" if split else "") + sort
        if key not in table:
            raise ValueError(f"sort: unknown metric {sort!r}")
        ranked = table.sort_values(key, ascending=False, na_position="last", kind="stable")
        keys = list(req["grid"])
        top = ranked.head(int(req.get("top", 1000)))
        best = ranked.head(1).to_dict(orient="records")[0] if len(ranked) else {}
        out = {
            "combinations": len(table),
            "sort": key,
            "results": top.to_dict(orient="records"),
            "best": {"config": {**(req.get("strategy") or {}), **{k: best.get(k) for k in keys}},
                     "metrics": {k: v for k, v in best.items() if k not in keys}},
            "bars": len(frame),
            "start": frame.index[0].isoformat(),
            "end": frame.index[-1].isoformat(),
            "warnings": warnings + sweep_warnings(table),
        }  # fmt: skip
        if split:
            out["overfitting"] = overfitting(table, sort)
        out = to_jsonable(out)
        run.succeeded()
        return out
