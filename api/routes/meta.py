"""Service routes: exchanges and tier tables, liveness, the OpenAPI document and offline docs."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, request

import core
from core.rulesets import get_ruleset
from core.tiers import EXCHANGES, symbols

from ..errors import ApiError, from_value_error
from ..jsonio import respond

bp = Blueprint("meta", __name__)


@cache
def spec_text() -> str:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "openapi.yaml", here.parent / "openapi.yaml"):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise FileNotFoundError("openapi.yaml")


@bp.get("/healthz")
def healthz():
    return respond({"status": "ok"})


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
