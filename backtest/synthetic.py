"""A seeded synthetic perpetual-futures market: the embedded default dataset.

So that ``liqrisk backtest`` runs end to end on a fresh machine with no data, :func:`synthetic_market` builds a
market frame (the columns of :func:`backtest.alignment.market_frame`) from:

* returns: GARCH(1,1) volatility clustering (Bollerslev 1986) with Student-t(4) innovations scaled to unit
  variance (fat tails), ``annual_vol`` the long-run volatility;
* positioning ``x`` in [−1, 1] (+: longs crowded): an Ornstein–Uhlenbeck process fed by recent returns (trend
  followers pile in), with a small drift against the crowd;
* funding every 8 h: ``0.0001 + 0.0015·x`` plus noise, clipped to ±0.3 % (mean-reverting because ``x`` is);
  open interest that grows with crowding;
* squeeze events that come from an actual liquidation cascade: when shorts are crowded (``x < −0.45``) and the
  close breaks the 48-bar high, the shorts' liquidation prices (:func:`core.liquidation_price` of isolated
  positions at a leverage mix of 10/20/25/50/100x on part of the open interest, maintenance margin rate
  :data:`MAINTENANCE_MARGIN_RATE`) are fed with the breakout move to :func:`core.cascade` (the risk API's
  cascade model); its extra move is added over the next three bars, its liquidated notional becomes
  ``short_liq``, and the crowd unwinds. The
  mirror for crowded longs. Ordinary bars carry a small background of liquidations on the losing side.

Deterministic for a given seed (numpy ``default_rng``). Mark price = last price ± a tiny basis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

import core

from .loaders import timeframe_seconds

LEVERAGE_MIX = np.array([10.0, 20.0, 25.0, 50.0, 100.0])
LEVERAGE_WEIGHTS = np.array([0.3, 0.25, 0.2, 0.15, 0.1])
#: the crowd's maintenance margin rate (Binance's first BTCUSDT tier), for its liquidation prices
MAINTENANCE_MARGIN_RATE = 0.005


@njit(cache=True)
def _garch_nb(z, omega, alpha, beta):
    n = z.shape[0]
    r = np.empty(n)
    var = omega / (1.0 - alpha - beta)
    for i in range(n):
        r[i] = np.sqrt(var) * z[i]
        var = omega + alpha * r[i] * r[i] + beta * var
    return r


@njit(cache=True)
def _positioning_nb(r, eps, kappa, feed, sigma):
    n = r.shape[0]
    x = np.empty(n)
    v = 0.0
    for i in range(n):
        v = v - kappa * v + feed * r[i] + sigma * eps[i]
        v = min(max(v, -0.98), 0.98)
        x[i] = v
    return x


def synthetic_market(
    bars: int = 8760,
    timeframe: str = "1h",
    seed: int = 7,
    start_price: float = 30_000.0,
    start: str = "2024-01-01",
    annual_vol: float = 0.6,
    open_interest: float = 2e9,
) -> pd.DataFrame:
    """A market frame of ``bars`` bars at ``timeframe`` (quote per base; volumes and liquidations in base units;
    open interest in base units), ``liq_source = "synthetic"``, and ``attrs["events"]`` listing the squeezes."""
    if not (100 <= int(bars) <= 2_000_000):
        raise ValueError("bars: between 100 and 2,000,000")
    step = timeframe_seconds(timeframe)
    rng = np.random.default_rng(seed)
    n = int(bars)
    per_year = 365 * 86400 / step
    bar_var = annual_vol**2 / per_year
    alpha, beta = 0.08, 0.9
    z = rng.standard_t(4, n) / np.sqrt(2.0)  # t(4) has variance 2
    r = _garch_nb(z, bar_var * (1 - alpha - beta), alpha, beta)
    scale = np.sqrt(bar_var)
    kappa = min(0.02 * step / 3600, 0.5)  # crowding mean-reverts over ~2 days
    spread = 0.35 * np.sqrt(2 * kappa)  # stationary standard deviation ~0.35
    x = _positioning_nb(r / scale, rng.standard_normal(n), kappa, 0.6 * spread, 0.8 * spread)
    r = r - 0.2 * scale * x  # a mild drift against the crowd (funding and carry pressure)
    logp = np.log(start_price) + np.cumsum(r)
    long_liq = np.zeros(n)
    short_liq = np.zeros(n)
    oi_base = open_interest / start_price * np.exp(0.3 * np.abs(x))
    events = []
    cooldown = int(48 * 3600 / step) or 1
    look = max(int(48 * 3600 / step), 2)
    t = look + 1
    while t < n - 4:
        p = np.exp(logp)
        hi = pd.Series(p).rolling(look).max().shift(1).to_numpy()
        lo = pd.Series(p).rolling(look).min().shift(1).to_numpy()
        cand = np.flatnonzero(((x < -0.45) & (p > hi)) | ((x > 0.45) & (p < lo)))
        cand = cand[cand >= t]
        if not cand.size or cand[0] >= n - 4:
            break
        i = int(cand[0])
        crowd_short = x[i] < 0
        price = float(p[i])
        shock = float(np.expm1(r[i]) * 100)
        side = "short" if crowd_short else "long"
        sign = 1.0 if crowd_short else -1.0
        share = 0.5 + 0.5 * abs(x[i])  # the crowded side's share of open interest
        notional = oi_base[i] * price * share * 0.25 * LEVERAGE_WEIGHTS
        lp = core.liquidation_price(side=side, entry_price=price, quantity=notional / price, leverage=LEVERAGE_MIX,
                                    maintenance_margin_rate=MAINTENANCE_MARGIN_RATE,
                                    fields=("liquidation_price",))["liquidation_price"]  # fmt: skip
        res = core.cascade(start_price=price, shock_pct=shock if shock * sign > 0 else 0.1 * sign,
                           cluster_price=lp, cluster_notional=notional, cluster_side=[side] * lp.size,
                           depth_per_pct=0.02 * oi_base[i] * price)  # fmt: skip
        extra = np.log(res["final_price"] / price)
        liq_notional = res["liquidated_short_notional"] if crowd_short else res["liquidated_long_notional"]
        w = np.array([0.5, 0.3, 0.2])
        logp[i + 1 :] += extra * w[0]
        logp[i + 2 :] += extra * w[1]
        logp[i + 3 :] += extra * w[2]
        r[i + 1 : i + 4] += extra * w
        target = short_liq if crowd_short else long_liq
        target[i + 1 : i + 4] += liq_notional * w / np.exp(logp[i + 1 : i + 4])
        decay = np.exp(-kappa * np.arange(n - i - 1))
        x[i + 1 :] -= 0.8 * x[i] * decay  # the crowd is flushed out
        events.append({"bar": i + 1, "side": side, "move_pct": float(np.expm1(extra) * 100),
                       "liquidated_notional": float(liq_notional)})  # fmt: skip
        t = i + cooldown
    close = np.exp(logp)
    open_ = np.concatenate([[start_price], close[:-1]])
    vol_now = np.abs(r) / scale
    wick = np.abs(rng.standard_t(4, (2, n))) * scale * 0.4
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = oi_base * 0.02 * (1 + vol_now) * np.exp(0.3 * rng.standard_normal(n))
    buy_share = np.clip(0.5 + 0.25 * np.tanh(r / scale), 0.05, 0.95)
    long_liq += np.where(r < 0, oi_base * 1e-4 * vol_now, 0.0)
    short_liq += np.where(r > 0, oi_base * 1e-4 * vol_now, 0.0)
    idx = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=n, freq=pd.Timedelta(seconds=step), name="time")
    funding = np.full(n, np.nan)
    at = (idx.hour % 8 == 0) & (idx.minute == 0)
    funding[at] = np.clip(0.0001 + 0.0015 * x[at] + 0.00005 * rng.standard_normal(int(at.sum())), -0.003, 0.003)
    basis = 1 + 0.0002 * rng.standard_normal(n)
    frame = pd.DataFrame(
        {
            "open": open_, "high": high, "low": low, "close": close, "volume": volume,
            "mark_open": open_ * basis, "mark_high": high * basis, "mark_low": low * basis,
            "mark_close": close * basis, "funding_rate": funding, "open_interest": oi_base,
            "long_liq": long_liq, "short_liq": short_liq,
            "taker_buy": volume * buy_share, "taker_sell": volume * (1 - buy_share), "liq_source": "synthetic",
        },
        index=idx,
    )  # fmt: skip
    frame["mark_high"] = np.maximum(frame["mark_high"], frame[["mark_open", "mark_close"]].max(axis=1))
    frame["mark_low"] = np.minimum(frame["mark_low"], frame[["mark_open", "mark_close"]].min(axis=1))
    frame.attrs["events"] = events
    return frame
