"""Schemas of the position resources: ``/v1/liquidation-price`` and ``/v1/portfolio/liquidation``.

The position fields come from the field spec (:mod:`core.fields`) through :func:`.from_spec.fields_from_spec`.
"""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from core.fields import (
    OTHER_POSITION_FIELDS,
    PORTFOLIO_POSITION_FIELDS,
    PORTFOLIO_POSITION_REQUIRED,
    POSITION_FIELDS,
    SUMMARY_FIELDS,
)

from .base import Base, tiers_field
from .from_spec import fields_from_spec


class OtherPositionSchema(
    Base.from_dict(fields_from_spec(*SUMMARY_FIELDS, *OTHER_POSITION_FIELDS, required=()), name="OtherPositionFields")
):
    """Another position in the cross wallet: a summary ``{maintenance_margin, unrealized_pnl}`` or a full
    position (its MM and PnL are computed with the request's exchange rules)."""

    @validates_schema
    def _summary_or_full(self, data, **kwargs):
        summary = any(k in data for k in SUMMARY_FIELDS)
        full = any(k in data for k in OTHER_POSITION_FIELDS)
        if summary and full:
            raise ValidationError("give either maintenance_margin/unrealized_pnl or a full position, not both")
        if not summary and not full:
            raise ValidationError("give maintenance_margin and unrealized_pnl, or symbol, side, entry_price, quantity")
        if full:
            missing = [k for k in PORTFOLIO_POSITION_REQUIRED if k not in data]
            for k in missing:
                raise ValidationError("required for a full position", k)


class PositionSchema(
    Base.from_dict(
        {
            **fields_from_spec(*POSITION_FIELDS),
            "tiers": tiers_field(),
            "other_positions": fields.List(fields.Nested(OtherPositionSchema), validate=validate.Length(max=1000)),
        },
        name="PositionFields",
    )
):
    """One position (the fields shared by the position endpoints; ``Position`` in ``openapi.yaml``)."""


class PortfolioPositionSchema(
    Base.from_dict(
        fields_from_spec(*PORTFOLIO_POSITION_FIELDS, required=PORTFOLIO_POSITION_REQUIRED),
        name="PortfolioPositionFields",
    )
):
    """One position of a cross account (linear contracts)."""


class SummarySchema(Base.from_dict(fields_from_spec(*SUMMARY_FIELDS, required=SUMMARY_FIELDS), name="SummaryFields")):
    """Another position of the account given by its maintenance margin and unrealised PnL."""


class PortfolioSchema(
    Base.from_dict(
        {
            **fields_from_spec("exchange", "position_mode", "wallet_balance", required=("wallet_balance",)),
            "positions": fields.List(
                fields.Nested(PortfolioPositionSchema), required=True, validate=validate.Length(min=1, max=1000)
            ),
            "other_positions": fields.List(fields.Nested(SummarySchema), validate=validate.Length(max=1000)),
        },
        name="PortfolioFields",
    )
):
    """A cross-margin account: wallet balance and its positions (linear contracts)."""
