"""An independent re-simulation: a plain Python loop written from the conventions in ``backtest.engine``'s
docstring (not calling the engine), run on real SOL 1 h bars of 2025 with stops inside the liquidation distance
and funding taken from the isolated margin; it must agree with the simulator trade by trade."""

from __future__ import annotations

import math

import numpy as np
import pytest

import core
from backtest import engine, run

FEE, SLIP, LIQ_FEE, CASH = 0.0005, 0.0002, 0.0125, 10_000.0


def _lp(side, entry, qty, lev, margin, symbol):
    r = core.liquidation_price(side=side, entry_price=entry, quantity=qty, leverage=lev, margin=margin,
                               symbol=symbol, raise_errors=False, fields=("liquidation_price",))  # fmt: skip
    if int(np.asarray(r["error_code"])) != 0:
        return None
    lp = float(r["liquidation_price"])
    return -math.inf * side if math.isnan(lp) else lp


def resimulate(bars, entries, exits, side, lev, stop_pct, time_stop, size_value, symbol):
    """The documented bar order, one position at a time; returns (trades, final wallet)."""
    o, h, lo, c = (bars[k] for k in ("open", "high", "low", "close"))
    mo, mh, ml = (bars[k] for k in ("mark_open", "mark_high", "mark_low"))
    fo = np.nan_to_num(bars["funding_open"])
    fi = np.nan_to_num(bars["funding_inside"])
    cash, pos, pend_entry, pend_exit, trades = CASH, None, False, None, []

    def close(i, price, reason):
        nonlocal cash, pos
        p = pos
        if reason == "liquidation":  # the margin is lost (the exchange's clearance fee comes out of it)
            fee, pnl = 0.0, -p["margin"]
        else:
            fee = p["qty"] * price * FEE
            pnl = max(side * p["qty"] * (price - p["entry"]), -p["margin"])
        cash = max(cash + pnl - fee, 0.0)
        p["fees"] += fee
        net = pnl - p["fees"] - p["fund"]
        trades.append({"entry_bar": p["bar"], "exit_bar": i, "entry": p["entry"], "exit": price, "qty": p["qty"],
                       "reason": reason, "funding": p["fund"], "net": net, "lp": p["lp"]})  # fmt: skip
        pos = None

    def settle(i, value):
        nonlocal cash
        if value == 0.0:
            return
        pay = side * pos["qty"] * value
        cash = max(cash - pay, 0.0)
        pos["margin"] -= pay
        pos["fund"] += pay
        if pos["margin"] <= 0:
            close(i, pos["lp"], "liquidation")
        else:
            pos["lp"] = _lp(side, pos["entry"], pos["qty"], lev, pos["margin"], symbol)

    for i in range(len(o)):
        if pos is not None and pos["bar"] < i:  # 1. funding at the open timestamp
            settle(i, fo[i])
        if pos is not None and pend_exit:  # 2. exits, then entries, at the open
            close(i, o[i] * (1 - side * SLIP), pend_exit)
        pend_exit = None
        if pos is None and pend_entry:
            pend_entry = False
            px = o[i] * (1 + side * SLIP)
            qty = min(size_value * cash * lev / px, cash / (px * (1 / lev + 2 * FEE)))
            lp = _lp(side, px, qty, lev, qty * px / lev, symbol)
            if lp is not None:
                fee = qty * px * FEE
                cash -= fee
                pos = {"bar": i, "entry": px, "qty": qty, "margin": qty * px / lev, "lp": lp, "fund": 0.0,
                       "fees": fee, "stop": px * (1 - side * stop_pct)}  # fmt: skip
        if pos is not None:  # 3. funding inside the bar
            settle(i, fi[i])
        if pos is not None:  # 4. gaps at the open, 5. the level nearer to the open
            lp, stop = pos["lp"], pos["stop"]
            if side * (mo[i] - lp) <= 0:
                close(i, lp, "liquidation")
            elif side * (o[i] - stop) <= 0:
                close(i, o[i] * (1 - side * SLIP), "stop")
            else:
                liq_hit = (ml[i] <= lp) if side > 0 else (mh[i] >= lp)
                stop_hit = (lo[i] <= stop) if side > 0 else (h[i] >= stop)
                if liq_hit and stop_hit:
                    liq_hit = side * (mo[i] - lp) / mo[i] < side * (o[i] - stop) / o[i]
                    stop_hit = not liq_hit
                if liq_hit:
                    close(i, lp, "liquidation")
                elif stop_hit:
                    close(i, stop * (1 - side * SLIP), "stop")
        if pos is not None:  # 6. decisions on the close
            if exits[i]:
                pend_exit = "signal"
            elif i - pos["bar"] + 1 >= time_stop:
                pend_exit = "time"
        else:
            pend_entry = bool(entries[i])
    if pos is not None:
        close(len(o) - 1, c[-1] * (1 - side * SLIP), "end")
    return trades, cash


@pytest.fixture
def sol_1h(shared_data):
    from backtest import data

    frame, _, _ = data.load_dataset(str(shared_data / "binance_um_perp_btc_eth_sol_2025"), "SOL", "1h")
    return frame.loc["2025-01-01":"2025-12-31"]


@pytest.mark.parametrize("side,lev,stop,size", [(1, 15.0, 0.05, 0.1), (-1, 20.0, 0.04, 0.1), (1, 40.0, 0.05, 0.05)])
def test_engine_agrees_with_an_independent_loop_trade_by_trade(sol_1h, side, lev, stop, size):
    frame = sol_1h
    bars = run.bar_arrays(frame)
    n = len(frame)
    # a breakout rule of one's own (both sides), plus exits on a funding flip: many trades, many funding events
    sign = "close > rolling_max(high, 24)" if side > 0 else "close < rolling_min(low, 24)"
    entries = run.expressions.evaluate(sign, run.expressions.frame_columns(frame))
    exits = run.expressions.evaluate(f"funding_rate * {side} > 0.0002", run.expressions.frame_columns(frame))
    res = engine.simulate(bars, entries, exits, side=side, leverage=lev, stop_pct=stop, time_stop=48, size_value=size,
                     take_profit_pct=np.nan, fee_rate=FEE, slippage=SLIP, liquidation_fee_rate=LIQ_FEE, init_cash=CASH,
                     symbol="SOLUSDT")  # fmt: skip
    want, cash = resimulate(bars, entries, exits, side, lev, stop, 48, size, "SOLUSDT")
    got = res.trades
    assert len(got) == len(want) > 20
    reasons = [t["reason"] for t in want]
    # 15x/20x: the stop lies inside the liquidation distance; 40x: beyond it, so liquidations happen too
    assert "time" in reasons and ("stop" in reasons if lev < 40 else "liquidation" in reasons)
    assert sum(t["funding"] != 0 for t in want) > 10  # funding moved margins and liquidation prices
    for g, w in zip(got, want, strict=True):
        assert (int(g[engine.T_ENTRY_BAR]), int(g[engine.T_EXIT_BAR])) == (w["entry_bar"], w["exit_bar"])
        assert engine.REASONS[int(g[engine.T_REASON])] == w["reason"]
        assert g[engine.T_ENTRY] == pytest.approx(w["entry"], rel=1e-12)
        assert g[engine.T_EXIT] == pytest.approx(w["exit"], rel=1e-12)
        assert g[engine.T_QTY] == pytest.approx(w["qty"], rel=1e-12)
        assert g[engine.T_FUNDING] == pytest.approx(w["funding"], rel=1e-9, abs=1e-9)
        assert g[engine.T_LP] == pytest.approx(w["lp"], rel=1e-12)
        assert g[engine.T_PNL] == pytest.approx(w["net"], rel=1e-9, abs=1e-9)
    assert res.equity[-1, 0] == pytest.approx(cash, rel=1e-9)
    assert n == len(res.equity)
