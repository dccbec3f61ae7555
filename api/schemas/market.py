"""Schemas of the market resources (``/v1/market/squeeze-score``, ``/v1/market/liquidation-summary``)."""

from __future__ import annotations

from marshmallow import fields, validate

from .base import Base, Number, Text

SERIES = validate.Length(min=1, max=100_000)


class SqueezeSeriesSchema(Base):
    close = fields.List(Number(), required=True, validate=SERIES)
    funding_rate = fields.List(Number(), required=True, validate=SERIES)
    open_interest = fields.List(Number(), required=True, validate=SERIES)
    long_short_ratio = fields.List(Number(), required=True, validate=SERIES)
    long_liquidations = fields.List(Number(), validate=SERIES)
    short_liquidations = fields.List(Number(), validate=SERIES)


class WeightsSchema(Base):
    funding = Number()
    open_interest = Number()
    long_short_ratio = Number()
    rsi = Number()
    liquidations = Number()


class SqueezeScoreSchema(Base):
    series = fields.Nested(SqueezeSeriesSchema, required=True)
    funding_interval_hours = Number()
    lookback = fields.Integer(strict=True, validate=validate.Range(min=5, max=10_000))
    rsi_period = fields.Integer(strict=True, validate=validate.Range(min=2, max=1_000))
    weights = fields.Nested(WeightsSchema)


class EventsSchema(Base):
    time_ms = fields.List(Number(), required=True, validate=SERIES)
    side = fields.List(fields.String(validate=validate.OneOf(("long", "short"))), required=True, validate=SERIES)
    notional = fields.List(Number(), required=True, validate=SERIES)
    asset = fields.List(Text(), validate=SERIES)


class LiquidationSummarySchema(Base):
    long_liquidations = fields.List(Number(), validate=validate.Length(min=1, max=10_000))
    short_liquidations = fields.List(Number(), validate=validate.Length(min=1, max=10_000))
    assets = fields.List(Text(), validate=validate.Length(min=1, max=10_000))
    events = fields.Nested(EventsSchema)
    window = fields.String(validate=validate.OneOf(("rolling_24h", "calendar_day")))
    end_time_ms = Number()
    dominance_threshold = Number()


class LiquidationMapSchema(Base):
    close = fields.List(Number(), required=True, validate=validate.Length(min=2, max=100_000))
    open_interest = fields.List(Number(), required=True, validate=validate.Length(min=2, max=100_000))
    high = fields.List(Number(), validate=validate.Length(min=2, max=100_000))
    low = fields.List(Number(), validate=validate.Length(min=2, max=100_000))
    long_share = Number()
    taker_buy_volume = fields.List(Number(), validate=validate.Length(min=2, max=100_000))
    taker_sell_volume = fields.List(Number(), validate=validate.Length(min=2, max=100_000))
    leverage = fields.List(Number(), validate=validate.Length(min=1, max=20))
    leverage_weights = fields.List(Number(), validate=validate.Length(min=1, max=20))
    exchange = fields.String(validate=validate.OneOf(("binance", "bybit", "okx", "gate", "hyperliquid", "generic")))
    symbol = Text()
    maintenance_margin_rate = Number()
    position_notional = Number()
    bucket_size = Number()
    current_price = Number()


class CascadeSchema(Base):
    start_price = Number(required=True)
    shock_pct = Number(required=True)
    cluster_price = fields.List(Number(), required=True, validate=validate.Length(min=1, max=100_000))
    cluster_notional = fields.List(Number(), required=True, validate=validate.Length(min=1, max=100_000))
    cluster_side = fields.List(
        fields.String(validate=validate.OneOf(("long", "short"))),
        required=True,
        validate=validate.Length(min=1, max=100_000),
    )
    depth_per_pct = Number()
    impact_model = fields.String(validate=validate.OneOf(("linear", "sqrt")))
    sqrt_coefficient = Number()
    daily_volatility = Number()
    daily_volume = Number()
    resilience = Number()
    absorbed_share = Number()
    max_steps = fields.Integer(strict=True, validate=validate.Range(min=1, max=100_000))
