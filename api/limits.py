"""Request limits: a body-size limit per route and per-client rate limiting (flask-limiter).

Body limits: single-position calculators take ``MAX_BODY_DEFAULT`` (1 MiB), the risk and market routes
``MAX_BODY_SERIES`` (16 MiB, long series), ``POST /v1/backtests`` ``MAX_BODY_BACKTEST`` (64 MiB) and the batch
route ``MAX_CONTENT_LENGTH`` (64 MiB); beyond, a 413 problem naming ``body``. Werkzeug enforces the limit
while reading, so a chunked body without Content-Length is cut off too.

Time budget: every request gets ``REQUEST_BUDGET`` seconds (a :mod:`core.budget` deadline for this thread);
the engine's long loops (Monte Carlo steps, liquidation-map bars, cascade steps, batch groups) check it and
a request past it ends as a 503 problem with ``Retry-After`` (see :mod:`api.errors`).

Rate limits (https://flask-limiter.readthedocs.io): every route ``RATE_LIMIT`` per client, the expensive ones
(batch, backtests, Monte Carlo probability, liquidation map, cascade) also ``RATE_LIMIT_HEAVY``. A client is its
API key when one is sent, else its IP address (``TRUSTED_PROXIES`` > 0 trusts that many X-Forwarded-For hops).
Counters live in ``RATE_LIMIT_STORAGE``: ``memory://`` keeps them in each gunicorn worker (so N workers let
a client through N times the limit); ``redis://`` shares them across workers and machines. A 429 is a problem
response with ``Retry-After`` and the ``X-RateLimit-*`` headers. If the shared store is down, requests are
let through (and ``/readyz`` reports it) rather than failing.
"""

from __future__ import annotations

import hashlib

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from core import budget

from .security import OPEN, key_is_valid, presented_key

HEAVY = (
    "liquidation.liquidation_price_batch",
    "backtests.backtests",
    "backtests.sweeps",
    "risk.liquidation_probability",
    "market.liquidation_map",
    "market.cascade",
)
SERIES_PREFIXES = ("risk.", "market.", "liquidation.portfolio")


def body_limit(app: Flask, endpoint: str | None) -> int:
    """The largest body in bytes ``endpoint`` accepts (413 beyond): its route's limit, never above
    ``MAX_CONTENT_LENGTH``."""
    cfg = app.config
    if endpoint == "liquidation.liquidation_price_batch":
        limit = cfg["MAX_CONTENT_LENGTH"]
    elif endpoint in ("backtests.backtests", "backtests.sweeps"):
        limit = cfg["MAX_BODY_BACKTEST"]
    elif endpoint and endpoint.startswith(SERIES_PREFIXES):
        limit = cfg["MAX_BODY_SERIES"]
    else:
        limit = cfg["MAX_BODY_DEFAULT"]
    return min(limit, cfg["MAX_CONTENT_LENGTH"])


def client_key() -> str:
    """The rate-limit identity: the API key (hashed) when a valid one is sent, else the client address (so
    rotating made-up keys does not escape the limit)."""
    key = presented_key()
    if key and key_is_valid(current_app, key):
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return "ip:" + (get_remote_address() or "unknown")


def install(app: Flask) -> Limiter:
    seconds = app.config["REQUEST_BUDGET"] or None
    #: per endpoint: (body limit, time budget), worked out on its first request
    per_endpoint: dict[str | None, tuple[int, float | None]] = {}

    @app.before_request
    def _body_limit_and_time_budget():
        req = request._get_current_object()  # one context lookup instead of one per attribute
        endpoint = req.endpoint
        limits = per_endpoint.get(endpoint)
        if limits is None:
            # the budget is checked by the engine's long loops; backtests keep their own BACKTEST_TIMEOUT
            own = (endpoint or "").startswith("backtests.")
            limits = per_endpoint[endpoint] = (body_limit(app, endpoint), None if own else seconds)
        req.max_content_length = limits[0]
        budget.start(limits[1])

    @app.teardown_request
    def _end_time_budget(exc):
        budget.start(None)  # this thread's next request starts without a deadline until it sets its own

    limiter = Limiter(
        client_key,
        app=app,
        default_limits=[app.config["RATE_LIMIT"]],
        storage_uri=app.config["RATE_LIMIT_STORAGE"],
        headers_enabled=True,
        swallow_errors=True,
        enabled=app.config["RATE_LIMIT_ENABLED"],
        strategy="fixed-window",
    )
    for endpoint, view in list(app.view_functions.items()):
        if endpoint.startswith(OPEN):
            limiter.exempt(view)
        elif endpoint in HEAVY:
            app.view_functions[endpoint] = limiter.limit(app.config["RATE_LIMIT_HEAVY"])(view)
    app.extensions["liqrisk_limiter"] = limiter
    return limiter


def storage_ok(app: Flask) -> bool:
    limiter = app.extensions.get("liqrisk_limiter")
    if limiter is None or not app.config["RATE_LIMIT_ENABLED"]:
        return True
    try:
        return bool(limiter.storage.check())
    except Exception:  # a store that cannot even be asked is not ready
        return False
