"""Squeeze entry and exit rules as vectorbt indicators (every parameter broadcasts into grids).

Short squeeze (long entry), on bar ``t``'s close, all of:

* breakout and hold: the lowest close of the last ``hold_bars`` bars is above the resistance, the highest high
  of the ``breakout_window`` bars before those (so the level is fixed before the hold starts);
* short liquidations surge: on one of the last ``hold_bars`` bars, short liquidations exceed ``surge_mult`` ×
  their mean over the ``surge_window`` bars before that bar (``surge_mult = 0`` switches this off);
* funding recovers: the lowest funding rate of the last ``funding_lookback`` bars is below ``funding_threshold``
  (deep negative: shorts crowded and paying) and the latest rate has risen from it by at least
  ``funding_recovery`` of the way to zero (NaN threshold switches this off). Funding is known from its
  timestamp on (forward filled).

Exits, any of: short liquidations fall below ``exit_fraction`` of their peak over the last ``peak_window`` bars;
RSI (Wilder, ``rsi_window``) was at or above ``rsi_level`` on the previous bar and turns down (stalls); a long
upper wick (``(high − max(open, close)) ≥ wick_ratio × range``) within ``near_pct`` of the resistance. The
simulator adds stop loss, take profit and the time stop.

The long squeeze (short entry) is the mirror image: the same rules applied to negated prices (a breakdown below
support; lower wicks; RSI ≤ 100 − level), to long liquidations, and to negated funding (a high positive rate
falling back). Every value at ``t`` uses bars up to ``t`` only (a test changes later data and checks).

Practitioner thresholds (``docs/risk-models.md`` §3, §7): funding below −0.03 %/8 h is a short-squeeze
setup, above +0.03 % a long-squeeze risk; RSI 70/30.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import vectorbt as vbt

from core.market import wilder_rsi

from .params import ENTRY_DEFAULTS, EXIT_DEFAULTS


def _rolling(x: np.ndarray, window: int, how: str, shift: int = 0) -> np.ndarray:
    s = pd.Series(x).rolling(int(window), min_periods=int(window))
    out = getattr(s, how)().to_numpy()
    if shift:
        out = np.concatenate([np.full(shift, np.nan), out[:-shift]])
    return out


def _entries_1d(high, low, close, liq, funding, breakout_window, hold_bars, surge_mult, surge_window,
                funding_threshold, funding_lookback, funding_recovery):  # fmt: skip
    hold = max(int(hold_bars), 1)
    resistance = _rolling(high, breakout_window, "max", shift=hold)
    held = _rolling(close, hold, "min") > resistance
    ok = held
    if surge_mult > 0:
        base = _rolling(liq, surge_window, "mean", shift=1)
        surge = (liq > surge_mult * base) & (liq > 0)
        ok = ok & (_rolling(surge.astype(float), hold, "max") > 0)
    if not np.isnan(funding_threshold):
        f = pd.Series(funding).ffill().to_numpy()
        if np.isnan(f).all():  # no funding data: the rule cannot be checked, so it does not block
            return ok
        fmin = _rolling(f, funding_lookback, "min")
        recovered = f >= fmin * (1.0 - funding_recovery)
        ok = ok & (fmin < funding_threshold) & (f > fmin) & recovered
    return ok


def _exits_1d(open_, high, low, close, liq, exit_fraction, peak_window, rsi_window, rsi_level, wick_ratio,
              breakout_window, near_pct):  # fmt: skip
    out = np.zeros(close.shape, dtype=np.bool_)
    if exit_fraction > 0:
        peak = _rolling(liq, peak_window, "max")
        out |= (peak > 0) & (liq < exit_fraction * peak)
    if rsi_level < 100:
        rsi = wilder_rsi(close, int(rsi_window))
        prev = np.concatenate([[np.nan], rsi[:-1]])
        out |= (prev >= rsi_level) & (rsi < prev)
    if wick_ratio < 1:
        rng = high - low
        wick = high - np.maximum(open_, close)
        resistance = _rolling(high, breakout_window, "max", shift=1)
        out |= (rng > 0) & (wick >= wick_ratio * rng) & (high >= resistance - near_pct * np.abs(resistance))
    return out


def _indicator(name: str, short: str, inputs: list[str], defaults: dict[str, Any], output: str, rule):
    """A vectorbt indicator running the 1-D ``rule`` on each column (one column per parameter combination)."""

    def apply(*args):
        series, params = args[: len(inputs)], args[len(inputs) :]
        out = np.zeros(series[0].shape, dtype=np.bool_)
        for j in range(out.shape[1]):
            out[:, j] = rule(*(x[:, j] for x in series), *params)
        return out

    factory = vbt.IndicatorFactory(class_name=name, short_name=short,
                                   input_names=inputs, param_names=list(defaults), output_names=[output])  # fmt: skip
    return factory.from_apply_func(apply, **defaults)


SqueezeEntry = _indicator("SqueezeEntry", "squeeze_entry", ["high", "low", "close", "liq", "funding"],
                          ENTRY_DEFAULTS, "entries", _entries_1d)  # fmt: skip
SqueezeExit = _indicator("SqueezeExit", "squeeze_exit", ["open", "high", "low", "close", "liq"], EXIT_DEFAULTS,
                         "exits", _exits_1d)  # fmt: skip


def oriented(frame: pd.DataFrame | dict[str, Any], side: str) -> dict[str, np.ndarray]:
    """The inputs of the rules for ``side`` = "long" (short squeeze) or "short" (long squeeze: prices and
    funding negated, highs and lows swapped, long liquidations)."""
    g = {k: np.asarray(frame[k], dtype=float) for k in ("open", "high", "low", "close", "funding_rate")}
    if side == "long":
        return {**g, "funding": g["funding_rate"], "liq": np.asarray(frame["short_liq"], dtype=float)}
    if side == "short":
        return {
            "open": -g["open"],
            "high": -g["low"],
            "low": -g["high"],
            "close": -g["close"],
            "funding": -g["funding_rate"],
            "liq": np.asarray(frame["long_liq"], dtype=float),
        }
    raise ValueError("side: long or short")


def entry_signals(frame, side: str = "long", param_product: bool = True, **params) -> pd.DataFrame:
    """Entry booleans, bars × parameter combinations (columns named by the parameters)."""
    x = oriented(frame, side)
    ind = SqueezeEntry.run(x["high"], x["low"], x["close"], x["liq"], x["funding"], param_product=param_product,
                           **{k: v for k, v in params.items() if k in ENTRY_DEFAULTS})  # fmt: skip
    return ind.entries


def exit_signals(frame, side: str = "long", param_product: bool = True, **params) -> pd.DataFrame:
    """Exit booleans, bars × parameter combinations."""
    x = oriented(frame, side)
    ind = SqueezeExit.run(x["open"], x["high"], x["low"], x["close"], x["liq"], param_product=param_product,
                          **{k: v for k, v in params.items() if k in EXIT_DEFAULTS})  # fmt: skip
    return ind.exits
