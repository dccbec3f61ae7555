"""Schemas of the risk resources (``/v1/risk/liquidation-probability``, ``/v1/risk/position-size``)."""

from __future__ import annotations

from marshmallow import fields, validate

from .base import (
    CONTRACT_TYPES,
    MARGIN_MODES,
    SIDE,
    Base,
    Number,
    NumberList,
    Text,
    exchange_field,
    one_of,
    positive,
)


class LiquidationProbabilitySchema(Base):
    side = one_of(*SIDE, required=True)
    mark_price = Number(required=True)
    liquidation_price = Number()
    volatility = Number()
    closes = NumberList(min_length=3, max_length=100_000)
    periods_per_year = Number()
    volatility_method = one_of("ewma", "realized")
    horizon_hours = Number(load_default=24.0, validate=validate.Range(min=0, max=8760, min_inclusive=False))
    drift = Number()
    model = one_of("gbm", "student_t")
    monitoring_minutes = Number(validate=validate.Range(min=0.01, max=10080))
    degrees_of_freedom = Number()
    paths = fields.Integer(strict=True, validate=validate.Range(min=100, max=200_000))
    seed = fields.Integer(strict=True, validate=validate.Range(min=0, max=2**32 - 1))
    # or the position whose liquidation price is wanted
    exchange = exchange_field(load_default=None)
    symbol = Text()
    contract_type = one_of(*CONTRACT_TYPES)
    contract_size = positive()
    margin_mode = one_of(*MARGIN_MODES)
    entry_price = Number()
    quantity = Number()
    leverage = Number()
    margin = Number()
    wallet_balance = Number()
    maintenance_margin_rate = Number()
    maintenance_amount = Number()
    taker_fee_rate = Number()


class PositionSizeSchema(Base):
    equity = Number(required=True)
    risk_fraction = Number(required=True)
    side = one_of(*SIDE, required=True)
    entry_price = Number(required=True)
    stop_price = Number(required=True)
    exchange = exchange_field()
    symbol = Text()
    leverage = Number()
    open_fee_rate = Number()
    close_fee_rate = Number()
    liquidation_buffer = Number()
    maintenance_margin_rate = Number()
    maintenance_amount = Number()
