"""The simulator on toy markets with known answers: liquidation exactly at core's price, funding sign and
amount, fees and slippage, stops and their precedence, sizing, and equity that never goes below zero."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import core
from backtest import engine


def market(n=12, price=100.0, **over):
    o = np.full(n, price)
    f = {"open": o, "high": o + 1, "low": o - 1, "close": o.copy(), "funding_rate": np.full(n, np.nan)}
    f.update(over)
    for k in ("open", "high", "low"):
        f.setdefault("mark_" + k, f[k])
    f["mark_open"], f["mark_high"], f["mark_low"] = f.get("mark_open", f["open"]), f["mark_high"], f["mark_low"]
    return {k: np.asarray(v, dtype=float) for k, v in f.items()}


def signal(n, *bars):
    a = np.zeros(n, dtype=bool)
    a[list(bars)] = True
    return a


#: the simulator's defaults are the strategy's (backtest.params.SIM_DEFAULTS); these tests start from a bare
#: position instead: no stop, no take profit, no time stop, half the equity as margin
BARE = {"stop_pct": np.nan, "take_profit_pct": np.nan, "time_stop": 0, "size_value": 0.5}


def simulate(*args, **kwargs):
    return engine.simulate(*args, **{**BARE, **kwargs})


NO_COSTS = {"fee_rate": 0.0, "slippage": 0.0, "liquidation_fee_rate": 0.0}


@pytest.mark.parametrize("side", [1, -1])
def test_10x_position_is_liquidated_exactly_at_core_price(side):
    n = 12
    low = np.full(n, 99.0)
    high = np.full(n, 101.0)
    if side > 0:
        low[6] = 80.0
    else:
        high[6] = 120.0
    m = market(n, high=high, low=low)
    r = simulate(m, signal(n, 1), signal(n), side=side, leverage=10, size_value=0.5, **NO_COSTS)
    (t,) = r.trades
    qty = t[engine.T_QTY]
    lp = core.liquidation_price(side=side, entry_price=100.0, quantity=qty, leverage=10, symbol="BTCUSDT")
    assert t[engine.T_LP] == lp["liquidation_price"]
    assert t[engine.T_EXIT] == lp["liquidation_price"]
    assert engine.REASONS[int(t[engine.T_REASON])] == "liquidation"
    assert t[engine.T_ENTRY_BAR] == 2 and t[engine.T_EXIT_BAR] == 6
    assert t[engine.T_PNL] == pytest.approx(-5000.0)  # the isolated margin, nothing more
    assert r.equity[-1, 0] == pytest.approx(5000.0)
    assert r.state[0, engine.S_LIQS] == 1


def test_liquidation_on_the_entry_bar_and_on_mark_not_last():
    n = 8
    m = market(n)
    m["mark_low"] = m["low"].copy()
    m["mark_low"][2] = 85.0  # the entry bar's mark wick
    r = simulate(m, signal(n, 1), signal(n), side=1, leverage=10, size_value=0.5, **NO_COSTS)
    assert engine.REASONS[int(r.trades[0, engine.T_REASON])] == "liquidation"
    assert r.trades[0, engine.T_EXIT_BAR] == 2
    # last-price wick alone does not liquidate when mark stays up
    m2 = market(n)
    m2["low"] = m2["low"].copy()
    m2["low"][3] = 85.0
    r2 = simulate(m2, signal(n, 1), signal(n), side=1, leverage=10, size_value=0.5, **NO_COSTS)
    assert r2.state[0, engine.S_LIQS] == 0


def test_the_level_nearer_to_the_open_fills_first():
    n = 8
    low = np.full(n, 99.0)
    low[4] = 80.0
    m = market(n, low=low)
    # a 5 % stop lies between the open and the 10x liquidation price (~ -9.6 %): the path crosses it first
    r = simulate(m, signal(n, 1), signal(n), side=1, leverage=10, stop_pct=0.05, size_value=0.5, **NO_COSTS)
    assert engine.REASONS[int(r.trades[0, engine.T_REASON])] == "stop"
    assert r.trades[0, engine.T_EXIT] == pytest.approx(95.0)
    # a 15 % stop lies beyond it: liquidation first
    r = simulate(m, signal(n, 1), signal(n), side=1, leverage=10, stop_pct=0.15, size_value=0.5, **NO_COSTS)
    assert engine.REASONS[int(r.trades[0, engine.T_REASON])] == "liquidation"
    # the short mirror
    high = np.full(n, 101.0)
    high[4] = 120.0
    m = market(n, high=high)
    r = simulate(m, signal(n, 1), signal(n), side=-1, leverage=10, stop_pct=0.05, size_value=0.5, **NO_COSTS)
    assert engine.REASONS[int(r.trades[0, engine.T_REASON])] == "stop"
    assert r.trades[0, engine.T_EXIT] == pytest.approx(105.0)


@pytest.mark.parametrize("side,rate,pays", [(1, 0.001, True), (1, -0.001, False), (-1, 0.001, False),
                                            (-1, -0.001, True)])  # fmt: skip
def test_funding_sign_and_amount(side, rate, pays):
    n = 10
    f = np.full(n, np.nan)
    f[2] = rate  # the entry bar's own timestamp: not charged (position opens at that instant)
    f[4] = rate
    f[7] = rate
    m = market(n, funding_rate=f)
    m["mark_open"] = np.full(n, 101.0)
    r = simulate(m, signal(n, 1), signal(n, 8), side=side, leverage=2, size_value=0.5, **NO_COSTS)
    (t,) = r.trades
    expected = 2 * side * t[engine.T_QTY] * 101.0 * rate
    assert t[engine.T_FUNDING] == pytest.approx(expected)
    assert (t[engine.T_FUNDING] > 0) == pays
    assert r.state[0, engine.S_FUNDING] == pytest.approx(expected)
    assert r.equity[-1, 0] == pytest.approx(10_000 - expected)


def test_fees_and_slippage():
    n = 10
    m = market(n)
    fee, slip = 0.0005, 0.001
    r = simulate(m, signal(n, 1), signal(n, 5), side=1, leverage=3, size_value=0.5, fee_rate=fee, slippage=slip,
                   liquidation_fee_rate=0.0)  # fmt: skip
    (t,) = r.trades
    entry, exit_ = 100 * (1 + slip), 100 * (1 - slip)
    qty = t[engine.T_QTY]
    assert t[engine.T_ENTRY] == pytest.approx(entry)
    assert t[engine.T_EXIT] == pytest.approx(exit_)
    assert qty == pytest.approx(0.5 * 10_000 * 3 / entry)
    fees = qty * (entry + exit_) * fee
    assert t[engine.T_FEES] == pytest.approx(fees)
    assert t[engine.T_PNL] == pytest.approx(qty * (exit_ - entry) - fees)
    assert r.equity[-1, 0] == pytest.approx(10_000 + t[engine.T_PNL])


def test_stop_take_profit_gap_and_time_stop():
    n = 12
    low = np.full(n, 99.0)
    low[4] = 95.0
    m = market(n, low=low)
    r = simulate(m, signal(n, 1), signal(n), side=1, leverage=2, stop_pct=0.03, **NO_COSTS)
    assert engine.REASONS[int(r.trades[0, engine.T_REASON])] == "stop"
    assert r.trades[0, engine.T_EXIT] == pytest.approx(97.0)
    # gap through the stop: filled at the open
    o = np.full(n, 100.0)
    o[4] = 90.0
    m = market(n, open=o, low=np.minimum(o, 99.0), high=np.maximum(o, 101.0))
    r = simulate(m, signal(n, 1), signal(n), side=1, leverage=2, stop_pct=0.03, **NO_COSTS)
    assert r.trades[0, engine.T_EXIT] == pytest.approx(90.0)
    high = np.full(n, 101.0)
    high[5] = 110.0
    m = market(n, high=high)
    r = simulate(m, signal(n, 1), signal(n), side=1, leverage=2, take_profit_pct=0.05, **NO_COSTS)
    assert engine.REASONS[int(r.trades[0, engine.T_REASON])] == "take_profit"
    assert r.trades[0, engine.T_EXIT] == pytest.approx(105.0)
    r = simulate(market(n), signal(n, 1), signal(n), side=1, leverage=2, time_stop=3, **NO_COSTS)
    t = r.trades[0]
    assert engine.REASONS[int(t[engine.T_REASON])] == "time" and t[engine.T_EXIT_BAR] - t[engine.T_ENTRY_BAR] == 3
    r = simulate(market(n), signal(n, 1), signal(n), side=1, leverage=2, **NO_COSTS)
    assert engine.REASONS[int(r.trades[0, engine.T_REASON])] == "end"


def test_risk_sizing_loses_the_risk_fraction_at_the_stop():
    n = 10
    low = np.full(n, 99.0)
    low[4] = 90.0
    m = market(n, low=low)
    r = simulate(m, signal(n, 1), signal(n), side=1, leverage=5, stop_pct=0.02, size_mode="risk",
                   size_value=0.01, **NO_COSTS)  # fmt: skip
    assert r.trades[0, engine.T_PNL] == pytest.approx(-100.0)


def test_leverage_above_the_tier_maximum_rejects_the_entry():
    n = 10
    r = simulate(market(n), signal(n, 1), signal(n), side=1, leverage=100, size_value=1.0, init_cash=1e7,
                   **NO_COSTS)  # fmt: skip
    assert r.state[0, engine.S_TRADES] == 0 and r.state[0, engine.S_REJECTED] == 1
    assert r.equity[-1, 0] == 1e7


def test_many_trades_grow_the_record_buffer_and_columns_are_independent():
    n = 2000
    every = np.zeros(n, dtype=bool)
    every[::2] = True
    exits = ~every
    m = market(n)
    r = simulate(m, np.stack([every, every], 1), np.stack([exits, exits], 1), side=[1, -1], leverage=[2, 3],
                   **NO_COSTS)  # fmt: skip
    assert r.state[0, engine.S_TRADES] == r.state[1, engine.S_TRADES] == 1000  # the last one closes at the end
    assert len(r.trades) == 2000
    assert set(r.trades[:, engine.T_SIDE]) == {1.0, -1.0}


def test_columns_match_single_runs():
    rng = np.random.default_rng(3)
    n = 500
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.concatenate([[100.0], close[:-1]])
    m = market(n, open=o, close=close, high=np.maximum(o, close) * 1.01, low=np.minimum(o, close) * 0.99)
    m["funding_rate"] = np.where(np.arange(n) % 8 == 0, rng.normal(0, 0.001, n), np.nan)
    en = rng.random((n, 3)) < 0.05
    ex = rng.random((n, 3)) < 0.1
    lev = [2.0, 10.0, 25.0]
    together = simulate(m, en, ex, side=[1, -1, 1], leverage=lev, stop_pct=0.05)
    for c in range(3):
        alone = simulate(m, en[:, c], ex[:, c], side=[1, -1, 1][c], leverage=lev[c], stop_pct=0.05)
        np.testing.assert_allclose(together.equity[:, c], alone.equity[:, 0])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    lev=st.floats(1, 50),
    side=st.sampled_from([1, -1]),
    vol=st.floats(0.001, 0.2),
)
def test_equity_never_below_zero(seed, lev, side, vol):
    rng = np.random.default_rng(seed)
    n = 300
    close = 100 * np.exp(np.cumsum(rng.standard_t(3, n) * vol))
    o = np.concatenate([[100.0], close[:-1]])
    m = market(n, open=o, close=close, high=np.maximum(o, close) * (1 + vol), low=np.minimum(o, close) * (1 - vol))
    m["funding_rate"] = np.where(np.arange(n) % 8 == 0, rng.normal(0, 0.003, n), np.nan)
    r = simulate(m, rng.random(n) < 0.1, rng.random(n) < 0.1, side=side, leverage=lev, size_value=1.0,
                   symbol=None, maintenance_margin_rate=0.005)  # fmt: skip
    assert (r.equity >= 0).all()
    assert np.isfinite(r.equity).all()
    for t in r.trades:  # a loss never exceeds the margin plus that trade's own fees and funding
        assert t[engine.T_PNL] >= -t[engine.T_MARGIN] - t[engine.T_FEES] - max(t[engine.T_FUNDING], 0) - 1e-6


def test_bad_arguments_raise_naming_the_argument():
    m = market(10)
    s = signal(10, 1)
    with pytest.raises(ValueError, match="leverage"):
        simulate(m, s, s, leverage=0.5)
    with pytest.raises(ValueError, match="side"):
        simulate(m, s, s, side=2)
    with pytest.raises(ValueError, match="stop_pct"):
        simulate(m, s, s, size_mode="risk", size_value=0.01)
    with pytest.raises(ValueError, match="size_value"):
        simulate(m, s, s, size_value=2.0)
    with pytest.raises(ValueError, match="entries"):
        simulate(m, s[:5], s)
