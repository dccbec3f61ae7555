"""Schemas of the position resources: ``/v1/liquidation-price`` and ``/v1/portfolio/liquidation``."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from .base import (
    CONTRACT_TYPES,
    MARGIN_MODES,
    POSITION_MODES,
    SIDE,
    Base,
    Number,
    Text,
    exchange_field,
    one_of,
    positive,
    tiers_field,
)

SUMMARY = ("maintenance_margin", "unrealized_pnl")
FULL = (
    "symbol",
    "side",
    "entry_price",
    "quantity",
    "mark_price",
    "maintenance_margin_rate",
    "maintenance_amount",
    "contract_type",
    "contract_size",
)


class OtherPositionSchema(Base):
    """Another position in the cross wallet: a summary ``{maintenance_margin, unrealized_pnl}`` or a full
    position (its MM and PnL are computed with the request's exchange rules)."""

    maintenance_margin = Number()
    unrealized_pnl = Number()
    symbol = Text()
    side = one_of(*SIDE)
    entry_price = Number()
    quantity = Number()
    mark_price = Number()
    maintenance_margin_rate = Number()
    maintenance_amount = Number()
    contract_type = one_of(*CONTRACT_TYPES)
    contract_size = positive()

    @validates_schema
    def _summary_or_full(self, data, **kwargs):
        summary = any(k in data for k in SUMMARY)
        full = any(k in data for k in FULL)
        if summary and full:
            raise ValidationError("give either maintenance_margin/unrealized_pnl or a full position, not both")
        if not summary and not full:
            raise ValidationError("give maintenance_margin and unrealized_pnl, or symbol, side, entry_price, quantity")
        if full:
            missing = [k for k in ("symbol", "side", "entry_price", "quantity") if k not in data]
            for k in missing:
                raise ValidationError("required for a full position", k)


class PositionSchema(Base):
    """One position (the fields shared by the position endpoints; ``Position`` in ``openapi.yaml``)."""

    exchange = exchange_field()
    symbol = Text()
    contract_type = one_of(*CONTRACT_TYPES)
    contract_size = positive()
    margin_mode = one_of(*MARGIN_MODES, load_default="isolated")
    position_mode = one_of(*POSITION_MODES, load_default="one_way")
    side = one_of(*SIDE, required=True)
    entry_price = Number(required=True)
    quantity = Number(required=True)
    leverage = Number()
    margin = Number()
    wallet_balance = Number()
    mark_price = Number()
    maintenance_margin_rate = Number()
    maintenance_amount = Number()
    tiers = tiers_field()
    taker_fee_rate = Number()
    other_positions = fields.List(fields.Nested(OtherPositionSchema), validate=validate.Length(max=1000))


class PortfolioPositionSchema(Base):
    symbol = Text(required=True)
    side = one_of(*SIDE, required=True)
    entry_price = Number(required=True)
    quantity = Number(required=True)
    mark_price = Number()
    maintenance_margin_rate = Number()
    maintenance_amount = Number()


class SummarySchema(Base):
    maintenance_margin = Number(required=True)
    unrealized_pnl = Number(required=True)


class PortfolioSchema(Base):
    """A cross-margin account: wallet balance and its positions (linear contracts)."""

    exchange = exchange_field()
    position_mode = one_of(*POSITION_MODES, load_default="one_way")
    wallet_balance = Number(required=True)
    positions = fields.List(
        fields.Nested(PortfolioPositionSchema), required=True, validate=validate.Length(min=1, max=1000)
    )
    other_positions = fields.List(fields.Nested(SummarySchema), validate=validate.Length(max=1000))
