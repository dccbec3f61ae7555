"""Schemas of the calculator resources (``/v1/pnl``, ``/v1/target-price``, ``/v1/max-open``,
``/v1/average-entry``, ``/v1/break-even``, ``/v1/funding``)."""

from __future__ import annotations

from marshmallow import fields, validate

from .base import CONTRACT_TYPES, SIDE, Base, Number, Text, exchange_field, one_of, positive, tiers_field

MAX_SERIES = 100_000


class PnlSchema(Base):
    side = one_of(*SIDE, required=True)
    entry_price = Number(required=True)
    exit_price = Number(required=True)
    quantity = Number(required=True)
    leverage = Number(required=True)
    contract_type = one_of(*CONTRACT_TYPES)
    contract_size = positive()
    open_fee_rate = Number(load_default=0.0)
    close_fee_rate = Number(load_default=0.0)
    funding_paid = Number(load_default=0.0)
    exchange = exchange_field()
    symbol = Text()


class TargetPriceSchema(Base):
    side = one_of(*SIDE, required=True)
    entry_price = Number(required=True)
    leverage = Number(required=True)
    target_roe = Number(required=True)
    contract_type = one_of(*CONTRACT_TYPES)


class MaxOpenSchema(Base):
    exchange = exchange_field()
    symbol = Text()
    side = one_of(*SIDE, required=True)
    entry_price = Number(required=True)
    leverage = Number(required=True)
    available_balance = Number(required=True)
    taker_fee_rate = Number()
    mark_price = Number()
    last_price = Number()
    contract_type = one_of(*CONTRACT_TYPES)
    contract_size = positive()
    tiers = tiers_field()


class FillSchema(Base):
    price = Number(required=True)
    quantity = Number(required=True)


class AverageEntrySchema(Base):
    contract_type = one_of(*CONTRACT_TYPES)
    fills = fields.List(fields.Nested(FillSchema), required=True, validate=validate.Length(min=1, max=10_000))


class BreakEvenSchema(Base):
    side = one_of(*SIDE, required=True)
    entry_price = Number(required=True)
    open_fee_rate = Number(load_default=0.0)
    close_fee_rate = Number(load_default=0.0)
    funding_paid = Number(load_default=0.0)
    quantity = Number()
    contract_type = one_of(*CONTRACT_TYPES)
    contract_size = positive()


class FundingSchema(Base):
    side = one_of(*SIDE, required=True)
    quantity = Number(required=True)
    contract_type = one_of(*CONTRACT_TYPES)
    contract_size = positive()
    mark_prices = fields.List(Number(), required=True, validate=validate.Length(min=1, max=MAX_SERIES))
    funding_rates = fields.List(Number(), required=True, validate=validate.Length(min=1, max=MAX_SERIES))
