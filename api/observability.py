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

import json
import logging
import os
import re
import sys
import time
import uuid
from datetime import UTC, datetime

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


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = getattr(record, "payload", None) or {"message": record.getMessage()}
        return json.dumps(payload, separators=(",", ":"), default=str)


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
        g.t0 = time.perf_counter()
        rid = request.headers.get("X-Request-ID", "")
        g.request_id = rid if REQUEST_ID.fullmatch(rid) else uuid.uuid4().hex

    @app.after_request
    def _finish(resp: Response) -> Response:
        elapsed = time.perf_counter() - g.get("t0", time.perf_counter())
        rid = g.get("request_id") or uuid.uuid4().hex
        resp.headers["X-Request-ID"] = rid
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        REQUESTS.labels(route, request.method, str(resp.status_code)).inc()
        LATENCY.labels(route, request.method).observe(elapsed)
        rows = g.get("batch_rows")
        if rows is not None:
            BATCH_ROWS.labels(route).observe(rows)
        # the logger is process-wide; an app whose config turns the access log off (tests, `liqrisk calc`) stays quiet
        if app.config["ACCESS_LOG"] and access_log.isEnabledFor(logging.INFO):
            payload = {
                "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "level": "info",
                "request_id": rid,
                "method": request.method,
                "path": request.path,
                "route": route,
                "status": resp.status_code,
                "duration_ms": round(elapsed * 1e3, 3),
                "bytes_in": request.content_length or 0,
                "bytes_out": resp.calculate_content_length() or 0,
                "client": request.remote_addr,
                "pid": os.getpid(),
            }
            if rows is not None:
                payload["rows"] = rows
            access_log.info("request", extra={"payload": payload})
        return resp
