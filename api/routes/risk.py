"""Risk routes: liquidation probability and position sizing."""

from __future__ import annotations

from flask import Blueprint

from core import risk

from ..jsonio import respond
from ..schemas.risk import LiquidationProbabilitySchema, PositionSizeSchema
from ._common import call, load

bp = Blueprint("risk", __name__, url_prefix="/v1/risk")

probability_schema = LiquidationProbabilitySchema()
size_schema = PositionSizeSchema()


@bp.post("/liquidation-probability")
def liquidation_probability():
    return respond(
        call(
            risk.liquidation_probability, nullable=("distance_sigmas", "liquidation_price"), **load(probability_schema)
        )
    )


@bp.post("/position-size")
def position_size():
    return respond(
        call(
            risk.position_size,
            nullable=("max_leverage_beyond_stop", "recommended_leverage", "liquidation_price"),
            **load(size_schema),
        )
    )
