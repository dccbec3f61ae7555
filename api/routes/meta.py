"""Service routes: exchanges and tier tables, liveness, the OpenAPI document and offline docs."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, current_app, request

import core
from core.rulesets import get_ruleset
from core.tiers import EXCHANGES, symbol_list, symbols

from .. import limits, tier_store
from ..errors import ApiError, from_value_error, problem
from ..jsonio import respond
from ..observability import metrics_text

bp = Blueprint("meta", __name__)


@cache
def spec_text() -> str:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "openapi.yaml", here.parent / "openapi.yaml"):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise FileNotFoundError("openapi.yaml")


def _jobs():
    """The job queue when one is configured (imported only then: the calculators never load the queue client)."""
    if not current_app.config.get("BROKER_URL"):
        return None
    from ..jobs import jobs

    return jobs()


@bp.get("/healthz")
def healthz():
    return respond({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Readiness: the engine answers a known position correctly (a 10x BTCUSDT long at 10,000 liquidates at
    (10,000 − 1,000)/(1 − 0.004)) and the shared rate-limit store, when one is configured, answers; when jobs
    are configured, the broker answers and at least one job worker replies to a ping. 503 problem otherwise.
    ``/healthz`` is liveness only."""
    checks = {"engine": False, "rate_limit_storage": limits.storage_ok(current_app)}
    queue = _jobs()
    if queue is not None:
        checks["broker"] = queue.broker_ok()
        checks["workers"] = checks["broker"] and queue.live_workers() > 0
    try:
        lp = core.liquidation_price(side="long", entry_price=10_000.0, quantity=1.0, leverage=10.0, symbol="BTCUSDT")
        checks["engine"] = abs(lp["liquidation_price"] - 9_036.144578313253) < 1e-6
    except Exception:  # any failure means not ready
        checks["engine"] = False
    required = {k: v for k, v in checks.items() if k != "workers" or current_app.config["READY_REQUIRES_WORKER"]}
    if all(required.values()):
        return respond({"status": "ready", "checks": checks})
    bad = [k for k, v in required.items() if not v]
    return problem(503, "not ready: " + ", ".join(bad), {k: ["failing"] for k in bad}, "Service Unavailable")


@bp.get("/metrics")
def metrics():
    text, content_type = metrics_text()
    queue = _jobs()
    if queue is not None:
        text += queue.metrics_text()
    return Response(text, content_type=content_type)


@bp.get("/openapi.yaml")
def openapi():
    return Response(spec_text(), mimetype="application/yaml")


@bp.get("/v1/exchanges")
def exchanges():
    out = []
    for name in EXCHANGES:
        rules = get_ruleset(name)
        out.append(
            {
                "exchange": name,
                "source": rules.source,
                "maintenance_margin_basis": rules.mm_basis,
                "retier_at_liquidation": rules.retier,
                "fee_in_liquidation": rules.fee_in_mm or rules.close_fee_in_mm,
                "default_taker_fee_rate": rules.default_taker_fee,
                "default_symbol": rules.default_symbol,
                "symbols": symbols(name),
            }
        )
    return respond({"exchanges": out})


@bp.get("/v1/exchanges/<exchange>/tiers/<symbol>")
def tiers(exchange: str, symbol: str):
    notional = request.args.get("notional")
    value = None
    if notional is not None:
        try:
            value = float(notional)
        except ValueError:
            raise ApiError(422, "notional must be a number", {"notional": ["must be a number"]}) from None
        if not math.isfinite(value) or value < 0:
            raise ApiError(422, "notional must be a finite number >= 0", {"notional": ["must be a finite number >= 0"]})
    try:
        return respond(core.tiers_for(exchange, symbol, notional=value))
    except ValueError as exc:
        err = from_value_error(exc)
        if exchange not in EXCHANGES or exchange == "generic":
            err.status = 404
        raise err from None


@bp.get("/v1/exchanges/<exchange>/symbols")
def exchange_symbols(exchange: str):
    """Known symbols with their table's ``as_of``, ``source`` and ``complete`` (packaged or loaded from the
    tiers directory), and whether it is older than the ``stale_tiers`` limit."""
    if exchange not in EXCHANGES:
        raise ApiError(404, f"unknown exchange {exchange!r}", {"exchange": [f"allowed: {', '.join(EXCHANGES)}"]})
    max_age = current_app.config["TIERS_MAX_AGE_DAYS"]
    rows = symbol_list(exchange)
    for row in rows:
        row["stale"] = tier_store.freshness(row["as_of"], max_age) is not None
    return respond({"exchange": exchange, "count": len(rows), "max_age_days": max_age, "symbols": rows})
