"""The exchange's order of events within a bar, funding as the exchange settles it, every input meaning
something (sweep axes, refused entries, contract type), and rules of one's own (times, booleans, expressions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import core
from backtest import data, engine, expressions, run
from backtest.synthetic import synthetic_market

#: the simulator's defaults are the strategy's (backtest.params.SIM_DEFAULTS); these tests start from a bare
#: position instead: no stop, no take profit, no time stop, half the equity as margin
BARE = {"stop_pct": np.nan, "take_profit_pct": np.nan, "time_stop": 0, "size_value": 0.5}


def simulate(*args, **kwargs):
    return engine.simulate(*args, **{**BARE, **kwargs})


NO_COSTS = {"fee_rate": 0.0, "slippage": 0.0, "liquidation_fee_rate": 0.0}


def market(n=12, price=100.0, **over):
    o = np.full(n, price)
    f = {"open": o, "high": o + 1, "low": o - 1, "close": o.copy(), "funding_rate": np.full(n, np.nan)}
    f.update(over)
    for k in ("open", "high", "low"):
        f.setdefault("mark_" + k, np.asarray(f[k], dtype=float).copy())
    return {k: np.asarray(v, dtype=float) for k, v in f.items()}


def signal(n, *bars):
    a = np.zeros(n, dtype=bool)
    a[list(bars)] = True
    return a


def reason(r, k=0):
    return engine.REASONS[int(r.trades[k, engine.T_REASON])]


# 1. the order of events within a bar ----------------------------------------------------------------------------


def test_a_mark_open_beyond_the_liquidation_price_liquidates_at_once():
    n = 8
    m = market(n)
    m["mark_open"][4] = 85.0  # gap on mark; last opens at 100, the 5 % stop is never touched on last
    r = simulate(m, signal(n, 1), signal(n), side=1, leverage=10, stop_pct=0.05, size_value=0.5, **NO_COSTS)
    assert reason(r) == "liquidation" and r.trades[0, engine.T_EXIT_BAR] == 4


def test_a_last_open_beyond_the_stop_fills_at_the_open():
    n = 8
    o = np.full(n, 100.0)
    o[4] = 93.0
    m = market(n, open=o, low=o - 1, high=o + 1)
    m["mark_open"][4] = m["mark_low"][4] = 99.0  # mark stays far from the liquidation price
    r = simulate(m, signal(n, 1), signal(n), side=1, leverage=10, stop_pct=0.05, size_value=0.5, **NO_COSTS)
    assert reason(r) == "stop" and r.trades[0, engine.T_EXIT] == pytest.approx(93.0)


def test_triggers_are_configurable():
    n = 8
    m = market(n)
    m["low"][4] = 80.0  # a last-price wick only
    kw = {"side": 1, "leverage": 10, "size_value": 0.5, **NO_COSTS}
    assert simulate(m, signal(n, 1), signal(n), **kw).state[0, engine.S_LIQS] == 0
    r = simulate(m, signal(n, 1), signal(n), liquidation_trigger="last", **kw)
    assert reason(r) == "liquidation"
    m2 = market(n)
    m2["mark_low"][4] = 94.0  # a mark-price wick only: the stop triggers on mark when asked
    assert simulate(m2, signal(n, 1), signal(n), stop_pct=0.05, **kw).trades[0, engine.T_EXIT_BAR] == n - 1
    r = simulate(m2, signal(n, 1), signal(n), stop_pct=0.05, stop_trigger="mark", **kw)
    assert reason(r) == "stop" and r.trades[0, engine.T_EXIT] == pytest.approx(95.0)
    with pytest.raises(ValueError, match="stop_trigger"):
        simulate(m, signal(n, 1), signal(n), stop_trigger="index", **kw)


def test_range_slippage_and_the_end_of_data_close_pays_slippage():
    n = 10
    high = np.full(n, 104.0)
    low = np.full(n, 98.0)
    m = market(n, high=high, low=low)
    r = simulate(m, signal(n, 1), signal(n), side=1, leverage=2, size_value=0.5, fee_rate=0.0, slippage=0.1,
                   slippage_model="range", liquidation_fee_rate=0.0)  # fmt: skip
    (t,) = r.trades
    assert t[engine.T_ENTRY] == pytest.approx(100.0 * (1 + 0.1 * 6.0 / 100.0))
    assert reason(r) == "end" and t[engine.T_EXIT] == pytest.approx(100.0 * (1 - 0.1 * 6.0 / 100.0))
    r = simulate(m, signal(n, 1), signal(n), side=-1, leverage=2, size_value=0.5, fee_rate=0.0, slippage=0.001,
                   liquidation_fee_rate=0.0)  # fmt: skip
    assert r.trades[0, engine.T_EXIT] == pytest.approx(100.0 * 1.001)  # a short buys back above the close
    with pytest.raises(ValueError, match="slippage_model"):
        simulate(m, signal(n, 1), signal(n), slippage_model="sqrt")


# 2. funding as the exchange settles it ---------------------------------------------------------------------------


def test_funding_is_taken_from_the_margin_and_the_liquidation_price_repriced_by_core():
    n = 12
    f = np.full(n, np.nan)
    f[4] = f[8] = 0.004
    m = market(n, funding_rate=f)
    r = simulate(m, signal(n, 1), signal(n), side=1, leverage=10, size_value=0.5, **NO_COSTS)
    (t,) = r.trades
    qty, entry = t[engine.T_QTY], t[engine.T_ENTRY]
    paid = 2 * qty * 100.0 * 0.004
    assert t[engine.T_FUNDING] == pytest.approx(paid)
    lp = core.liquidation_price(side=1, entry_price=entry, quantity=qty, leverage=10, margin=t[engine.T_MARGIN] - paid,
                                symbol="BTCUSDT")["liquidation_price"]  # fmt: skip
    assert t[engine.T_LP] == pytest.approx(lp, rel=1e-12) and t[engine.T_LP] > t[engine.T_LP_ENTRY]
    # a wick between the entry's liquidation price and the one after funding: liquidated (re-priced in time)
    m2 = market(n, funding_rate=f)
    m2["mark_low"][10] = (t[engine.T_LP_ENTRY] + t[engine.T_LP]) / 2
    r2 = simulate(m2, signal(n, 1), signal(n), side=1, leverage=10, size_value=0.5, **NO_COSTS)
    assert reason(r2) == "liquidation" and r2.trades[0, engine.T_EXIT_BAR] == 10 and r2.state[0, engine.S_REPRICES] >= 1
    assert r2.trades[0, engine.T_EXIT] == pytest.approx(lp, rel=1e-12)
    # a short receives: its margin grows and its liquidation price moves away
    r = simulate(m, signal(n, 1), signal(n), side=-1, leverage=10, size_value=0.5, **NO_COSTS)
    assert r.trades[0, engine.T_LP] > r.trades[0, engine.T_LP_ENTRY]


def test_a_fill_at_the_open_of_a_funding_bar_same_rule_on_entry_and_exit():
    n = 10
    f = np.full(n, np.nan)
    f[2] = f[6] = 0.001
    m = market(n, funding_rate=f)
    # enters at bar 2's open (funding bar: not charged), exits at bar 6's open (funding bar: charged)
    r = simulate(m, signal(n, 1), signal(n, 5), side=1, leverage=2, size_value=0.5, **NO_COSTS)
    (t,) = r.trades
    assert (t[engine.T_ENTRY_BAR], t[engine.T_EXIT_BAR]) == (2, 6)
    assert t[engine.T_FUNDING] == pytest.approx(t[engine.T_QTY] * 100.0 * 0.001)


def test_coarse_bars_sum_every_funding_event_at_its_own_time_and_mark():
    days = pd.date_range("2025-01-01", periods=4, freq="1D", tz="UTC")
    ohlcv = pd.DataFrame({"open": [100.0, 100, 110, 110], "high": 120.0, "low": 90.0, "close": [100.0, 110, 110, 110],
                          "volume": 1.0}, index=days)  # fmt: skip
    times = pd.date_range("2025-01-01", periods=12, freq="8h", tz="UTC") + pd.Timedelta(milliseconds=8)
    rates = np.linspace(-0.001, 0.001, 12)
    frame, _ = data.market_frame(ohlcv, funding=pd.DataFrame({"funding_rate": rates}, index=times), timeframe="1d")
    np.testing.assert_allclose(frame["funding_rate"], rates.reshape(4, 3).sum(axis=1))
    # day 2 (open 100, close 110): 00:00 at the open; 08:00 and 16:00 inside at the interpolated mark
    r = rates[3:6]
    assert frame["funding_open"].iloc[1] == pytest.approx(r[0] * 100.0)
    assert frame["funding_inside"].iloc[1] == pytest.approx(r[1] * (100 + 10 / 3) + r[2] * (100 + 20 / 3))
    bars = run.bar_arrays(frame)
    res = simulate(bars, signal(4, 0), signal(4), side=1, leverage=2, size_value=0.5, **NO_COSTS)
    qty = res.trades[0, engine.T_QTY]
    # entered at day 2's open (after its 00:00 event), held through the others
    want = qty * (bars["funding_inside"][1] + bars["funding_open"][2] + bars["funding_inside"][2]
                  + bars["funding_open"][3] + bars["funding_inside"][3])  # fmt: skip
    assert res.trades[0, engine.T_FUNDING] == pytest.approx(want)


def test_sol_daily_funding_keeps_every_event(shared_data):
    folder = str(shared_data / "binance_um_perp_btc_eth_sol_2025")
    daily, _, _ = data.load_dataset(folder, "SOL", "1d")
    hourly, _, _ = data.load_dataset(folder, "SOL", "1h")
    span = hourly.loc[daily.index[0] : daily.index[-1] + pd.Timedelta(hours=23)]
    assert daily["funding_rate"].sum() == pytest.approx(span["funding_rate"].sum(), abs=1e-12)
    assert span["funding_rate"].notna().sum() > 3 * daily["funding_rate"].notna().sum() - 5


# 3. every input means something ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synth():
    return synthetic_market(bars=3000, seed=3)


def test_sweep_takes_any_strategy_field_as_an_axis(synth):
    base = {"surge_mult": 0.0, "funding_threshold": None, "breakout_window": 24}
    grid = {"fee_rate": [0.0, 0.002], "init_cash": [10_000.0, 50_000.0], "slippage_model": ["fixed", "range"],
            "leverage": [2.0, 3.0]}  # fmt: skip
    table = run.sweep(synth, grid, base, split=None, chunk=3)
    assert len(table) == 16
    for _, row in table.iterrows():
        cfg = {**base, **{k: row[k] for k in grid}}
        one = run.run_backtest(synth, cfg)["metrics"]
        assert row["total_return"] == pytest.approx(one["total_return"], rel=1e-12, abs=1e-15)
        assert row["fees_paid"] == pytest.approx(one["fees_paid"], rel=1e-12, abs=1e-12)
    assert table.groupby("fee_rate")["fees_paid"].mean().diff().iloc[-1] > 0
    with pytest.raises(ValueError, match="^entry_rule: not a grid axis"):
        run.sweep(synth, {"entry_rule": ["close > 1"]}, base)
    with pytest.raises(ValueError, match="^breakout_window: a squeeze-rule field has no effect"):
        run.sweep(synth, {"breakout_window": [12, 24]}, {**base, "entry_rule": "close > 1", "exit_rule": "close < 1"})


def test_refused_entries_are_counted_and_reported(synth):
    res = run.run_backtest(synth, {"leverage": 125.0, "symbol": "SOLUSDT", "entry_rule": "close > shift(close, 1)",
                                 "time_stop": 2, "size_value": 1.0})  # fmt: skip
    assert res["metrics"]["rejected_entries"] > 0 and res["metrics"]["trades"] == 0
    assert any("refused" in w for w in res["warnings"])
    table = run.sweep(synth, {"leverage": [2.0, 125.0]}, {"symbol": "SOLUSDT", "entry_rule": "close > shift(close, 1)",
                                                        "size_value": 1.0}, split=None)  # fmt: skip
    assert table["rejected_entries"].tolist()[0] == 0 < table["rejected_entries"].tolist()[1]
    assert "refused" in run.sweep_warnings(table)[0]


def test_an_inverse_symbol_is_refused_by_name():
    with pytest.raises(ValueError, match="^symbol: BTCUSD_PERP on binance is an inverse"):
        run.strategy({"symbol": "BTCUSD_PERP"})


# 4. a rule of one's own ------------------------------------------------------------------------------------------


def test_expressions_compute_causally_and_refuse_anything_else():
    n = 50
    rng = np.random.default_rng(1)
    cols = {"close": 100 + rng.standard_normal(n).cumsum(), "high": None, "funding_rate": rng.normal(0, 1e-3, n)}
    cols["high"] = cols["close"] + 1
    got = expressions.evaluate("close > rolling_max(high, 5) and not funding_rate >= -0.0005", cols)
    want = np.zeros(n, dtype=bool)
    for t in range(5, n):
        want[t] = cols["close"][t] > cols["high"][t - 5 : t].max() and cols["funding_rate"][t] < -0.0005
    np.testing.assert_array_equal(got, want)
    breakout = expressions.evaluate("close > rolling_max(high, 5)", cols)
    later = {k: v.copy() for k, v in cols.items()}
    later["close"][30:] += 50
    later["high"][30:] += 50
    np.testing.assert_array_equal(expressions.evaluate("close > rolling_max(high, 5)", later)[:30], breakout[:30])
    assert expressions.evaluate("0 < abs(close - shift(close, 1)) / close < 1", cols)[1:].all()
    for bad, msg in [("__import__('os').system('true')", "not allowed"), ("exec(close) > 1", "function 'exec'"),
                     ("close.real > 1", "Attribute"),
                     ("(lambda: 1)()", "not allowed"), ("vol > 1", "unknown column 'vol'"),
                     ("rolling_max(high, 2.5) > 1", "whole number"), ("close + 1", "must be a condition"),
                     ("close >", "not an expression"), ("[c for c in close]", "not allowed"),
                     ("-" * 1000 + "close > 0", "at most 400 terms|too deeply nested"),
                     ("not " * 300 + "close > 0", "at most 400 terms|too deeply nested")]:  # fmt: skip
        with pytest.raises(ValueError, match=msg):
            expressions.evaluate(bad, cols, "entry_rule")


def test_forced_entries_at_given_times_with_a_holding_period(synth):
    t0, t1 = synth.index[100], synth.index[500]
    res = run.run_backtest(synth, {"entry_times": [t0.isoformat(), t1.isoformat()], "time_stop": 24,
                                 "stop_pct": None, "take_profit_pct": None})  # fmt: skip
    trades = res["trades"]
    assert [t["entry_bar"] for t in trades] == [100, 500]
    assert [t["exit_bar"] for t in trades] == [124, 524] and {t["exit_reason"] for t in trades} == {"time"}
    own = np.zeros(len(synth), dtype=bool)
    own[[99, 499]] = True  # booleans decided on a close: the same trades
    again = run.run_backtest(synth, {"time_stop": 24, "stop_pct": None, "take_profit_pct": None}, entries=own)
    assert [t["entry_bar"] for t in again["trades"]] == [100, 500]
    with pytest.raises(ValueError, match="^entry_times: "):
        run.run_backtest(synth, {"entry_times": ["1999-01-01"]})


def test_strategy_fields_are_checked_by_the_api_before_they_are_queued(client):
    """An inverse symbol, an unknown trigger or too much slippage is refused by name when the job is submitted (the
    run itself, and a rule naming a column the data does not have, are in tests/jobs/test_jobs.py)."""
    for strategy, field in [({"symbol": "BTCUSD_PERP"}, "strategy.symbol"),
                            ({"stop_trigger": "index"}, "strategy.stop_trigger"),
                            ({"slippage": 0.5}, "strategy.slippage")]:  # fmt: skip
        r = client.post("/v1/backtests", json={"dataset": {"name": "synthetic", "bars": 500}, "strategy": strategy})
        assert r.status_code == 422, (strategy, r.get_json())
        assert field in r.get_json()["errors"], r.get_json()


# 5. mark price at any timeframe ----------------------------------------------------------------------------------


def test_5m_bars_without_5m_mark_are_bounded_by_the_hourly_mark_range(shared_data):
    folder = str(shared_data / "binance_um_perp_btc_eth_sol_2025")
    frame, _, warnings = data.load_dataset(folder, "SOL", "5m")
    assert any("no 5m mark-price klines" in w and "1h mark-price range" in w for w in warnings)
    day = frame.loc["2025-10-10"]
    assert day["low"].min() == pytest.approx(141.28)  # the last-price wick
    hourly, _, _ = data.load_dataset(folder, "SOL", "1h")
    assert day["mark_low"].min() == pytest.approx(hourly.loc["2025-10-10", "mark_low"].min())  # 143.83, not 141.28
    assert (frame["mark_low"] <= frame["mark_open"]).all() and (frame["mark_open"] <= frame["mark_high"]).all()
    hour = frame.index.floor("1h")
    starts = frame.index == hour
    np.testing.assert_allclose(frame.loc[starts, "mark_open"], hourly["mark_open"].reindex(frame.index[starts]))


def test_finer_mark_klines_are_aggregated_to_the_bars(tmp_path):
    t = pd.date_range("2025-01-01", periods=24, freq="5min", tz="UTC")
    px = 100 + np.arange(24.0)
    kl = pd.DataFrame({"date": t[::3].strftime("%Y-%m-%d %H:%M:%S+00:00"), "open": px[::3], "high": px[::3] + 5,
                       "low": px[::3] - 5, "close": px[::3] + 1, "volume": 1.0})  # fmt: skip
    kl.to_csv(tmp_path / "SOL_USDT_USDT-15m-futures.csv", index=False)
    mk = pd.DataFrame({"date": t.strftime("%Y-%m-%d %H:%M:%S+00:00"), "open": px, "high": px + 1, "low": px - 1,
                       "close": px + 0.5, "volume": 0.0})  # fmt: skip
    mk.to_csv(tmp_path / "SOL_USDT_USDT-5m-mark.csv", index=False)
    frame, _, warnings = data.load_dataset(str(tmp_path), "SOL", "15m")
    assert not any("mark" in w for w in warnings)
    np.testing.assert_allclose(frame["mark_open"], px[::3])
    np.testing.assert_allclose(frame["mark_high"], px[2::3] + 1)
    np.testing.assert_allclose(frame["mark_low"], px[::3] - 1)


def test_the_proxy_fade_exit_is_warned_when_it_cuts_every_trade(shared_data):
    frame, _, _ = data.load_dataset(str(shared_data / "binance_um_perp_btc_eth_sol_2025"), "SOL", "1h")
    cfg = {"symbol": "SOLUSDT", "surge_mult": 0.0, "funding_threshold": None}
    res = run.run_backtest(frame, cfg)
    assert np.median([t["exit_bar"] - t["entry_bar"] for t in res["trades"]]) <= 1
    assert any("fade exit" in w for w in res["warnings"])
    res = run.run_backtest(frame, {**cfg, "exit_fraction": 0.0})
    assert np.median([t["exit_bar"] - t["entry_bar"] for t in res["trades"]]) > 1
    assert not any("fade exit" in w for w in res["warnings"])
