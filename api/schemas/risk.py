"""Schemas of the risk resources (``/v1/risk/liquidation-probability``, ``/v1/risk/position-size``).

Their position fields come from the field spec (:mod:`core.fields`), as in :mod:`.position`.
"""

from __future__ import annotations

from marshmallow import fields, validate

from .base import Base, Number, NumberList, one_of
from .from_spec import fields_from_spec

#: the position whose liquidation price is wanted, when no liquidation_price is given (no defaults: a field
#: not given means no position, not the single position's default)
PROBABILITY_POSITION = (
    "exchange",
    "symbol",
    "contract_type",
    "contract_size",
    "margin_mode",
    "entry_price",
    "quantity",
    "leverage",
    "margin",
    "wallet_balance",
    "maintenance_margin_rate",
    "maintenance_amount",
    "taker_fee_rate",
)


class LiquidationProbabilitySchema(
    Base.from_dict(
        {
            **fields_from_spec("side", "mark_price", required=("side", "mark_price")),
            "liquidation_price": Number(),
            "volatility": Number(),
            "closes": NumberList(min_length=3, max_length=100_000),
            "periods_per_year": Number(),
            "volatility_method": one_of("ewma", "realized"),
            "horizon_hours": Number(load_default=24.0, validate=validate.Range(min=0, max=8760, min_inclusive=False)),
            "drift": Number(),
            "model": one_of("gbm", "student_t"),
            "monitoring_minutes": Number(validate=validate.Range(min=0.01, max=10080)),
            "degrees_of_freedom": Number(),
            "paths": fields.Integer(strict=True, validate=validate.Range(min=100, max=200_000)),
            "seed": fields.Integer(strict=True, validate=validate.Range(min=0, max=2**32 - 1)),
            **fields_from_spec(*PROBABILITY_POSITION, required=(), load_defaults=False, none_default=("exchange",)),
        },
        name="LiquidationProbabilityFields",
    )
):
    """A position (or its side, mark and liquidation price) and the market model of its probability."""


class PositionSizeSchema(
    Base.from_dict(
        {
            "equity": Number(required=True),
            "risk_fraction": Number(required=True),
            **fields_from_spec(
                "side",
                "entry_price",
                "stop_price",
                "exchange",
                "symbol",
                "leverage",
                required=("side", "entry_price", "stop_price"),
            ),
            **fields_from_spec("open_fee_rate", "close_fee_rate", load_defaults=False),
            "liquidation_buffer": Number(),
            **fields_from_spec("maintenance_margin_rate", "maintenance_amount"),
        },
        name="PositionSizeFields",
    )
):
    """An account's equity and risk budget, and the trade whose size is wanted."""
