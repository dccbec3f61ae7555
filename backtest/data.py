"""Market data for the backtester: a folder of files (:func:`load_dataset`), one file (the loaders), or columnar
bars (:func:`frame_from_columns`), each turned into the aligned market frame.

The public face of the data modules: :mod:`backtest.loaders` (one file each, with :class:`DataReport` and
:class:`DataError`), :mod:`backtest.alignment` (:func:`market_frame`), :mod:`backtest.liquidation_proxy`,
:mod:`backtest.uploads` (:func:`frame_from_columns`) and the file names of :mod:`backtest.datasets`. Layouts and
units: ``docs/data.md``.
"""

from __future__ import annotations

import os

import pandas as pd

from .alignment import FRAME_COLUMNS, funding_columns, market_frame
from .datasets import TIMEFRAMES, find_file
from .liquidation_proxy import liquidation_proxy
from .loaders import (
    KLINE_COLUMNS,
    DataError,
    DataReport,
    Loaded,
    load_funding,
    load_klines,
    load_liquidations,
    load_ohlcv,
    load_open_interest,
    load_taker_volume,
    timeframe_seconds,
)
from .uploads import frame_from_columns

__all__ = [
    "FRAME_COLUMNS", "KLINE_COLUMNS", "TIMEFRAMES", "DataError", "DataReport", "Loaded", "frame_from_columns",
    "funding_columns", "liquidation_proxy", "load_dataset", "load_funding", "load_klines", "load_liquidations",
    "load_ohlcv", "load_open_interest", "load_taker_volume", "market_frame", "timeframe_seconds",
]  # fmt: skip


def load_dataset(folder: str, symbol: str, timeframe: str = "1h", liquidations: str | None = None):
    """Load and align what a folder holds for ``symbol`` (``SOL``, ``BTCUSDT``...) at ``timeframe``.

    Looks for the names of :data:`backtest.datasets.FILE_NAMES`: freqtrade's (``SOL_USDT_USDT-5m-futures.csv.gz``,
    ``-1h-mark``, ``-1h-funding_rate``) and Binance's (``SOLUSDT_fapi_klines_1h.csv``, ``SOLUSDT_fundingRate.csv``,
    ``_openInterestHist_1h``, ``_takerBuySellVol_1h``); ``liquidations`` is an optional path to a liquidation
    series. ``folder`` may also be one klines file. Returns (frame, reports, warnings).
    """
    timeframe_seconds(timeframe)
    if not os.path.isdir(folder):
        if os.path.isfile(folder):
            loaded = load_ohlcv(folder, timeframe)
            liq = load_liquidations(liquidations) if liquidations else None
            frame, warns = market_frame(loaded.frame, liquidations=liq.frame if liq else None, timeframe=timeframe)
            return frame, [loaded.report] + ([liq.report] if liq else []), warns
        raise ValueError(f"data: no such file or folder: {folder}")
    kl = find_file(folder, "klines", symbol, timeframe)
    if kl is None:
        raise ValueError(f"data: no {timeframe} klines for {symbol} in {folder}")
    reports = []
    main = load_klines(kl, timeframe) if "fapi_klines" in kl else load_ohlcv(kl, timeframe)
    reports.append(main.report)

    def optional(kind, loader, tf=timeframe):
        path = find_file(folder, kind, symbol, tf)
        if path is None:
            return None
        got = loader(path)
        reports.append(got.report)
        return got.frame

    mark, envelope = _mark_klines(optional, timeframe)
    fund = optional("funding", load_funding)
    oi = optional("open_interest", load_open_interest)
    taker = optional("taker_volume", load_taker_volume)
    liq = None
    if liquidations:
        got = load_liquidations(liquidations)
        reports.append(got.report)
        liq = got.frame
    frame, warns = market_frame(main.frame, mark, fund, oi, liq, taker, timeframe, mark_envelope=envelope)
    return frame, reports, warns


def _mark_klines(optional, timeframe: str) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """``(mark, envelope)``: the mark klines at ``timeframe``; else the coarsest finer ones that exist, aggregated
    to ``timeframe``; else (``mark`` None) the finest coarser ones as ``envelope``, which bounds the last price."""

    def mark_file(tf):
        return optional("mark", lambda p: load_ohlcv(p, tf), tf)

    step = timeframe_seconds(timeframe)
    mark = mark_file(timeframe)
    if mark is not None:
        return mark, None
    for tf in reversed([tf for tf, sec in TIMEFRAMES.items() if sec < step and step % sec == 0]):
        got = mark_file(tf)
        if got is not None:
            return got.resample(pd.Timedelta(seconds=step), label="left", closed="left").agg(
                {"open": "first", "high": "max", "low": "min", "close": "last"}
            ), None
    for tf in [tf for tf, sec in TIMEFRAMES.items() if sec > step and sec % step == 0]:
        envelope = mark_file(tf)
        if envelope is not None:
            envelope.attrs["timeframe"] = tf
            return None, envelope
    return None, None
