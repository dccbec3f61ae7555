"""Risk routes: liquidation probability and position sizing."""

from __future__ import annotations

from flask import Blueprint, current_app

from core import risk

from ..errors import ApiError
from ..jsonio import respond
from ..schemas.risk import LiquidationProbabilitySchema, PositionSizeSchema
from ._common import call, load

bp = Blueprint("risk", __name__, url_prefix="/v1/risk")

probability_schema = LiquidationProbabilitySchema()
size_schema = PositionSizeSchema()


@bp.post("/liquidation-probability")
def liquidation_probability():
    data = load(probability_schema)
    if data.get("model") == "student_t":
        _check_monte_carlo_cost(data)
    return respond(call(risk.liquidation_probability, nullable=("distance_sigmas", "liquidation_price"), **data))


def _check_monte_carlo_cost(data: dict) -> None:
    """Refuse up front a Monte Carlo run over ``PROBABILITY_MAX_PATH_STEPS`` (paths × time steps)."""
    limit = current_app.config["PROBABILITY_MAX_PATH_STEPS"]
    paths = data.get("paths", risk.DEFAULT_PATHS)
    steps = risk.monte_carlo_steps(data.get("horizon_hours", 24.0), data.get("monitoring_minutes"))
    if paths * steps > limit:
        rule = (
            f"paths x steps = {paths:,} x {steps:,} = {paths * steps:,}; at most {limit:,} "
            "(steps = horizon_hours x 60 / monitoring_minutes): use fewer paths, a shorter horizon or longer steps"
        )
        raise ApiError(
            422,
            f"the Monte Carlo run is too large: {rule}",
            {"paths": [rule], "monitoring_minutes": [rule], "horizon_hours": [rule]},
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
