"""Request ids, one JSON access-log line per request, and Prometheus metrics that add up across workers.

* ``X-Request-ID``: taken from the request when it is 1-128 characters of ``[A-Za-z0-9._-]``, else a new
  UUID4 hex; echoed in the response header and in the access log.
* Access log (logger ``liqrisk.access``, stdout, one JSON object per line): ``ts``, ``request_id``, ``method``,
  ``path``, ``route``, ``status``, ``duration_ms``, ``bytes_in``, ``bytes_out``, ``client``, ``pid``, and
  ``rows`` for batch requests.
* Metrics (prometheus_client, https://prometheus.github.io/client_python/multiprocess/): under gunicorn
  ``PROMETHEUS_MULTIPROC_DIR`` is set (gunicorn.conf.py), every worker writes its samples there and
  ``/metrics`` merges them, so a scrape sees the whole server whichever worker answers. Series:
  ``liqrisk_http_requests_total{route,method,status}``, ``liqrisk_http_request_duration_seconds{route,method}``
  (histogram), ``liqrisk_batch_rows{route}`` (histogram of positions per batch request),
  ``liqrisk_backtest_duration_seconds`` and ``liqrisk_backtest_bars`` (histograms),
  ``liqrisk_request_budget_exceeded_total{route}`` (requests stopped at ``REQUEST_BUDGET``, answered 503).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time

import orjson
from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
access_log = logging.getLogger("liqrisk.access")

REQUESTS = Counter("liqrisk_http_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram(
    "liqrisk_http_request_duration_seconds",
    "Time from the request reaching Flask to the response leaving it",
    ["route", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BUDGET_EXCEEDED = Counter(
    "liqrisk_request_budget_exceeded_total", "Requests stopped at their compute budget (503)", ["route"]
)
HEAVY_WORKER_FAILED = Counter(
    "liqrisk_heavy_worker_failures_total",
    "Heavy requests whose heavy worker stopped before answering (503; api/heavy_workers.py)",
    ["route"],
)
HEAVY_LANE_BUSY = Counter(
    "liqrisk_heavy_lane_busy_total",
    "Heavy requests not started: no turn in the heavy lane within LIQRISK_HEAVY_QUEUE_WAIT (503; api/heavy_lane.py)",
    ["route"],
)
CLIENT_GONE = Counter(
    "liqrisk_client_gone_total",
    "Heavy requests not started because their client hung up while they waited (499; api/hangup.py)",
    ["route"],
)
BATCH_ROWS = Histogram("liqrisk_batch_rows", "Positions per batch request", ["route"],
                       buckets=(1, 10, 100, 1_000, 10_000, 100_000, 1_000_000))  # fmt: skip
BACKTEST_SECONDS = Histogram("liqrisk_backtest_duration_seconds", "Run time of one backtest",
                             buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))  # fmt: skip
BACKTEST_BARS = Histogram("liqrisk_backtest_bars", "Bars per backtest",
                          buckets=(100, 1_000, 10_000, 50_000, 100_000, 250_000, 1_000_000))  # fmt: skip


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time (so a test's capture sees it too)."""

    liqrisk = True

    @property
    def stream(self):  # type: ignore[override]
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass

    def write_line(self, line: str) -> None:
        """What ``emit`` does with a formatted record: the line and a newline in one write, then a flush."""
        with self.lock:
            try:
                stream = sys.stdout
                stream.write(line + "\n")
                stream.flush()
            except Exception:  # as emit: a broken stream is reported by logging, never fails the request
                self.handleError(logging.makeLogRecord({"msg": line}))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = getattr(record, "payload", None) or {"message": record.getMessage()}
        return orjson.dumps(payload, default=str).decode()


def log_access(payload: dict) -> None:
    """One access-log line. When the logger's only handler is this module's stdout handler (the default), the
    line is written by that handler directly (same bytes, same lock, no LogRecord, no caller lookup: about a
    tenth of a request's cost otherwise); any other handler or filter gets it through :mod:`logging`."""
    handlers = access_log.handlers
    only = handlers[0] if len(handlers) == 1 else None
    if (
        isinstance(only, StdoutHandler)
        and not access_log.filters
        and not only.filters
        and only.level <= logging.INFO
        and isinstance(only.formatter, JsonFormatter)
    ):
        only.write_line(orjson.dumps(payload, default=str).decode())
    else:
        access_log.info("request", extra={"payload": payload})


def new_request_id() -> str:
    """A random UUID4 as 32 hex digits, as ``uuid.uuid4().hex`` (RFC 4122 version and variant bits), without
    building a ``UUID`` object."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return b.hex()


_second: tuple[int, str] = (-1, "")


def timestamp() -> str:
    """Now in UTC as ISO 8601 with milliseconds, as ``datetime.now(UTC).isoformat(timespec="milliseconds")``
    (``2026-12-01T14:02:58.843+00:00``); the date and time of day are formatted once per second."""
    global _second
    now = time.time()
    sec = int(now)
    cached = _second
    if cached[0] != sec:
        cached = _second = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    return f"{cached[1]}.{int((now - sec) * 1000):03d}+00:00"


#: labelled children resolved once per label set (``labels()`` takes a lock and builds a key each call)
_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
_batch_children: dict[str, Histogram] = {}


def _count(route: str, method: str, status: int, elapsed: float) -> None:
    key = (route, method, status)
    pair = _children.get(key)
    if pair is None:
        pair = _children[key] = (REQUESTS.labels(route, method, str(status)), LATENCY.labels(route, method))
    pair[0].inc()
    pair[1].observe(elapsed)


def _batch_rows(route: str) -> Histogram:
    child = _batch_children.get(route)
    if child is None:
        child = _batch_children[route] = BATCH_ROWS.labels(route)
    return child


def metrics_text() -> tuple[bytes, str]:
    """The exposition text: merged across processes under gunicorn, this process's registry otherwise."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def install(app: Flask) -> None:
    if app.config["ACCESS_LOG"] and not any(getattr(h, "liqrisk", False) for h in access_log.handlers):
        handler = StdoutHandler()
        handler.setFormatter(JsonFormatter())
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False

    @app.before_request
    def _start():
        req = request._get_current_object()  # one context lookup instead of one per attribute
        ctx = g._get_current_object()
        ctx.t0 = time.perf_counter()
        rid = req.environ.get("HTTP_X_REQUEST_ID", "")
        ctx.request_id = rid if REQUEST_ID.fullmatch(rid) else new_request_id()

    log_on = app.config["ACCESS_LOG"]

    @app.after_request
    def _finish(resp: Response) -> Response:
        req = request._get_current_object()
        ctx = g._get_current_object()
        t0 = getattr(ctx, "t0", None)
        elapsed = time.perf_counter() - t0 if t0 is not None else 0.0
        rid = getattr(ctx, "request_id", None) or new_request_id()
        resp.headers["X-Request-ID"] = rid
        rule = req.url_rule
        route = rule.rule if rule is not None else "unmatched"
        method = req.method
        status = resp.status_code
        _count(route, method, status, elapsed)
        rows = getattr(ctx, "batch_rows", None)
        if rows is not None:
            _batch_rows(route).observe(rows)
        # the logger is process-wide; an app whose config turns the access log off (tests, `liqrisk calc`) stays quiet
        if log_on and access_log.isEnabledFor(logging.INFO):
            payload = {
                "ts": timestamp(),
                "level": "info",
                "request_id": rid,
                "method": method,
                "path": req.path,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1e3, 3),
                "bytes_in": req.content_length or 0,
                "bytes_out": resp.calculate_content_length() or 0,
                "client": req.remote_addr,
                "pid": os.getpid(),
            }
            if rows is not None:
                payload["rows"] = rows
            log_access(payload)
        return resp
