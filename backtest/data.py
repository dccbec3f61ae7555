"""Loaders for Binance's own file layouts, freqtrade files and liquidation series, and the aligned market frame.

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
TIMEFRAMES = {"1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200, "4h": 14400,
              "6h": 21600, "8h": 28800, "12h": 43200, "1d": 86400}  # fmt: skip


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
    step = timeframe_seconds(timeframe) if timeframe else _infer_step(idx)
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


def _infer_step(idx: pd.DatetimeIndex) -> int | None:
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
    step = timeframe_seconds(timeframe) if timeframe else _infer_step(idx)
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
    return _finish(path, frame, DataReport(path, units=units), _infer_step(idx))


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
    return _finish(path, frame, DataReport(path, units=units), _infer_step(idx))


# ---------------------------------------------------------------------------------------------------------------
# The aligned market frame

FRAME_COLUMNS = (
    "open", "high", "low", "close", "volume",
    "mark_open", "mark_high", "mark_low", "mark_close",
    "funding_rate", "funding_open", "funding_inside", "open_interest", "long_liq", "short_liq", "taker_buy",
    "taker_sell",
)  # fmt: skip


def liquidation_proxy(frame: pd.DataFrame, volume_mult: float = 2.0, wick: float = 0.5, window: int = 48):
    """Proxy long/short liquidation volume (base units) from taker flow when no liquidation series exists.

    Forced orders are market orders: a short squeeze shows as taker *buying* well above normal volume on a bar
    that spikes upward. Per bar: imbalance = taker buy − taker sell (or, without a taker split, the close
    location value ``(2·close − high − low)/(high − low) · volume``, Chaikin's money-flow multiplier); a bar
    counts only when volume ≥ ``volume_mult`` × its mean over the previous ``window`` bars and the move in the
    flow's direction is at least ``wick`` of the bar's range (``high − open`` for buys, ``open − low`` for
    sells). short_liq = max(imbalance, 0) on such bars, long_liq = max(−imbalance, 0).
    Our convention (no public data set has intraday liquidations split by side), documented in
    ``docs/data.md`` ("Liquidation proxy").
    """
    o, h, lo, c, v = (frame[k].to_numpy(float) for k in ("open", "high", "low", "close", "volume"))
    rng = np.maximum(h - lo, 1e-12 * np.maximum(np.abs(c), 1.0))
    if "taker_buy" in frame and frame["taker_buy"].notna().all():
        imb = frame["taker_buy"].to_numpy(float) - frame["taker_sell"].to_numpy(float)
    else:
        imb = (2 * c - h - lo) / rng * v
    mean_prev = pd.Series(v).rolling(window, min_periods=max(2, window // 4)).mean().shift(1).to_numpy()
    loud = v >= volume_mult * np.nan_to_num(mean_prev, nan=np.inf)
    up = (h - o) >= wick * rng
    down = (o - lo) >= wick * rng
    short_liq = np.where(loud & up, np.maximum(imb, 0.0), 0.0)
    long_liq = np.where(loud & down, np.maximum(-imb, 0.0), 0.0)
    return long_liq, short_liq


def funding_columns(funding: pd.DataFrame, bars: pd.DataFrame, bar: pd.Timedelta) -> dict[str, np.ndarray]:
    """Funding events summed into the bars that contain them, each at its own time and mark price.

    Returns ``funding_rate`` (Σ rate, decimal; NaN on bars without an event), ``funding_open`` and
    ``funding_inside`` (Σ rate × mark price, quote per base unit, of the events at the bar's open timestamp —
    within its first minute, which absorbs Binance's settlement lag of a few ms — and of those after it). The mark
    price of an event is the file's ``markPrice`` where given, else the bar's mark open for an event at the open
    and the mark interpolated linearly from the bar's open to its close at the event's time inside it.
    The simulator settles these from the position's isolated margin (see :mod:`backtest.engine`).
    """
    f = funding.loc[funding["funding_rate"].notna()]
    idx = bars.index
    pos = idx.searchsorted(f.index, side="right") - 1  # the bar that opens at or before each event
    keep = pos >= 0
    keep[keep] = f.index[keep] < idx[pos[keep]] + bar
    f, pos = f[keep], pos[keep]
    start = idx[pos]
    rate = f["funding_rate"].to_numpy(dtype=float)
    at_open = np.asarray(f.index - start < pd.Timedelta(minutes=1))
    frac = np.asarray((f.index - start) / bar, dtype=float)
    mo, mc = bars["mark_open"].to_numpy(float)[pos], bars["mark_close"].to_numpy(float)[pos]
    mark = np.where(at_open, mo, mo + (mc - mo) * frac)
    if "funding_mark_price" in f:
        given = f["funding_mark_price"].to_numpy(dtype=float)
        mark = np.where(np.isfinite(given) & (given > 0), given, mark)
    n = len(idx)
    out = {
        "funding_rate": np.bincount(pos, weights=rate, minlength=n).astype(float),
        "funding_open": np.bincount(pos[at_open], weights=(rate * mark)[at_open], minlength=n).astype(float),
        "funding_inside": np.bincount(pos[~at_open], weights=(rate * mark)[~at_open], minlength=n).astype(float),
    }
    out["funding_rate"][np.bincount(pos, minlength=n) == 0] = np.nan
    return out


def market_frame(
    ohlcv: pd.DataFrame,
    mark: pd.DataFrame | None = None,
    funding: pd.DataFrame | None = None,
    open_interest: pd.DataFrame | None = None,
    liquidations: pd.DataFrame | None = None,
    taker: pd.DataFrame | None = None,
    timeframe: str | None = None,
    mark_envelope: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Align everything on the OHLCV bars. Returns the frame (columns :data:`FRAME_COLUMNS` plus
    ``liq_source``) and warnings.

    * mark OHLC: the mark klines (finer ones aggregated by :func:`load_dataset`); else, given ``mark_envelope``
      (mark klines coarser than the bars), the last-price OHLC clipped to the mark low–high of the coarse period
      holding each bar (its open at the period's open): a liquidation is never judged beyond what mark price
      reached (warned); else the last-price OHLC (warned: liquidations are then checked on last price);
    * ``funding_rate``: the sum of the rates settled inside each bar (every event, not only the last; floored to
      the bar), NaN on bars without one; ``funding_open``/``funding_inside``: see :func:`funding_columns`;
    * ``open_interest``: last known value (forward filled, causal), NaN before the first;
    * ``long_liq``/``short_liq``: a liquidation series summed into bars; a coarser series (daily) is placed on the
      bar at the end of its period so that it is known only once the period is over (no look-ahead); absent
      that, :func:`liquidation_proxy` (warned);
    * ``taker_buy``/``taker_sell``: kline taker columns, else the takerBuySellVol file, else NaN.
    """
    warnings: list[str] = []
    idx = ohlcv.index
    step = timeframe_seconds(timeframe) if timeframe else (_infer_step(idx) or 3600)
    bar = pd.Timedelta(seconds=step)
    out = pd.DataFrame(index=idx)
    for k in ("open", "high", "low", "close", "volume"):
        out[k] = ohlcv[k] if k in ohlcv else np.nan
    if mark is not None and len(mark):
        m = mark.reindex(idx)
        for k in ("open", "high", "low", "close"):
            out["mark_" + k] = m[k].to_numpy()
        missing = out["mark_close"].isna()
        if missing.any():
            warnings.append(f"mark price missing on {int(missing.sum())} bars; last price used there")
            for k in ("open", "high", "low", "close"):
                out.loc[missing, "mark_" + k] = out.loc[missing, k]
    elif mark_envelope is not None and len(mark_envelope):
        env_step = _infer_step(mark_envelope.index) or step
        start = idx.floor(pd.Timedelta(seconds=env_step))
        env = mark_envelope.reindex(start)
        lo, hi = env["low"].to_numpy(float), env["high"].to_numpy(float)
        has = np.isfinite(lo) & np.isfinite(hi)
        for k in ("open", "high", "low", "close"):
            last = out[k].to_numpy(float)
            out["mark_" + k] = np.where(has, np.clip(last, np.where(has, lo, -np.inf), np.where(has, hi, np.inf)), last)
        first = np.asarray(idx == start) & np.isfinite(env["open"].to_numpy(float))
        out.loc[first, "mark_open"] = env["open"].to_numpy(float)[first]
        out["mark_low"] = np.minimum(out["mark_low"], out["mark_open"])  # the bar's range holds its open
        out["mark_high"] = np.maximum(out["mark_high"], out["mark_open"])
        tf = mark_envelope.attrs.get("timeframe", f"{env_step // 60}m")
        warnings.append(
            f"no {timeframe or f'{step // 60}m'} mark-price klines: liquidation is judged on last price bounded by the "
            f"{tf} mark-price range of each period (never beyond its mark low/high)"
            + (f"; last price alone on {int((~has).sum())} bars without mark data" if (~has).any() else "")
        )
    else:
        warnings.append("no mark-price data: liquidation is checked on last-price high/low")
        for k in ("open", "high", "low", "close"):
            out["mark_" + k] = out[k]
    out["funding_rate"] = np.nan
    out["funding_open"] = out["funding_inside"] = 0.0
    if funding is not None and len(funding):
        for k, v in funding_columns(funding, out, bar).items():
            out[k] = v
    else:
        warnings.append("no funding data: funding is not charged")
    out["open_interest"] = np.nan
    if open_interest is not None and len(open_interest):
        oi = open_interest["open_interest"]
        out["open_interest"] = oi.reindex(idx, method="ffill").to_numpy()
    if "taker_buy_base" in ohlcv:
        out["taker_buy"] = ohlcv["taker_buy_base"].to_numpy()
        out["taker_sell"] = ohlcv["taker_sell_base"].to_numpy()
    elif taker is not None and len(taker):
        t = taker.reindex(idx)
        out["taker_buy"], out["taker_sell"] = t["taker_buy_base"].to_numpy(), t["taker_sell_base"].to_numpy()
    else:
        out["taker_buy"] = out["taker_sell"] = np.nan
    if liquidations is not None and len(liquidations):
        liq = liquidations[["long_liq", "short_liq"]]
        liq_step = _infer_step(liq.index) or step
        if liq_step > step:  # a coarser series is known at the end of its period: put it on the last bar
            known = liq.index + pd.Timedelta(seconds=liq_step) - bar
            liq = liq.set_axis(known)
            warnings.append(f"liquidations every {liq_step // 3600} h placed on the last bar of each period")
        liq = liq.groupby(liq.index.floor(bar)).sum().reindex(idx).fillna(0.0)
        out["long_liq"], out["short_liq"] = liq["long_liq"].to_numpy(), liq["short_liq"].to_numpy()
        out["liq_source"] = "data"
    else:
        out["long_liq"], out["short_liq"] = liquidation_proxy(out)
        out["liq_source"] = "proxy"
        warnings.append("no liquidation series: using the taker-flow proxy (see backtest.data.liquidation_proxy)")
    return out, warnings


# ---------------------------------------------------------------------------------------------------------------
# A directory of files in Binance's or freqtrade's naming


def _first(folder: str, names: list[str]) -> str | None:
    for n in names:
        p = os.path.join(folder, n)
        if os.path.exists(p):
            return p
    return None


def load_dataset(folder: str, symbol: str, timeframe: str = "1h", liquidations: str | None = None):
    """Load and align what a folder holds for ``symbol`` (``SOL``, ``BTCUSDT``...) at ``timeframe``.

    Looks for freqtrade names (``SOL_USDT_USDT-5m-futures.csv.gz``, ``-1h-mark``, ``-1h-funding_rate``) and
    Binance names (``SOLUSDT_fapi_klines_1h.csv``, ``SOLUSDT_fundingRate.csv``, ``_openInterestHist_1h``,
    ``_takerBuySellVol_1h``); ``liquidations`` is an optional path to a liquidation series.
    Returns (frame, reports, warnings).
    """
    timeframe_seconds(timeframe)
    if not os.path.isdir(folder):
        if os.path.isfile(folder):
            loaded = load_ohlcv(folder, timeframe)
            liq = load_liquidations(liquidations) if liquidations else None
            frame, warns = market_frame(loaded.frame, liquidations=liq.frame if liq else None, timeframe=timeframe)
            return frame, [loaded.report] + ([liq.report] if liq else []), warns
        raise ValueError(f"data: no such file or folder: {folder}")
    base = symbol.upper().removesuffix("USDT").removesuffix("_USDT")
    pair = base + "USDT"
    ft = f"{base}_USDT_USDT"
    kl = _first(folder, [f"{ft}-{timeframe}-futures.csv.gz", f"{ft}-{timeframe}-futures.csv",
                         f"{pair}_fapi_klines_{timeframe}.csv", f"{pair}-{timeframe}.csv"])  # fmt: skip
    if kl is None:
        raise ValueError(f"data: no {timeframe} klines for {symbol} in {folder}")
    reports = []
    main = load_klines(kl, timeframe) if "fapi_klines" in kl else load_ohlcv(kl, timeframe)
    reports.append(main.report)

    def opt(names, loader):
        p = _first(folder, names)
        if p is None:
            return None
        got = loader(p)
        reports.append(got.report)
        return got.frame

    def mark_file(tf):
        return opt([f"{ft}-{tf}-mark.csv.gz", f"{ft}-{tf}-mark.csv", f"{pair}_markPriceKlines_{tf}.csv"],
                   lambda p: load_ohlcv(p, tf))  # fmt: skip

    step = timeframe_seconds(timeframe)
    mark, envelope = mark_file(timeframe), None
    finer = [tf for tf, sec in TIMEFRAMES.items() if sec < step and step % sec == 0]
    coarser = [tf for tf, sec in TIMEFRAMES.items() if sec > step and sec % step == 0]
    for tf in reversed(finer) if mark is None else ():  # the coarsest finer series that exists, aggregated
        got = mark_file(tf)
        if got is not None:
            mark = got.resample(pd.Timedelta(seconds=step), label="left", closed="left").agg(
                {"open": "first", "high": "max", "low": "min", "close": "last"}
            )
            break
    for tf in coarser if mark is None else ():  # else the finest coarser series bounds the last price
        envelope = mark_file(tf)
        if envelope is not None:
            envelope.attrs["timeframe"] = tf
            break
    fund = opt([f"{ft}-1h-funding_rate.csv.gz", f"{ft}-8h-funding_rate.csv.gz", f"{pair}_fundingRate.csv"],
               load_funding)  # fmt: skip
    oi = opt([f"{pair}_openInterestHist_{timeframe}.csv", f"{pair}_openInterestHist_1h.csv"], load_open_interest)
    taker = opt([f"{pair}_takerBuySellVol_{timeframe}.csv"], load_taker_volume)
    liq = None
    if liquidations:
        got = load_liquidations(liquidations)
        reports.append(got.report)
        liq = got.frame
    frame, warns = market_frame(main.frame, mark, fund, oi, liq, taker, timeframe, mark_envelope=envelope)
    return frame, reports, warns


def frame_from_columns(columns: dict[str, Any], timeframe: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """A market frame from columnar bars (``time`` in ms since the epoch, UTC; ``open``, ``high``, ``low``,
    ``close`` required; the other :data:`FRAME_COLUMNS` optional, ``funding_rate``/``open_interest`` may hold
    None where there is no value). Raises ValueError naming ``bars.<field>`` and the first bad index."""
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
