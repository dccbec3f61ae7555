"""Loaders for Binance's own file layouts, freqtrade files and liquidation series (one file each).

Every loader returns a :class:`Loaded` (a UTC-indexed ``pandas.DataFrame`` plus a :class:`DataReport` of what was
found: duplicate timestamps dropped, missing bars, a partial last bar dropped, units) and raises
:class:`DataError` naming the file, the row (1-based, as a text editor counts lines, header included) and the
column of the first bad value.

Layouts (units):

* Binance futures klines ``/fapi/v1/klines`` and the public data dumps (``open_time, open, high, low, close,
  volume, close_time, quote_volume, count, taker_buy_base, taker_buy_quote, ignore``), with or without a header,
  times as ms epoch or ISO-8601; prices in quote per base, volumes in base units. The same layout carries
  ``markPriceKlines`` and ``premiumIndexKlines`` (OHLC = premium, a decimal).
  https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Kline-Candlestick-Data
* Binance ``fundingRate`` (``symbol, fundingTime, fundingRate, markPrice``): decimal per funding interval
  (0.0001 = 0.01 %), positive = longs pay shorts. ``fundingTime`` carries milliseconds of settlement lag
  (``08:00:00.008``); it is floored to the bar that opens at or before it.
  https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Get-Funding-Rate-History
* Binance ``openInterestHist`` (``sumOpenInterest`` in base, ``sumOpenInterestValue`` in quote, ``timestamp``)
  and ``takerBuySellVol`` (``buyVol``, ``sellVol`` in base, ``buySellRatio``).
* freqtrade ``download-data`` CSV (``date, open, high, low, close, volume``; ``date, funding_rate``; mark files
  with the OHLCV layout), gzip or not.
* Coinalyze-style daily liquidations (``timestamp, long_liq, short_liq[, long_ratio, short_ratio]``) and a user's
  own series (``timestamp, long_liq, short_liq``): volumes in base units unless the caller says otherwise.
"""

from __future__ import annotations

import gzip
import io
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .datasets import TIMEFRAMES

KLINE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "num_trades",
    "taker_buy_base",
    "taker_buy_quote",
    "ignore",
)


class DataError(ValueError):
    """A file that cannot be used: the message names the file, the 1-based line and the column."""

    def __init__(self, path: str, message: str, row: int | None = None, column: str | None = None):
        where = os.path.basename(str(path))
        if row is not None:
            where += f", line {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")
        self.path, self.row, self.column = str(path), row, column


@dataclass
class DataReport:
    """What a loader found. ``missing_bars`` counts gaps on the bar grid (0 for event series such as funding)."""

    path: str
    rows: int = 0
    duplicates: int = 0
    missing_bars: int = 0
    first_gap: str | None = None
    partial_last_dropped: bool = False
    units: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Loaded:
    frame: pd.DataFrame
    report: DataReport


def timeframe_seconds(timeframe: str) -> int:
    """Seconds per bar for a Binance interval name (``5m``, ``1h``, ``1d``...)."""
    try:
        return TIMEFRAMES[timeframe]
    except KeyError:
        raise ValueError(f"timeframe: one of {', '.join(TIMEFRAMES)}") from None


def _read_csv(path: str, header: Any = "infer", names: Any = None) -> pd.DataFrame:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(path, f"broken gzip: {exc}") from None
    if not raw.strip():
        raise DataError(path, "empty file")
    try:
        return pd.read_csv(io.BytesIO(raw), header=header, names=names, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not a CSV file: {exc}") from None


def _times(path: str, df: pd.DataFrame, column: str, offset: int) -> pd.DatetimeIndex:
    """Parse a time column given as ms epoch (or s epoch) or ISO-8601 text, mixed formats allowed; UTC."""
    text = df[column].str.strip()
    numeric = pd.to_numeric(text, errors="coerce")
    is_num = numeric.notna().to_numpy()
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    if is_num.any():
        unit = "ms" if numeric[is_num].abs().max() > 1e11 else "s"
        out[is_num] = pd.to_datetime(numeric[is_num].astype("int64"), unit=unit, utc=True)
    if not is_num.all():
        out[~is_num] = pd.to_datetime(text[~is_num], utc=True, errors="coerce", format="mixed")
    bad = np.flatnonzero(out.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise DataError(path, f"not a time: {df[column].iloc[i]!r}", row=i + offset, column=column)
    return pd.DatetimeIndex(out).as_unit("ns")


def _numbers(path: str, df: pd.DataFrame, columns: tuple[str, ...], offset: int, allow_empty=()) -> pd.DataFrame:
    out = {}
    for col in columns:
        if col not in df.columns:
            raise DataError(path, f"missing column (has {', '.join(map(str, df.columns))})", column=col)
        text = df[col].str.strip()
        vals = pd.to_numeric(text, errors="coerce")
        bad = vals.isna() & ~((text == "") & (col in allow_empty))
        bad |= ~np.isfinite(vals.fillna(0.0))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(path, f"not a finite number: {df[col].iloc[i]!r}", row=i + offset, column=col)
        out[col] = vals.astype(float).to_numpy()
    return pd.DataFrame(out)


def _finish(path: str, frame: pd.DataFrame, report: DataReport, step: int | None) -> Loaded:
    """Sort by time, drop duplicate timestamps (keep the last), count gaps on the bar grid."""
    if not frame.index.is_monotonic_increasing:
        report.warnings.append("rows were not in time order; sorted")
        frame = frame.sort_index(kind="stable")
    dup = frame.index.duplicated(keep="last")
    if dup.any():
        report.duplicates = int(dup.sum())
        report.warnings.append(f"{report.duplicates} duplicate timestamps; kept the last of each")
        frame = frame[~dup]
    if step and len(frame) > 1:
        gaps = np.diff(frame.index.as_unit("ns").asi8) // 1_000_000_000
        missing = np.maximum(gaps // step - 1, 0)
        report.missing_bars = int(missing.sum())
        if report.missing_bars:
            first = int(np.flatnonzero(missing)[0])
            report.first_gap = frame.index[first].isoformat()
            report.warnings.append(f"{report.missing_bars} missing bars, first after {report.first_gap}")
    report.rows = len(frame)
    frame.index.name = "time"
    return Loaded(frame, report)


def _has_header(path: str) -> bool:
    df = _read_csv(path, header=None)
    first = str(df.iloc[0, 0]).strip()
    return not re.fullmatch(r"[0-9]+(\.[0-9]+)?", first) and not re.match(r"\d{4}-\d{2}-\d{2}", first)


def load_klines(
    path: str, timeframe: str | None = None, now: pd.Timestamp | None = None, drop_incomplete: bool = True
) -> Loaded:
    """Binance futures klines (also mark-price and premium-index klines), header optional, ms epoch or ISO times.

    Binance returns the bar still in progress with its scheduled ``close_time``, so a dump's last kline cannot be
    told complete from the file alone: like freqtrade (``drop_incomplete=True`` in ``ohlcv_to_dataframe``) the
    last bar is dropped, unless ``now`` (UTC) is given and the bar closed before it. Returns columns open,
    high, low, close, volume (base), quote_volume, taker_buy_base, taker_sell_base (= volume − taker buy).
    """
    header = "infer" if _has_header(path) else None
    df = _read_csv(path, header=0 if header == "infer" else None, names=None if header == "infer" else KLINE_COLUMNS)
    offset = 2 if header == "infer" else 1
    if "open_time" not in df.columns and "date" in df.columns:
        return load_ohlcv(path, timeframe)
    for col in ("open_time", "open", "high", "low", "close"):
        if col not in df.columns:
            raise DataError(path, "missing column; expected Binance kline layout", column=col)
    idx = _times(path, df, "open_time", offset)
    cols = tuple(c for c in ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_base")
                 if c in df.columns)  # fmt: skip
    frame = _numbers(path, df, cols, offset)
    frame.index = idx
    report = DataReport(path, units={"price": "quote per base", "volume": "base units"})
    step = timeframe_seconds(timeframe) if timeframe else infer_step(idx)
    if "close_time" in df.columns and len(df) > 1 and drop_incomplete:
        close_t = _times(path, df, "close_time", offset)
        if now is None or close_t[-1] > now:
            frame = frame.iloc[:-1]
            report.partial_last_dropped = True
            report.warnings.append("last bar presumed partial (a dump's last kline is still open); dropped")
    _check_ohlc(path, frame, offset)
    if "taker_buy_base" in frame:
        frame["taker_sell_base"] = frame["volume"] - frame["taker_buy_base"]
    return _finish(path, frame, report, step)


def _check_ohlc(path: str, frame: pd.DataFrame, offset: int) -> None:
    o, h, lo, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
    bad = (h < np.maximum(o, c) - 1e-12 * np.abs(h)) | (lo > np.minimum(o, c) + 1e-12 * np.abs(lo))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(path, "high/low do not bracket open/close", row=i + offset, column="high")


def infer_step(idx: pd.DatetimeIndex) -> int | None:
    """The median spacing of the index in seconds (None with fewer than three times)."""
    if len(idx) < 3:
        return None
    d = np.diff(idx.as_unit("ns").asi8) // 1_000_000_000
    d = d[d > 0]
    return int(np.median(d)) if d.size else None


def load_ohlcv(path: str, timeframe: str | None = None) -> Loaded:
    """freqtrade OHLCV CSV (``date, open, high, low, close, volume``), gzip or not; also mark-price files."""
    df = _read_csv(path)
    if "date" not in df.columns:
        if "open_time" in df.columns or not _has_header(path):
            return load_klines(path, timeframe)
        raise DataError(path, "missing column; expected date,open,high,low,close,volume", column="date")
    idx = _times(path, df, "date", 2)
    frame = _numbers(path, df, tuple(c for c in ("open", "high", "low", "close", "volume") if c in df.columns), 2)
    for col in ("open", "high", "low", "close"):
        if col not in frame:
            raise DataError(path, "missing column", column=col)
    frame.index = idx
    _check_ohlc(path, frame, 2)
    step = timeframe_seconds(timeframe) if timeframe else infer_step(idx)
    return _finish(path, frame, DataReport(path, units={"price": "quote per base", "volume": "base units"}), step)


def load_funding(path: str) -> Loaded:
    """Funding rates: Binance ``fundingRate`` (symbol, fundingTime, fundingRate, markPrice) or freqtrade
    (date, funding_rate; also its OHLCV-shaped ``open`` column). Decimal per interval; positive: longs pay."""
    df = _read_csv(path)
    if "fundingTime" in df.columns:
        tcol, rcol = "fundingTime", "fundingRate"
    elif "date" in df.columns:
        tcol, rcol = "date", "funding_rate" if "funding_rate" in df.columns else "open"
    else:
        raise DataError(path, "expected fundingTime,fundingRate or date,funding_rate", column="fundingTime")
    idx = _times(path, df, tcol, 2).floor("s")
    frame = _numbers(path, df, (rcol,), 2).rename(columns={rcol: "funding_rate"})
    if "markPrice" in df.columns:
        frame["funding_mark_price"] = _numbers(path, df, ("markPrice",), 2, allow_empty=("markPrice",))["markPrice"]
    frame.index = idx
    bad = np.abs(frame["funding_rate"].to_numpy()) > 0.05
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(path, "funding rate above 5 % per interval: give decimals (0.0001 = 0.01 %)", i + 2, rcol)
    return _finish(path, frame, DataReport(path, units={"funding_rate": "decimal per funding interval"}), None)


def _binance_stats(path: str, layout: str, columns: dict[str, str], units: dict[str, str]) -> Loaded:
    """A Binance futures-data file (``timestamp`` plus the named columns, renamed)."""
    df = _read_csv(path)
    first = next(iter(columns))
    if first not in df.columns:
        raise DataError(path, f"expected Binance {layout} layout", column=first)
    idx = _times(path, df, "timestamp", 2)
    frame = _numbers(path, df, tuple(columns), 2).rename(columns=columns)
    frame.index = idx
    return _finish(path, frame, DataReport(path, units=units), infer_step(idx))


def load_open_interest(path: str) -> Loaded:
    """Binance ``openInterestHist``: open_interest (base units), open_interest_value (quote)."""
    return _binance_stats(path, "openInterestHist",
                          {"sumOpenInterest": "open_interest", "sumOpenInterestValue": "open_interest_value"},
                          {"open_interest": "base units", "open_interest_value": "quote"})  # fmt: skip


def load_taker_volume(path: str) -> Loaded:
    """Binance ``takerBuySellVol``: taker_buy_base, taker_sell_base (base units)."""
    return _binance_stats(path, "takerBuySellVol", {"buyVol": "taker_buy_base", "sellVol": "taker_sell_base"},
                          {"taker volume": "base units"})  # fmt: skip


def load_liquidations(path: str) -> Loaded:
    """Liquidation volume per bar: Coinalyze daily export or a user's ``timestamp, long_liq, short_liq``.

    ``long_liq`` is forced selling of longs, ``short_liq`` forced buying of shorts (base units for Coinalyze's
    ``BTCUSDT_PERP.A``; a user's file keeps its own unit). Coinalyze's ratio columns are ignored."""
    df = _read_csv(path)
    tcol = next((c for c in ("timestamp", "time", "date") if c in df.columns), None)
    if tcol is None:
        raise DataError(path, "expected timestamp,long_liq,short_liq", column="timestamp")
    idx = _times(path, df, tcol, 2)
    frame = _numbers(path, df, ("long_liq", "short_liq"), 2)
    if (frame.to_numpy() < 0).any():
        i = int(np.flatnonzero((frame.to_numpy() < 0).any(axis=1))[0])
        raise DataError(path, "negative liquidation volume", i + 2, "long_liq")
    frame.index = idx
    units = {"long_liq": "base units (Coinalyze) or the file's own", "short_liq": "same as long_liq"}
    return _finish(path, frame, DataReport(path, units=units), infer_step(idx))
