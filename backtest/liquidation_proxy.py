"""The liquidation proxy: long/short liquidation volume estimated from taker flow, for data without a liquidation
series (our convention, documented in ``docs/data.md``, "Liquidation proxy")."""

from __future__ import annotations

import numpy as np
import pandas as pd


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
