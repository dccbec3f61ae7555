"""Market routes: squeeze score and liquidation summary."""

from __future__ import annotations

from flask import Blueprint, current_app

from core import liquidation_clusters, market

from ..errors import ApiError
from ..jsonio import respond
from ..schemas.market import CascadeSchema, LiquidationMapSchema, LiquidationSummarySchema, SqueezeScoreSchema
from ._common import call, load

bp = Blueprint("market", __name__, url_prefix="/v1/market")

squeeze_schema = SqueezeScoreSchema()
summary_schema = LiquidationSummarySchema()
map_schema = LiquidationMapSchema()
cascade_schema = CascadeSchema()


@bp.post("/squeeze-score")
def squeeze_score():
    data = load(squeeze_schema)
    series = data.pop("series")
    try:
        return respond(call(market.squeeze_score, **series, **data))
    except ApiError as err:  # name series fields by their path in the request
        err.errors = {(f"series.{k}" if k in series else k): v for k, v in err.errors.items()}
        raise


@bp.post("/liquidation-summary")
def liquidation_summary():
    data = load(summary_schema)
    missing = [k for k in ("long_liquidations", "short_liquidations") if k not in data]
    if "events" not in data and missing:
        raise ApiError(
            422,
            "give long_liquidations and short_liquidations per asset, or events",
            {k: ["required without events"] for k in missing},
        )
    return respond(call(market.liquidation_summary, nullable=("long_share", "short_share"), **data))


@bp.post("/liquidation-map")
def liquidation_map():
    data = load(map_schema)
    limit = current_app.config["MAP_MAX_LEVELS"]
    bars, leverages = len(data["close"]), len(data.get("leverage", liquidation_clusters.DEFAULT_LEVERAGE))
    if bars * leverages > limit:
        rule = f"bars x leverages = {bars:,} x {leverages} = {bars * leverages:,}; at most {limit:,}"
        raise ApiError(422, f"the liquidation map is too large: {rule}", {"close": [rule], "leverage": [rule]})
    return respond(call(liquidation_clusters.liquidation_map, **data))


@bp.post("/cascade")
def cascade():
    return respond(call(liquidation_clusters.cascade, nullable=("amplification",), **load(cascade_schema)))
