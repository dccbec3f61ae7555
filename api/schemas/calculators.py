"""Schemas of the calculator resources (``/v1/pnl``, ``/v1/target-price``, ``/v1/max-open``,
``/v1/average-entry``, ``/v1/break-even``, ``/v1/funding``).

Their position and trade fields come from the field spec (:mod:`core.fields`), as in :mod:`.position`.
"""

from __future__ import annotations

from marshmallow import fields, validate

from .base import Base, Number, NumberList, tiers_field
from .from_spec import fields_from_spec

MAX_SERIES = 100_000


class PnlSchema(
    Base.from_dict(
        fields_from_spec(
            "side",
            "entry_price",
            "exit_price",
            "quantity",
            "leverage",
            "contract_type",
            "contract_size",
            "open_fee_rate",
            "close_fee_rate",
            "funding_paid",
            "exchange",
            "symbol",
            required=("side", "entry_price", "exit_price", "quantity", "leverage"),
        ),
        name="PnlFields",
    )
):
    """A closed trade whose PnL, ROE and fees are wanted."""


class TargetPriceSchema(
    Base.from_dict(
        fields_from_spec(
            "side",
            "entry_price",
            "leverage",
            "target_roe",
            "contract_type",
            required=("side", "entry_price", "leverage", "target_roe"),
        ),
        name="TargetPriceFields",
    )
):
    """An open position and the ROE it should reach."""


class MaxOpenSchema(
    Base.from_dict(
        {
            **fields_from_spec(
                "exchange",
                "symbol",
                "side",
                "entry_price",
                "leverage",
                "available_balance",
                "taker_fee_rate",
                "mark_price",
                "last_price",
                "contract_type",
                "contract_size",
                required=("side", "entry_price", "leverage", "available_balance"),
            ),
            "tiers": tiers_field(),
        },
        name="MaxOpenFields",
    )
):
    """A balance and the order it would open."""


class FillSchema(Base):
    price = Number(required=True)
    quantity = Number(required=True)


class AverageEntrySchema(
    Base.from_dict(
        {
            **fields_from_spec("contract_type"),
            "fills": fields.List(fields.Nested(FillSchema), required=True, validate=validate.Length(min=1, max=10_000)),
        },
        name="AverageEntryFields",
    )
):
    """The fills of one position."""


class BreakEvenSchema(
    Base.from_dict(
        fields_from_spec(
            "side",
            "entry_price",
            "open_fee_rate",
            "close_fee_rate",
            "funding_paid",
            "quantity",
            "contract_type",
            "contract_size",
            required=("side", "entry_price"),
        ),
        name="BreakEvenFields",
    )
):
    """An open position and its fees."""


class FundingSchema(
    Base.from_dict(
        {
            **fields_from_spec("side", "quantity", "contract_type", "contract_size", required=("side", "quantity")),
            "mark_prices": NumberList(required=True, max_length=MAX_SERIES),
            "funding_rates": NumberList(required=True, max_length=MAX_SERIES),
        },
        name="FundingFields",
    )
):
    """A position and the mark prices and funding rates of its funding times."""
