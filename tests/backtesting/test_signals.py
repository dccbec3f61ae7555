"""Squeeze rules: what each condition means on toy series, grids, the long/short mirror, and no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest import signals
from backtest.synthetic import synthetic_market

OFF = {"surge_mult": 0.0, "funding_threshold": np.nan}


def frame(close, **cols):
    close = np.asarray(close, dtype=float)
    n = close.size
    o = np.concatenate([[close[0]], close[:-1]])
    f = pd.DataFrame({"open": o, "high": np.maximum(o, close), "low": np.minimum(o, close), "close": close})
    f["funding_rate"] = cols.get("funding_rate", np.full(n, np.nan))
    f["short_liq"] = cols.get("short_liq", np.zeros(n))
    f["long_liq"] = cols.get("long_liq", np.zeros(n))
    return f


def entries(f, side="long", **p):
    return np.asarray(signals.entry_signals(f, side, **{**signals.ENTRY_DEFAULTS, **p}), dtype=bool).reshape(
        len(f), -1
    )[:, 0]


def test_breakout_must_hold_for_hold_bars():
    close = [100.0] * 20 + [105, 106, 107, 99, 99]
    f = frame(close)
    e = entries(f, breakout_window=10, hold_bars=2, **OFF)
    assert np.flatnonzero(e).tolist() == [21, 22]  # bar 20 breaks out; bar 21 is the 2nd close above
    e3 = entries(f, breakout_window=10, hold_bars=3, **OFF)
    assert np.flatnonzero(e3).tolist() == [22]


def test_short_liquidation_surge_is_required_when_on():
    close = [100.0] * 20 + [105, 106, 107]
    liq = np.ones(23)
    f = frame(close, short_liq=liq)
    kw = {"breakout_window": 10, "hold_bars": 2, "surge_mult": 3.0, "surge_window": 10, "funding_threshold": np.nan}
    assert not entries(f, **kw).any()
    liq[21] = 10.0
    f = frame(close, short_liq=liq)
    e = entries(f, **kw)
    assert np.flatnonzero(e).tolist() == [21, 22]


def test_funding_must_recover_from_deep_negative():
    close = [100.0] * 20 + [105, 106, 107, 108]
    fr = np.full(24, np.nan)
    fr[[0, 8, 16]] = [-0.0001, -0.002, -0.002]
    f = frame(close, funding_rate=fr)
    kw = {"breakout_window": 10, "hold_bars": 2, "surge_mult": 0.0, "funding_threshold": -0.001,
          "funding_lookback": 24, "funding_recovery": 0.3}  # fmt: skip
    assert not entries(f, **kw).any()  # still at its low
    fr[21] = -0.0005  # recovered 75 % of the way to zero
    e = entries(frame(close, funding_rate=fr), **kw)
    assert np.flatnonzero(e).tolist() == [23]  # the lookback needs 24 bars of history: bar 23 is the first


def test_long_squeeze_is_the_mirror_image():
    """A market turned upside down (prices negated, highs and lows swapped, funding negated, long and short
    liquidations swapped) gives the short rule exactly the long rule's signals."""
    f = synthetic_market(bars=3000, seed=11)
    mirror = f.copy()
    for k in ("open", "close"):
        mirror[k] = -f[k]
    mirror["high"], mirror["low"] = -f["low"], -f["high"]
    mirror["funding_rate"] = -f["funding_rate"]
    mirror["short_liq"], mirror["long_liq"] = f["long_liq"], f["short_liq"]
    p = {"funding_threshold": -0.0004}
    assert entries(f, "long", **p).sum() > 0
    np.testing.assert_array_equal(entries(f, "long", **p), entries(mirror, "short", **p))
    np.testing.assert_array_equal(
        np.asarray(signals.exit_signals(f, "long")), np.asarray(signals.exit_signals(mirror, "short"))
    )
    # and the short rule fires on breakdowns: a falling market with long liquidations surging
    down = frame([100.0] * 20 + [95, 94, 93], long_liq=np.r_[np.ones(21), 10.0, 1.0])
    assert np.flatnonzero(
        entries(
            down, "short", breakout_window=10, hold_bars=2, surge_mult=3.0, surge_window=10, funding_threshold=np.nan
        )
    ).tolist() == [21, 22]


def test_parameters_broadcast_into_a_grid():
    f = synthetic_market(bars=2000, seed=2)
    e = signals.entry_signals(f, "long", breakout_window=[24, 48], surge_mult=[0.0, 2.0, 3.0])
    assert e.shape == (2000, 6)
    assert list(e.columns.names) == ["squeeze_entry_breakout_window", "squeeze_entry_surge_mult"]
    x = signals.exit_signals(f, "short", rsi_level=[70.0, 80.0], exit_fraction=[0.1, 0.2])
    assert x.shape == (2000, 4)


def test_exit_conditions():
    n = 40
    close = np.concatenate([np.linspace(100, 140, 30), [139, 138] + [138] * 8])
    f = frame(close)
    x = np.asarray(signals.exit_signals(f, "long", exit_fraction=0.0, wick_ratio=1.0, rsi_level=70.0, rsi_window=5))
    first = int(np.flatnonzero(x.ravel())[0])
    assert first == 30  # RSI was above 70 and turns down on the first lower close
    liq = np.zeros(n)
    liq[10] = 100.0
    liq[11] = 50.0
    liq[12] = 5.0
    f = frame(close, short_liq=liq)
    x = np.asarray(signals.exit_signals(f, "long", exit_fraction=0.1, peak_window=5, wick_ratio=1.0, rsi_level=100.0))
    assert np.flatnonzero(x.ravel()).tolist() == [12, 13, 14, 15, 16]  # below 10 % of the peak in the window


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), cut=st.integers(300, 1400), side=st.sampled_from(["long", "short"]))
def test_no_look_ahead(seed, cut, side):
    """Changing every bar after t never changes a signal up to t."""
    f = synthetic_market(bars=1500, seed=seed)
    g = f.copy()
    rng = np.random.default_rng(seed + 1)
    for k in ("open", "high", "low", "close", "short_liq", "long_liq"):
        g.loc[g.index[cut + 1 :], k] = g[k].to_numpy()[cut + 1 :] * rng.uniform(0.5, 1.5, len(f) - cut - 1)
    g["high"] = g[["open", "high", "low", "close"]].max(axis=1)
    g["low"] = g[["open", "high", "low", "close"]].min(axis=1)
    g.loc[g.index[cut + 1 :], "funding_rate"] = -0.003
    p = {"funding_threshold": -0.0002, "surge_mult": 1.5, "breakout_window": 24}
    for fn in (signals.entry_signals, signals.exit_signals):
        a = np.asarray(fn(f, side, **p)).reshape(len(f), -1)
        b = np.asarray(fn(g, side, **p)).reshape(len(f), -1)
        np.testing.assert_array_equal(a[: cut + 1], b[: cut + 1])


def test_rules_fire_on_the_synthetic_market():
    f = synthetic_market(bars=8760, seed=7)
    assert entries(f, "long").sum() > 0 and entries(f, "short").sum() > 0


def test_unknown_side():
    with pytest.raises(ValueError, match="side"):
        signals.oriented(frame([1.0] * 5), "up")
