"""Schema of ``POST /v1/backtests``: a strategy, and a built-in dataset or uploaded columnar bars."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from .base import Base, Number, StrictBoolean, Text, exchange_field, one_of


def _num(lo: float, hi: float) -> Number:
    return Number(validate=validate.Range(min=lo, max=hi), allow_none=False)


def _bars(lo: int, hi: int) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=lo, max=hi))


class StrategySchema(Base):
    """Every field optional; defaults and meanings in :mod:`backtest.run` and :mod:`backtest.signals`."""

    side = one_of("long", "short")
    leverage = _num(1, 125)
    stop_pct = Number(validate=validate.Range(min=0, max=0.9), allow_none=True)
    take_profit_pct = Number(validate=validate.Range(min=0, max=100), allow_none=True)
    time_stop = _bars(0, 10_000_000)
    size_mode = one_of("fraction", "risk")
    size_value = Number(validate=validate.Range(min=0, max=1e6, min_inclusive=False))
    fee_rate = _num(0, 0.05)
    slippage = _num(0, 0.05)
    liquidation_fee_rate = _num(0, 0.1)
    init_cash = Number(validate=validate.Range(min=0, max=1e15, min_inclusive=False))
    exchange = exchange_field(load_default=None)
    symbol = Text()
    breakout_window = _bars(1, 100_000)
    hold_bars = _bars(1, 10_000)
    surge_mult = _num(0, 1e6)
    surge_window = _bars(1, 100_000)
    funding_threshold = Number(validate=validate.Range(min=-0.05, max=0.05), allow_none=True)
    funding_lookback = _bars(1, 100_000)
    funding_recovery = _num(0, 1)
    exit_fraction = _num(0, 1)
    peak_window = _bars(1, 100_000)
    rsi_window = _bars(2, 10_000)
    rsi_level = _num(50, 100)
    wick_ratio = _num(0, 1)
    near_pct = _num(0, 1)


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
