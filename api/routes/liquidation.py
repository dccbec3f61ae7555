"""Liquidation routes: one position, a columnar batch, and a cross-margin portfolio."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app

import core
from core.liquidation import RESULT_FIELDS

from .. import batch, tier_store
from ..errors import ApiError
from ..jsonio import body, respond
from ..schemas.position import PortfolioSchema, PositionSchema
from ._common import call, load

bp = Blueprint("liquidation", __name__, url_prefix="/v1")

position_schema = PositionSchema()
portfolio_schema = PortfolioSchema()

SINGLE_FIELDS = (*RESULT_FIELDS, "warnings")


NULLABLE = ("liquidation_price", "bankruptcy_price", "initial_margin", "max_leverage", "distance_pct")


@bp.post("/liquidation-price")
def liquidation_price():
    data = load(position_schema)
    res = call(core.liquidation_price, nullable=NULLABLE, **data)
    out: dict[str, Any] = {k: res[k] for k in SINGLE_FIELDS}
    for k in ("tier", "liquidation_tier"):
        out[k] = out[k] or None  # 0 = an MMR override, no tier
    out["exchange"] = data.get("exchange", "binance")
    out["tiers_as_of"] = res["tiers_as_of"]
    if out["tier"] and "tiers" not in data:  # a packaged or loaded table was used
        stale = tier_store.freshness(res["tiers_as_of"], current_app.config["TIERS_MAX_AGE_DAYS"])
        if stale:
            out["warnings"] = [*out["warnings"], stale]
    return respond(out)


@bp.post("/liquidation-price/batch")
def liquidation_price_batch():
    data = body()
    unknown = sorted(set(data) - {"positions", "fields"})
    if unknown:
        raise ApiError(422, "unknown fields", {k: ["unknown field"] for k in unknown})
    if "positions" not in data:
        raise ApiError(422, "positions is required", {"positions": ["required"]})
    fields = data.get("fields")
    if "fields" in data and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields) or not fields):
        raise ApiError(
            422, "fields must be a non-empty list of output names", {"fields": ["must be a list of strings"]}
        )
    cfg = current_app.config
    positions = data.pop("positions")  # the parsed lists are freed column by column as they are converted
    limits = cfg["MAX_BATCH_ROWS"], fields, cfg["MAX_BATCH_GROUPS"], cfg["MAX_BATCH_OBJECT_ROWS"]
    return respond(batch.price(positions, *limits))


@bp.post("/portfolio/liquidation")
def portfolio_liquidation():
    data = load(portfolio_schema)
    res = call(core.portfolio_liquidation, nullable=("liquidation_price", "margin_ratio"), **data)
    per_position = (
        "symbol",
        "side",
        "liquidation_price",
        "maintenance_margin",
        "maintenance_margin_rate",
        "maintenance_amount",
        "tier",
        "unrealized_pnl",
        "notional",
    )
    positions = [
        {k: (res[k][i].item() if hasattr(res[k][i], "item") else res[k][i]) for k in per_position}
        for i in range(len(res["symbol"]))
    ]
    max_age = current_app.config["TIERS_MAX_AGE_DAYS"]
    stale_symbols = []
    for p, as_of in zip(positions, res["tiers_as_of"], strict=True):
        p["tier"] = p["tier"] or None
        p["tiers_as_of"] = as_of
        if p["tier"] and tier_store.freshness(as_of, max_age):
            stale_symbols.append(p["symbol"])
    account = ("wallet_balance", "margin_balance", "total_maintenance_margin", "margin_ratio", "warnings")
    out = {"positions": positions, **{k: res[k] for k in account}}
    if stale_symbols:
        symbols = ", ".join(sorted(set(stale_symbols)))
        out["warnings"] = [
            *out["warnings"],
            {"code": "stale_tiers", "message": f"tier tables older than {max_age} days or undated: {symbols}"},
        ]
    return respond(out)
