"""Replay a market, predict the liquidation probability, and count what happened: the calibration samples.

At every ``step``-th bar ``t`` of a market frame, and for each leverage and side, a hypothetical isolated
position is opened at the close (``entry_price`` = last close, ``notional`` quote). Its liquidation price comes
from :func:`core.liquidation_price` (the exchange's ruleset and tiers), and :func:`core.liquidation_probability`
predicts the probability that the mark price reaches it within each horizon, for each model:

* ``gbm``: the closed form, continuous monitoring;
* ``gbm_bgk``: the same with the Broadie–Glasserman–Kou correction for a barrier checked every
  ``monitoring_minutes`` (default: the bar length);
* ``student_t``: the seeded Monte Carlo with variance-matched Student-t steps of ``monitoring_minutes``.

The volatility is RiskMetrics' EWMA (:func:`core.risk.estimate_volatility`) of the mark closes up to and
including bar ``t`` (never later bars), over a trailing window long enough that the weight left out is below
1e-8. The outcome is whether the mark low (long) or mark high (short) of bars ``t+1 … t+h`` reached the
liquidation price, ``h`` = horizon / bar length. Bars whose horizon runs past the data, or whose volatility
window or horizon has a missing bar, are left out; so are positions the tier table refuses (leverage above the
tier's maximum).

Windows of consecutive bars overlap, so the outcomes are strongly autocorrelated: the number of independent
cases per leverage and side is about (bars × bar length / horizon), far fewer than the count of predictions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

MODELS = ("gbm", "gbm_bgk", "student_t")
#: weight of the EWMA left out by the trailing window
EWMA_TAIL = 1e-8


def ewma_window(lam: float) -> int:
    """Bars of history after which the EWMA weights left out sum to less than 1e-8 (λ^w < 1e-8)."""
    if not 0 < lam < 1:
        raise ValueError("lam: must be a decimal in (0, 1)")
    return int(math.ceil(math.log(EWMA_TAIL) / math.log(lam)))


def trailing_volatility(
    closes: Any, periods_per_year: float, lam: float = 0.94, bars: Sequence[int] | np.ndarray | None = None
) -> np.ndarray:
    """Annualised EWMA volatility (decimal) at each bar, from the closes up to and including that bar only.

    Each value is :func:`core.risk.estimate_volatility` of the trailing ``ewma_window(lam) + 1`` closes (all of
    them near the start), so a later price never changes an earlier value. NaN before the third close and where
    the window holds a missing (non-finite) close. ``bars``: compute only these bar indices (others NaN).
    """
    from core.risk import estimate_volatility

    c = np.asarray(closes, dtype=float)
    out = np.full(c.shape[0], np.nan)
    w = ewma_window(lam)
    bad = np.concatenate([[0], np.cumsum(~np.isfinite(c) | (c <= 0))])  # bad closes before index i
    for t in range(c.shape[0]) if bars is None else np.asarray(bars, dtype=int):
        lo = max(0, t - w)
        if t - lo >= 2 and bad[t + 1] == bad[lo]:
            out[t] = estimate_volatility(c[lo : t + 1], periods_per_year, "ewma", lam)
    return out


def _forward_extreme(x: np.ndarray, h: int, high: bool) -> np.ndarray:
    """max (or min) of x[t+1 … t+h] for every t (NaN where the window runs past the end or holds a NaN)."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if n > h:
        win = np.lib.stride_tricks.sliding_window_view(x[1:], h)  # row t covers x[t+1 : t+1+h]
        out[: n - h] = win.max(axis=1) if high else win.min(axis=1)  # NaN propagates
    return out


def _predict(model, side_sign, mark, lp, vol, hz, minutes, dof, paths, seed, progress) -> np.ndarray:
    """``core.liquidation_probability`` of every position, shape (horizon, bar, leverage, side): the closed
    forms in one call; the Monte Carlo one bar at a time (each bar has its own volatility, hence its own paths)."""
    import core

    if model in ("gbm", "gbm_bgk"):
        return core.liquidation_probability(
            side=side_sign[None, None, None, :],
            mark_price=mark[None, :, None, None],
            liquidation_price=lp[None],
            volatility=vol[None, :, None, None],
            horizon_hours=hz[:, None, None, None],
            model="gbm",
            monitoring_minutes=minutes if model == "gbm_bgk" else None,
        )["probability"]
    out = np.empty((hz.size, *lp.shape))
    for j in range(mark.size):
        out[:, j] = core.liquidation_probability(
            side=side_sign[None, None, :],
            mark_price=mark[j],
            liquidation_price=lp[j][None],
            volatility=vol[j],
            horizon_hours=hz[:, None, None],
            model="student_t",
            monitoring_minutes=minutes,
            degrees_of_freedom=dof,
            paths=paths,
            seed=seed,
        )["probability"]
        if progress is not None:
            progress(j + 1, mark.size)
    return out


def calibration_samples(
    frame: pd.DataFrame,
    *,
    symbol: str,
    exchange: str = "binance",
    timeframe: str = "1h",
    horizons_hours: Sequence[float] = (24.0, 168.0),
    leverages: Sequence[float] = (2.0, 3.0, 5.0, 10.0, 20.0, 50.0),
    sides: Sequence[str] = ("long", "short"),
    models: Sequence[str] = MODELS,
    step: int = 1,
    notional: float = 10_000.0,
    lam: float = 0.94,
    warmup: int | None = None,
    monitoring_minutes: float | None = None,
    paths: int = 1_000,
    degrees_of_freedom: float = 4.0,
    seed: int = 0,
    maintenance_margin_rate: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Predictions and outcomes, one row per (bar, horizon, leverage, side).

    Parameters
    ----------
    frame : a market frame (:func:`backtest.data.load_dataset`): ``close`` and ``mark_close``, ``mark_high``,
        ``mark_low`` (quote per base unit) on a regular UTC bar index.
    symbol, exchange : instrument and ruleset for :func:`core.liquidation_price` (tiers).
    timeframe : bar interval (``1h``); sets the bars per horizon and the annualisation (bars per year).
    horizons_hours : horizons in hours, each a whole number of bars.
    leverages : initial leverages of the hypothetical isolated positions.
    sides : ``long`` and/or ``short``.
    models : any of :data:`MODELS`.
    step : predict at every ``step``-th bar (1 = every bar).
    notional : position size in quote currency at entry (selects the tier).
    lam : EWMA decay λ (RiskMetrics: 0.94 for daily data; the same default here).
    warmup : bars skipped at the start (default: the EWMA window, so that the seed no longer matters).
    monitoring_minutes : barrier check interval for ``gbm_bgk`` and the Monte Carlo step (default: bar length).
    paths, degrees_of_freedom, seed : the Student-t Monte Carlo (seeded, common random numbers).
    maintenance_margin_rate : override the tier table (then no leverage cap applies).
    progress : called as ``progress(done, total)`` after each bar of the Monte Carlo (the slow part).

    Returns
    -------
    (samples, skipped)
        ``samples``: columns ``time``, ``bar``, ``horizon_hours``, ``leverage``, ``side``, ``entry_price``,
        ``mark_price``, ``liquidation_price``, ``volatility`` (annualised, decimal), ``liquidated`` (bool) and
        ``p_<model>`` (probability, 0–1); ``skipped``: counts of predictions left out, by reason.
    """

    from core.risk import HOURS_PER_YEAR

    checked = _check_options(models, sides, leverages, step, warmup, notional, timeframe, horizons_hours,
                             monitoring_minutes)  # fmt: skip
    lev, bar_s, hz, h_bars, minutes = checked
    for col in ("close", "mark_close", "mark_high", "mark_low"):
        if col not in frame:
            raise ValueError(f"data: the frame needs a {col!r} column")
    frame = _regular_grid(frame, bar_s)
    idx = frame.index
    close = frame["close"].to_numpy(float)
    mark = frame["mark_close"].to_numpy(float)
    n = close.shape[0]
    start = ewma_window(lam) if warmup is None else int(warmup)
    bars = np.arange(max(start, 2), n, step)
    bar_h = bar_s / 3600.0
    vol = trailing_volatility(mark, HOURS_PER_YEAR / bar_h, lam, bars=bars)[bars]
    ahead_low = np.stack([_forward_extreme(frame["mark_low"].to_numpy(float), h, False)[bars] for h in h_bars])
    ahead_high = np.stack([_forward_extreme(frame["mark_high"].to_numpy(float), h, True)[bars] for h in h_bars])
    entry, mk = close[bars], mark[bars]
    ok_bar = np.isfinite(vol) & (vol > 0) & np.isfinite(entry) & np.isfinite(mk)
    skipped = {"incomplete_history": int(np.sum(~ok_bar) * hz.size * lev.size * len(sides))}
    bars, vol, entry, mk = bars[ok_bar], vol[ok_bar], entry[ok_bar], mk[ok_bar]
    ahead_low, ahead_high = ahead_low[:, ok_bar], ahead_high[:, ok_bar]

    side_sign = np.array([1.0 if s == "long" else -1.0 for s in sides])
    lp_ok, refused = _liquidation_prices(exchange, symbol, side_sign, entry, notional, lev, maintenance_margin_rate)
    # outcome, shape (horizon, bars, leverage, side): the mark path beyond the liquidation price
    low4 = ahead_low[:, :, None, None]
    high4 = ahead_high[:, :, None, None]
    with np.errstate(invalid="ignore"):
        hit = np.where(side_sign > 0, low4 <= lp_ok[None], high4 >= lp_ok[None])
    complete = np.where(side_sign > 0, np.isfinite(low4), np.isfinite(high4))
    complete = np.broadcast_to(complete, hit.shape)

    probs = {
        m: np.broadcast_to(
            _predict(m, side_sign, mk, lp_ok, vol, hz, minutes, degrees_of_freedom, paths, seed, progress), hit.shape
        )
        for m in models
    }
    keep = complete & ~np.broadcast_to(refused[None], hit.shape)
    skipped["horizon_beyond_data"] = int(np.sum(~complete))
    skipped["refused_by_tiers"] = int(np.sum(complete & ~keep))
    H, B, L, S = np.meshgrid(np.arange(hz.size), np.arange(bars.size), np.arange(lev.size), np.arange(len(sides)),
                             indexing="ij")  # fmt: skip
    sel = keep.ravel()
    hi, bi, li, si = (a.ravel()[sel] for a in (H, B, L, S))
    times = pd.Index(idx).take(bars).take(bi)
    samples = pd.DataFrame(
        {
            "time": times,
            "bar": bars[bi],
            "horizon_hours": hz[hi],
            "leverage": lev[li],
            "side": np.asarray(sides)[si],
            "entry_price": entry[bi],
            "mark_price": mk[bi],
            "liquidation_price": lp_ok[bi, li, si],
            "volatility": vol[bi],
            "liquidated": hit.ravel()[sel].astype(bool),
            **{f"p_{m}": probs[m].ravel()[sel] for m in models},
        }
    )
    return samples, skipped


def _check_options(models, sides, leverages, step, warmup, notional, timeframe, horizons_hours, monitoring_minutes):
    """The options of :func:`calibration_samples` checked (ValueError naming the field); returns the leverages,
    the bar length in seconds, the horizons in hours and in bars, and the monitoring interval in minutes."""
    from .loaders import timeframe_seconds

    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ValueError(f"model: must be among {', '.join(MODELS)}, not {unknown or 'nothing'}")
    bad_sides = [s for s in sides if s not in ("long", "short")]
    if bad_sides or not sides:
        raise ValueError(f"side: must be long or short, not {bad_sides or 'nothing'}")
    lev = np.asarray(leverages, dtype=float)
    if lev.ndim != 1 or lev.size == 0 or not np.all(np.isfinite(lev) & (lev >= 1)):
        raise ValueError("leverage: one or more numbers >= 1")
    if not (isinstance(step, int | np.integer) and step >= 1):
        raise ValueError("step: must be a whole number >= 1")
    if warmup is not None and not (isinstance(warmup, int | np.integer) and warmup >= 0):
        raise ValueError("warmup: must be a whole number of bars >= 0")
    if not (math.isfinite(notional) and notional > 0):
        raise ValueError("notional: must be a finite number > 0")
    bar_s = timeframe_seconds(timeframe)
    bar_h = bar_s / 3600.0
    hz = np.asarray(horizons_hours, dtype=float)
    if hz.ndim != 1 or hz.size == 0 or not np.all(np.isfinite(hz) & (hz > 0)):
        raise ValueError("horizon: one or more numbers of hours > 0")
    h_bars = np.rint(hz / bar_h).astype(int)
    if np.any(h_bars < 1) or np.any(np.abs(h_bars * bar_h - hz) > 1e-9):
        raise ValueError(f"horizon: must be whole multiples of the {timeframe} bar")
    minutes = bar_s / 60.0 if monitoring_minutes is None else float(monitoring_minutes)
    if not (math.isfinite(minutes) and minutes > 0):
        raise ValueError("monitoring_minutes: must be a finite number > 0")
    return lev, bar_s, hz, h_bars, minutes


def _regular_grid(frame: pd.DataFrame, bar_s: int) -> pd.DataFrame:
    """The frame on a regular grid, so that "h bars later" is "h × bar length later"; missing bars become NaN."""
    idx = frame.index
    if len(idx) and isinstance(idx, pd.DatetimeIndex):
        grid = pd.date_range(idx[0], idx[-1], freq=pd.Timedelta(seconds=bar_s))
        if len(grid) != len(idx) or not grid.equals(idx):
            return frame.reindex(grid)
    return frame


def _liquidation_prices(exchange, symbol, side_sign, entry, notional, lev, maintenance_margin_rate):
    """``(liquidation price, refused)``, shape (bars, leverage, side), from :func:`core.liquidation_price`; NaN
    where the tier table refuses the position (``refused`` True)."""
    import core

    e3 = entry[:, None, None]
    lp_res = core.liquidation_price(
        exchange=exchange,
        symbol=symbol,
        side=side_sign[None, None, :],
        entry_price=e3,
        quantity=notional / e3,
        leverage=lev[None, :, None],
        maintenance_margin_rate=maintenance_margin_rate,
        fields=("liquidation_price",),
        raise_errors=False,
    )
    lp = np.broadcast_to(lp_res["liquidation_price"], (entry.size, lev.size, side_sign.size))
    refused = np.broadcast_to(
        np.asarray(lp_res["error_code"]).reshape(lp_res["liquidation_price"].shape) != 0, lp.shape
    )
    return np.where(refused, np.nan, lp), refused
