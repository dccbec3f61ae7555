"""Strategy configs, one run, sweeps (a sweep row equals the single run), and real-data cases: the
10 Oct 2025 crash and the SOL negative-funding days after it (skipped without ../shared/data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats

import core
from backtest import data, engine, run
from backtest.metrics import METRICS
from backtest.synthetic import synthetic_market


@pytest.fixture(scope="module")
def market():
    return synthetic_market(bars=6000, seed=5)


def test_synthetic_market_is_seeded_and_has_cascade_squeezes():
    a, b = synthetic_market(bars=3000, seed=1), synthetic_market(bars=3000, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(synthetic_market(bars=3000, seed=2))
    events = synthetic_market(bars=8760, seed=7).attrs["events"]
    assert {e["side"] for e in events} == {"long", "short"}
    assert any(e["liquidated_notional"] > 0 for e in events)
    assert (a["high"] >= a[["open", "close"]].max(axis=1)).all() and (a["low"] > 0).all()
    assert a["funding_rate"].notna().sum() == 3000 // 8


@pytest.mark.parametrize(
    "config,field",
    [
        ({"leverage": 0.5}, "leverage"),
        ({"leverage": float("nan")}, "leverage"),
        ({"side": "up"}, "side"),
        ({"breakout_window": 2.5}, "breakout_window"),
        ({"size_value": 2.0}, "size_value"),
        ({"size_mode": "risk", "stop_pct": None}, "stop_pct"),
        ({"nope": 1}, "nope"),
        ({"rsi_level": "70"}, "rsi_level"),
    ],
)
def test_strategy_rejects_bad_values_naming_the_field(config, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        run.strategy(config)


def test_run_backtest_result(market):
    res = run.run_backtest(market, {"leverage": 5.0})
    m = res["metrics"]
    assert set(m) == set(METRICS)
    assert m["trades"] == len(res["trades"]) > 0
    assert res["equity"].shape == (len(market),) and (res["equity"] >= 0).all()
    assert m["total_return"] == pytest.approx(res["equity"][-1] / 10_000 - 1)
    for t in res["trades"]:
        assert t["exit_reason"] in engine.REASONS
        lp = core.liquidation_price(side=t["side"], entry_price=t["entry_price"], quantity=t["quantity"],
                                    leverage=5.0, symbol="BTCUSDT")["liquidation_price"]  # fmt: skip
        assert t["liquidation_price"] == lp
    short = run.run_backtest(market, {"side": "short"})
    assert all(t["side"] == "short" for t in short["trades"])


def test_sweep_rows_equal_single_runs(market):
    grid = {"breakout_window": [24, 48], "leverage": [2.0, 10.0], "stop_pct": [0.02, None]}
    table = run.sweep(market, grid, split=None, chunk=3)
    assert len(table) == 8
    for _, row in table.iterrows():
        cfg = {k: (None if isinstance(row[k], float) and np.isnan(row[k]) else row[k]) for k in grid}
        single = run.run_backtest(market, cfg)["metrics"]
        for k in ("total_return", "trades", "fees_paid", "funding_paid", "liquidations"):
            assert row[k] == pytest.approx(single[k]), (cfg, k)


def test_sweep_in_and_out_of_sample(market):
    done = []
    table = run.sweep(market, {"surge_mult": [0.0, 2.0, 3.0], "leverage": [2.0, 5.0]}, split=0.6, progress=done.append)
    assert done[-1] == 6
    assert {f"is_{m}" for m in METRICS} <= set(table) and {f"oos_{m}" for m in METRICS} <= set(table)
    report = run.overfitting(table)
    ok = table["is_sharpe"].notna() & table["oos_sharpe"].notna()
    rho = scipy.stats.spearmanr(table.loc[ok, "is_sharpe"], table.loc[ok, "oos_sharpe"]).statistic
    assert ok.sum() > 2 and report["rank_correlation"] == pytest.approx(rho, rel=1e-12)
    best = int(np.nanargmax(table["is_sharpe"].to_numpy()))
    assert report["best_in_sample"] == table["is_sharpe"].iloc[best]
    assert report["its_out_of_sample"] == table["oos_sharpe"].iloc[best]
    with pytest.raises(ValueError, match="split"):
        run.sweep(market, {"leverage": [2.0]}, split=0.99)
    with pytest.raises(ValueError, match="grid"):
        run.sweep(market, {})


def _sol(shared_data):
    folder = shared_data / "binance_um_perp_btc_eth_sol_2025"
    frame, _, warnings = data.load_dataset(str(folder), "SOL", "1h")
    assert not any("mark-price" in w for w in warnings)
    return frame


def _force(frame, entry_time, exit_time=None):
    n = len(frame)
    en = np.zeros(n, dtype=bool)
    ex = np.zeros(n, dtype=bool)
    en[frame.index.get_loc(pd.Timestamp(entry_time, tz="UTC")) - 1] = True  # fills at this bar's open
    if exit_time:
        ex[frame.index.get_loc(pd.Timestamp(exit_time, tz="UTC")) - 1] = True
    return en, ex


def test_10_oct_2025_crash_liquidates_a_10x_sol_long_at_core_price(shared_data):
    frame = _sol(shared_data)
    en, ex = _force(frame, "2025-10-10 12:00", "2025-10-11 00:00")
    bars = run.bar_arrays(frame)
    res = engine.simulate(bars, en, ex, side=1, leverage=[10.0, 2.0], symbol="SOLUSDT", stop_pct=np.nan,
                     take_profit_pct=np.nan, time_stop=0, size_value=0.5, fee_rate=0.0005, slippage=0.0)  # fmt: skip
    liq = [t for t in res.trades if t[engine.T_COL] == 0][0]
    assert engine.REASONS[int(liq[engine.T_REASON])] == "liquidation"
    at_entry = core.liquidation_price(side="long", entry_price=liq[engine.T_ENTRY], quantity=liq[engine.T_QTY],
                                      leverage=10, symbol="SOLUSDT")["liquidation_price"]  # fmt: skip
    assert liq[engine.T_LP_ENTRY] == at_entry
    # the 16:00 funding was taken from the isolated margin: core re-priced the liquidation with that margin
    assert liq[engine.T_FUNDING] != 0
    lp = core.liquidation_price(
        side="long",
        entry_price=liq[engine.T_ENTRY],
        quantity=liq[engine.T_QTY],
        leverage=10,
        margin=liq[engine.T_MARGIN] - liq[engine.T_FUNDING],
        symbol="SOLUSDT",
    )["liquidation_price"]
    assert liq[engine.T_EXIT] == liq[engine.T_LP] == lp != at_entry
    hit = frame.index[int(liq[engine.T_EXIT_BAR])]
    assert pd.Timestamp("2025-10-10 13:00", tz="UTC") <= hit <= pd.Timestamp("2025-10-10 21:00", tz="UTC")
    lows = frame["mark_low"].to_numpy()
    assert (
        lows[int(liq[engine.T_EXIT_BAR])] <= lp < lows[int(liq[engine.T_ENTRY_BAR]) : int(liq[engine.T_EXIT_BAR])].min()
    )
    # funding paid came out of the margin that was then lost: the loss is the initial margin and the fee
    assert liq[engine.T_PNL] == pytest.approx(-liq[engine.T_MARGIN] - liq[engine.T_QTY] * liq[engine.T_ENTRY] * 0.0005)
    survivor = [t for t in res.trades if t[engine.T_COL] == 1][0]  # 2x: the 37 % crash does not reach −50 %
    assert engine.REASONS[int(survivor[engine.T_REASON])] == "signal"


def test_sol_negative_funding_days_make_a_short_pay(shared_data):
    frame = _sol(shared_data)
    en, ex = _force(frame, "2025-10-10 23:00", "2025-10-13 01:00")
    res = engine.simulate(run.bar_arrays(frame), en, ex, side=-1, leverage=2.0, symbol="SOLUSDT", fee_rate=0.0,
                     slippage=0.0, stop_pct=np.nan, take_profit_pct=np.nan, time_stop=0, size_value=0.5)  # fmt: skip
    (t,) = res.trades[:1]
    held = frame.loc["2025-10-11 00:00":"2025-10-13 00:00"]
    rates = held["funding_rate"].dropna()
    assert len(rates) == 7 and (rates < 0).all() and rates.min() < -0.002
    expected = float((-1 * t[engine.T_QTY] * held["mark_open"][rates.index] * rates).sum())
    assert t[engine.T_FUNDING] == pytest.approx(expected) and expected > 0  # shorts pay when the rate is negative
