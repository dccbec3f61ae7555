"""The aligned market frame: OHLCV bars with the mark price, funding, open interest, taker flow and liquidations
of other files put on the same bars, causally (a value is on the bar at which it is known)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .liquidation_proxy import liquidation_proxy
from .loaders import infer_step, timeframe_seconds

FRAME_COLUMNS = (
    "open", "high", "low", "close", "volume",
    "mark_open", "mark_high", "mark_low", "mark_close",
    "funding_rate", "funding_open", "funding_inside", "open_interest", "long_liq", "short_liq", "taker_buy",
    "taker_sell",
)  # fmt: skip


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
    step = timeframe_seconds(timeframe) if timeframe else (infer_step(idx) or 3600)
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
        env_step = infer_step(mark_envelope.index) or step
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
        liq_step = infer_step(liq.index) or step
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
        warnings.append("no liquidation series: using the taker-flow proxy (see backtest.liquidation_proxy)")
    return out, warnings
