"""Schema of ``POST /v1/backtests``: a strategy, and a built-in dataset or uploaded columnar bars."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from backtest import params as P

from .base import Base, Number, StrictBoolean, Text, exchange_field, one_of


def _bars(lo: int, hi: int) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=lo, max=hi))


def _number(name: str, lo: float, hi: float) -> fields.Field:
    if name in P.WHOLE_BARS:
        return _bars(int(lo), int(hi))
    rng = validate.Range(min=lo, max=hi, min_inclusive=name not in P.POSITIVE)
    return Number(validate=rng, allow_none=name in P.NULLABLE)


#: every field optional (defaults from the strategy), numbers and ranges from :mod:`backtest.params`
StrategySchema = Base.from_dict(
    {
        **{name: one_of(*allowed) for name, allowed in P.CHOICES.items()},
        "entry_rule": fields.String(allow_none=True, validate=validate.Length(min=1, max=2000)),
        "exit_rule": fields.String(allow_none=True, validate=validate.Length(min=1, max=2000)),
        "entry_times": fields.List(Text(), allow_none=True, validate=validate.Length(min=1, max=100_000)),
        "exit_times": fields.List(Text(), allow_none=True, validate=validate.Length(min=1, max=100_000)),
        "exchange": exchange_field(load_default=P.DEFAULTS["exchange"]),
        "symbol": Text(),
        **{name: _number(name, lo, hi) for name, (lo, hi) in P.RANGES.items()},
    },
    name="StrategySchema",
)


class DatasetSchema(Base):
    name = one_of("synthetic", required=True)
    bars = _bars(100, 2_000_000)
    timeframe = one_of("5m", "15m", "1h", "4h", "1d")
    seed = _bars(0, 2**31 - 1)


SERIES = validate.Length(min=10)


class BarsSchema(Base):
    """Columnar bars: ``time`` in ms since the epoch (UTC, increasing), prices in quote per base unit."""

    time = fields.List(Number(), required=True, validate=SERIES)
    open = fields.List(Number(), required=True, validate=SERIES)
    high = fields.List(Number(), required=True, validate=SERIES)
    low = fields.List(Number(), required=True, validate=SERIES)
    close = fields.List(Number(), required=True, validate=SERIES)
    volume = fields.List(Number(), validate=SERIES)
    mark_open = fields.List(Number(), validate=SERIES)
    mark_high = fields.List(Number(), validate=SERIES)
    mark_low = fields.List(Number(), validate=SERIES)
    mark_close = fields.List(Number(), validate=SERIES)
    funding_rate = fields.List(Number(allow_none=True), validate=SERIES)
    open_interest = fields.List(Number(allow_none=True), validate=SERIES)
    long_liq = fields.List(Number(), validate=SERIES)
    short_liq = fields.List(Number(), validate=SERIES)
    taker_buy = fields.List(Number(), validate=SERIES)
    taker_sell = fields.List(Number(), validate=SERIES)


class BacktestSchema(Base):
    strategy = fields.Nested(StrategySchema, load_default=dict)
    dataset = fields.Nested(DatasetSchema)
    bars = fields.Nested(BarsSchema)
    equity_points = _bars(2, 10_000)
    include_trades = StrictBoolean()

    @validates_schema
    def _one_source(self, data, **kwargs):
        if ("dataset" in data) == ("bars" in data):
            raise ValidationError("give either dataset (a built-in dataset) or bars (your own)", "dataset")
