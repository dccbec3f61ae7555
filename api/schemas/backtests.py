"""Schemas of ``POST /v1/backtests`` and ``POST /v1/sweeps``: a strategy (or a grid of them), and a dataset
(the synthetic generator or one found under ``LIQRISK_DATA_DIR``) or uploaded columnar bars.

Light: only :mod:`backtest.params` and :mod:`backtest.datasets` (standard library) are imported, so the API
never loads the backtester. The worker checks everything again with :func:`backtest.run.strategy` and the
loaders before running."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from flask import current_app, has_app_context
from marshmallow import ValidationError, fields, validate, validates_schema

from backtest import datasets, params

from .base import Base, Number, NumberList, StrictBoolean, Text, exchange_field, one_of


def _bars(lo: int, hi: int) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=lo, max=hi))


def _number(name: str, lo: float, hi: float) -> fields.Field:
    if name in params.WHOLE_BARS:
        return _bars(int(lo), int(hi))
    rng = validate.Range(min=lo, max=hi, min_inclusive=name not in params.POSITIVE)
    return Number(validate=rng, allow_none=name in params.NULLABLE)


#: every field optional (defaults from the strategy), numbers and ranges from :mod:`backtest.params`
StrategySchema = Base.from_dict(
    {
        **{name: one_of(*allowed) for name, allowed in params.CHOICES.items()},
        "entry_rule": fields.String(allow_none=True, validate=validate.Length(min=1, max=2000)),
        "exit_rule": fields.String(allow_none=True, validate=validate.Length(min=1, max=2000)),
        "entry_times": fields.List(Text(), allow_none=True, validate=validate.Length(min=1, max=100_000)),
        "exit_times": fields.List(Text(), allow_none=True, validate=validate.Length(min=1, max=100_000)),
        "exchange": exchange_field(load_default=params.DEFAULTS["exchange"]),
        "symbol": Text(),
        **{name: _number(name, lo, hi) for name, (lo, hi) in params.RANGES.items()},
    },
    name="StrategySchema",
)


SYNTHETIC_TIMEFRAMES = ("5m", "15m", "1h", "4h", "1d")


class IsoTime(fields.String):
    """An ISO-8601 date or date-time (UTC when no offset is given); kept as text."""

    default_error_messages = {"time": "an ISO-8601 date or date-time such as 2025-01-01 or 2025-01-01T00:00:00Z"}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise self.make_error("time") from None
        return text


class DatasetSchema(Base):
    """``synthetic`` (``bars``, ``timeframe``, ``seed``) or a dataset ``GET /v1/datasets`` lists (``symbol``,
    ``timeframe``, optional ``start``/``end``)."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    bars = _bars(100, 2_000_000)
    timeframe = one_of(*datasets.TIMEFRAMES)
    seed = _bars(0, 2**31 - 1)
    symbol = Text()
    start = IsoTime(validate=validate.Length(max=40))
    end = IsoTime(validate=validate.Length(max=40))

    @validates_schema
    def _known(self, data, **kwargs):
        if data["name"] == "synthetic":
            extra = [k for k in ("symbol", "start", "end") if k in data]
            if extra:
                raise ValidationError("not for the synthetic dataset (it takes bars, timeframe and seed)", extra[0])
            if data.get("timeframe", "1h") not in SYNTHETIC_TIMEFRAMES:
                raise ValidationError(f"synthetic: one of {', '.join(SYNTHETIC_TIMEFRAMES)}", "timeframe")
            return
        root = current_app.config.get("DATA_DIR", "") if has_app_context() else ""
        listed = datasets.discover(root)
        if data["name"] not in {d["name"] for d in listed}:
            names = ", ".join(sorted({"synthetic"} | {d["name"] for d in listed}))
            raise ValidationError(f"unknown dataset; GET /v1/datasets lists them ({names})", "name")
        extra = [k for k in ("bars", "seed") if k in data]
        if extra:
            raise ValidationError("only for the synthetic dataset", extra[0])
        for k in ("symbol", "timeframe"):
            if k not in data:
                raise ValidationError("required for a named dataset", k)
        if datasets.find(root, data["name"], data["symbol"], data["timeframe"]) is None:
            have = ", ".join(f"{d['symbol']} {d['timeframe']}" for d in listed if d["name"] == data["name"])
            raise ValidationError(f"not in {data['name']} (it has {have})", "symbol")


def _series(allow_none_items: bool = False, **kwargs: Any) -> NumberList:
    """A bar column: 10 or more numbers, checked in bulk (:class:`~.base.NumberList`); the most bars is the
    route's ``LIQRISK_BACKTEST_MAX_BARS`` (413 beyond, checked before this: :mod:`api.routes.backtests`)."""
    return NumberList(min_length=10, max_length=None, allow_none_items=allow_none_items, **kwargs)


#: the bar columns in order: (name, required, nulls allowed)
BAR_COLUMNS = (
    *((name, True, False) for name in ("time", "open", "high", "low", "close")),
    *((name, False, False) for name in ("volume", "mark_open", "mark_high", "mark_low", "mark_close")),
    *((name, False, True) for name in ("funding_rate", "open_interest")),
    *((name, False, False) for name in ("long_liq", "short_liq", "taker_buy", "taker_sell")),
)


class BarsSchema(Base.from_dict({name: _series(nulls, required=req) for name, req, nulls in BAR_COLUMNS},
                                name="BarsFields")):  # fmt: skip
    """Columnar bars: ``time`` in ms since the epoch (UTC, increasing), prices in quote per base unit. Each
    column loads as a float64 array (``null`` in ``funding_rate`` and ``open_interest``: NaN)."""

    @validates_schema
    def _consistent(self, data, **kwargs):
        """The checks :func:`backtest.data.frame_from_columns` makes, here so a bad upload is a 422 at once."""
        n = len(data["time"])
        for k, v in data.items():
            if len(v) != n:
                raise ValidationError(f"{len(v)} values; time has {n}", k)
        t = data["time"]
        if not (np.all(t >= 0) and np.all(t <= 4102444800000)):
            raise ValidationError("ms since 1970-01-01 up to 2100", "time")
        bad = np.flatnonzero(np.diff(t) <= 0)
        if bad.size:
            raise ValidationError(f"must increase strictly (index {int(bad[0]) + 1})", "time")
        for k in ("open", "high", "low", "close", "mark_open", "mark_high", "mark_low", "mark_close"):
            if k in data and not np.all(data[k] > 0):
                raise ValidationError(f"prices must be > 0 (index {int(np.flatnonzero(~(data[k] > 0))[0])})", k)
        for k in ("volume", "long_liq", "short_liq", "taker_buy", "taker_sell", "open_interest"):
            if k in data and np.any(data[k] < 0):
                raise ValidationError(f"must be >= 0 (index {int(np.flatnonzero(data[k] < 0)[0])})", k)
        if "funding_rate" in data and np.any(np.abs(data["funding_rate"]) > 0.05):
            raise ValidationError("decimal per interval, at most 0.05 in size (0.0001 = 0.01 %)", "funding_rate")
        hi, lo, o, c = data["high"], data["low"], data["open"], data["close"]
        bad = np.flatnonzero((hi < np.maximum(o, c)) | (lo > np.minimum(o, c)))
        if bad.size:
            raise ValidationError(f"high and low must bracket open and close (index {int(bad[0])})", "high")


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


def check_strategy(cfg: dict) -> None:
    """The cross-field rules of :func:`backtest.run.strategy` (raised as ValidationError naming the field)."""
    mode = cfg.get("size_mode", params.DEFAULTS["size_mode"])
    if mode == "fraction" and cfg.get("size_value", params.DEFAULTS["size_value"]) > 1:
        raise ValidationError("at most 1 (fraction of equity posted as margin)", "size_value")
    if mode == "risk":
        stop = cfg["stop_pct"] if "stop_pct" in cfg else params.DEFAULTS["stop_pct"]
        if not (stop or 0) > 0:
            raise ValidationError("required with size_mode=risk", "stop_pct")
    model = cfg.get("slippage_model", params.DEFAULTS["slippage_model"])
    if model == "fixed" and cfg.get("slippage", params.DEFAULTS["slippage"]) > params.MAX_FIXED_SLIPPAGE:
        most = params.MAX_FIXED_SLIPPAGE
        raise ValidationError(f"at most {most} (decimal of price) with slippage_model=fixed", "slippage")


#: the strategy fields a sweep grid may vary
GRID_FIELDS = tuple(params.RANGES)


class SweepSchema(Base):
    """A grid (strategy field → values; rows are their product, the first field varying slowest) over a base
    strategy on one dataset or uploaded bars."""

    strategy = fields.Nested(StrategySchema, load_default=dict)
    grid = fields.Dict(
        keys=fields.String(validate=validate.OneOf(GRID_FIELDS)),
        values=fields.List(fields.Raw(allow_none=True), validate=validate.Length(min=1, max=100_000)),
        required=True,
        validate=validate.Length(min=1, max=len(GRID_FIELDS)),
    )
    dataset = fields.Nested(DatasetSchema)
    bars = fields.Nested(BarsSchema)
    split = Number(allow_none=True, validate=validate.Range(min=0.1, max=0.9), load_default=0.7)
    sort = fields.String(validate=validate.Length(min=1, max=32), load_default="sharpe")
    top = _bars(1, 1_000_000)

    @validates_schema
    def _one_source(self, data, **kwargs):
        if ("dataset" in data) == ("bars" in data):
            raise ValidationError("give either dataset (a named dataset) or bars (your own)", "dataset")

    @validates_schema
    def _grid_values(self, data, **kwargs):
        errors: dict = {}
        strategy = StrategySchema()
        for k, values in (data.get("grid") or {}).items():
            for i, v in enumerate(values):
                try:
                    strategy.load({k: v})
                except ValidationError as exc:
                    errors[f"{k}[{i}]"] = exc.messages.get(k, exc.messages)
        if errors:
            raise ValidationError(errors, "grid")
