"""Bars uploaded as columns (the ``bars`` of ``POST /v1/backtests``) checked and turned into a market frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .alignment import market_frame


def frame_from_columns(columns: dict[str, Any], timeframe: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """A market frame from columnar bars (``time`` in ms since the epoch, UTC; ``open``, ``high``, ``low``,
    ``close`` required; the other :data:`backtest.alignment.FRAME_COLUMNS` optional, ``funding_rate`` and
    ``open_interest`` may hold None where there is no value). Raises ValueError naming ``bars.<field>`` and the
    first bad index."""
    n = len(columns["time"])
    for k, v in columns.items():
        if len(v) != n:
            raise ValueError(f"bars.{k}: {len(v)} values; time has {n}")

    def arr(k: str) -> np.ndarray:
        return np.array([np.nan if x is None else x for x in columns[k]], dtype=float)

    t = arr("time")
    if not (np.all(np.isfinite(t)) and np.all(t >= 0) and np.all(t <= 4102444800000)):
        raise ValueError("bars.time: ms since 1970-01-01 up to 2100")
    bad = np.flatnonzero(np.diff(t) <= 0)
    if bad.size:
        raise ValueError(f"bars.time: must increase strictly (index {int(bad[0]) + 1})")
    got = {k: arr(k) for k in columns if k != "time"}
    for k in ("open", "high", "low", "close", "mark_open", "mark_high", "mark_low", "mark_close"):
        if k in got and not np.all(got[k] > 0):
            raise ValueError(f"bars.{k}: prices must be > 0 (index {int(np.flatnonzero(~(got[k] > 0))[0])})")
    for k in ("volume", "long_liq", "short_liq", "taker_buy", "taker_sell", "open_interest"):
        if k in got and np.any(got[k] < 0):
            raise ValueError(f"bars.{k}: must be >= 0 (index {int(np.flatnonzero(got[k] < 0)[0])})")
    if "funding_rate" in got and np.any(np.abs(got["funding_rate"]) > 0.05):
        raise ValueError("bars.funding_rate: decimal per interval, at most 0.05 in size (0.0001 = 0.01 %)")
    hi, lo = got["high"], got["low"]
    bad = np.flatnonzero((hi < np.maximum(got["open"], got["close"])) | (lo > np.minimum(got["open"], got["close"])))
    if bad.size:
        raise ValueError(f"bars.high: high and low must bracket open and close (index {int(bad[0])})")
    idx = pd.DatetimeIndex(pd.to_datetime(t.astype(np.int64), unit="ms", utc=True), name="time")
    ohlcv = pd.DataFrame({k: got[k] for k in ("open", "high", "low", "close")}, index=idx)
    ohlcv["volume"] = got.get("volume", np.zeros(n))
    mark = None
    if all(k in got for k in ("mark_open", "mark_high", "mark_low", "mark_close")):
        mark = pd.DataFrame({k: got["mark_" + k] for k in ("open", "high", "low", "close")}, index=idx)
    funding = None
    if "funding_rate" in got:
        f = got["funding_rate"]
        funding = pd.DataFrame({"funding_rate": f[~np.isnan(f)]}, index=idx[~np.isnan(f)])
    oi = pd.DataFrame({"open_interest": got["open_interest"]}, index=idx) if "open_interest" in got else None
    liq = None
    if "long_liq" in got and "short_liq" in got:
        liq = pd.DataFrame({"long_liq": got["long_liq"], "short_liq": got["short_liq"]}, index=idx)
    taker = None
    if "taker_buy" in got and "taker_sell" in got:
        taker = pd.DataFrame({"taker_buy_base": got["taker_buy"], "taker_sell_base": got["taker_sell"]}, index=idx)
    return market_frame(ohlcv, mark, funding, oi, liq, taker, timeframe)
