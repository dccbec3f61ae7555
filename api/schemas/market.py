"""Schemas of the market resources (``/v1/market/squeeze-score``, ``/v1/market/liquidation-summary``)."""

from __future__ import annotations

from marshmallow import fields, validate

from core.fields import SIDES

from .base import Base, Number, NumberList, TextList
from .from_spec import fields_from_spec

MAX_SERIES = 100_000


class SqueezeSeriesSchema(Base):
    close = NumberList(required=True, max_length=MAX_SERIES)
    funding_rate = NumberList(required=True, max_length=MAX_SERIES)
    open_interest = NumberList(required=True, max_length=MAX_SERIES)
    long_short_ratio = NumberList(required=True, max_length=MAX_SERIES)
    long_liquidations = NumberList(max_length=MAX_SERIES)
    short_liquidations = NumberList(max_length=MAX_SERIES)


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
    time_ms = NumberList(required=True, max_length=MAX_SERIES)
    side = TextList(choices=SIDES, required=True, max_length=MAX_SERIES)
    notional = NumberList(required=True, max_length=MAX_SERIES)
    asset = TextList(max_length=MAX_SERIES)


class LiquidationSummarySchema(Base):
    long_liquidations = NumberList(min_length=1, max_length=10_000)
    short_liquidations = NumberList(min_length=1, max_length=10_000)
    assets = TextList(max_length=10_000)
    events = fields.Nested(EventsSchema)
    window = fields.String(validate=validate.OneOf(("rolling_24h", "calendar_day")))
    end_time_ms = Number()
    dominance_threshold = Number()


class LiquidationMapSchema(
    Base.from_dict(
        {
            "close": NumberList(required=True, min_length=2, max_length=100_000),
            "open_interest": NumberList(required=True, min_length=2, max_length=100_000),
            "high": NumberList(min_length=2, max_length=100_000),
            "low": NumberList(min_length=2, max_length=100_000),
            "long_share": Number(),
            "taker_buy_volume": NumberList(min_length=2, max_length=100_000),
            "taker_sell_volume": NumberList(min_length=2, max_length=100_000),
            "leverage": NumberList(min_length=1, max_length=20),
            "leverage_weights": NumberList(min_length=1, max_length=20),
            # the exchange's rules and tier at position_notional; not given: the engine's own default
            **fields_from_spec("exchange", "symbol", "maintenance_margin_rate", load_defaults=False),
            "position_notional": Number(),
            "bucket_size": Number(),
            "current_price": Number(),
        },
        name="LiquidationMapFields",
    )
):
    """Price and open-interest series and the leverage mix whose liquidation levels are mapped."""


class CascadeSchema(Base):
    start_price = Number(required=True)
    shock_pct = Number(required=True)
    cluster_price = NumberList(required=True, min_length=1, max_length=100_000)
    cluster_notional = NumberList(required=True, min_length=1, max_length=100_000)
    cluster_side = TextList(choices=SIDES, required=True, max_length=100_000)
    depth_per_pct = Number()
    impact_model = fields.String(validate=validate.OneOf(("linear", "sqrt")))
    sqrt_coefficient = Number()
    daily_volatility = Number()
    daily_volume = Number()
    resilience = Number()
    absorbed_share = Number()
    max_steps = fields.Integer(strict=True, validate=validate.Range(min=1, max=100_000))
