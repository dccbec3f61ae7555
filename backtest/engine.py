"""The leveraged perpetual-futures simulator: isolated margin, fees, slippage, funding and liquidation.

One pass over the bars per column, many columns at once (one column = one parameter combination), in numba.
Liquidation prices come from :func:`core.liquidation_price` itself (the function the API serves): the compiled
loop runs every column until it opens a position, then returns; the Python driver prices all the new positions
of all the waiting columns in one vectorised ``core`` call and resumes the loop. So the backtest and the
calculator can never disagree, and the loop stays cacheable on disk.

Conventions (USDⓈ-margined linear perpetuals; prices in quote per base unit, money in quote):

* Orders decided on bar ``t``'s close fill at bar ``t+1``'s open, moved against the trader by ``slippage``
  (decimal); every fill pays ``fee_rate`` (taker, decimal) on its notional.
* Isolated margin: ``margin = notional / leverage`` is locked at entry. Size is ``size_value`` × equity as margin
  (``size_mode="fraction"``) or the quantity that loses ``size_value`` × equity at the stop
  (``size_mode="risk"``, needs ``stop_pct``), capped by the equity.
* Funding is paid at each funding timestamp (the bar opening then) on ``quantity × mark open``: ``rate > 0``:
  longs pay, shorts receive (Binance: https://www.binance.com/en/support/faq/360033525031). It is settled
  against the wallet; Binance takes it from an isolated position's margin, which would move the liquidation
  price by ``funding/quantity`` — we keep the price from entry (a small, documented difference).
* Every bar, the entry bar included, liquidation is checked first: mark low (long) or mark high (short) through
  the liquidation price. The isolated margin is lost (equity never goes below zero); of it, the exchange keeps
  ``liquidation_fee_rate`` × notional at the liquidation price, capped by what margin is left there
  (Binance's liquidation clearance fee), which is reported in ``fees_paid``.
* Then stop loss, then take profit, intrabar: a fill at the level, or at the open when the bar gaps through it.
  Both inside one bar: the stop is assumed first (the pessimistic order).
* A time stop closes at the open after ``time_stop`` bars in the trade. A position still open at the end
  closes at the last close (reason ``end``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

import core

REASONS = ("signal", "stop", "take_profit", "time", "liquidation", "end")
R_SIGNAL, R_STOP, R_TP, R_TIME, R_LIQ, R_END = range(6)
RUN, NEED_LP, NEED_ROOM, DONE = 0, 1, 2, 3
# per-column state, float64 (ints stored as floats keep one array)
S_CASH, S_BAR, S_INPOS, S_QTY, S_ENTRY, S_MARGIN, S_LP, S_STOP, S_TP, S_ENTRY_BAR = range(10)
S_PEND_ENTRY, S_PEND_EXIT, S_FEES, S_FUNDING, S_TRADE_FEES, S_TRADE_FUND, S_EXPOSURE = range(10, 17)
S_TRADES, S_LIQS, S_WINS, S_GROSS_WIN, S_GROSS_LOSS, S_REJECTED, S_STATUS, S_RESUME = range(17, 25)
N_STATE = 25
T_COL, T_SIDE, T_ENTRY_BAR, T_EXIT_BAR, T_ENTRY, T_EXIT, T_QTY, T_LEV, T_MARGIN, T_LP = range(10)
T_PNL, T_FEES, T_FUNDING, T_REASON = range(10, 14)
N_TRADE = 14


@njit(cache=True)
def _close(st, c, tr, nt, i, price, reason, fee_rate, lev, side, liq_fee=0.0):
    """Close column ``c``'s position at ``price`` on bar ``i``; realised PnL floored at −margin (isolated).
    A liquidation loses the margin; ``liq_fee`` is the part of it the exchange keeps (reported, not extra)."""
    qty, entry, margin = st[c, S_QTY], st[c, S_ENTRY], st[c, S_MARGIN]
    if reason == R_LIQ:
        fee = 0.0
        pnl = -margin
    else:
        fee = qty * price * fee_rate
        pnl = max(side * qty * (price - entry), -margin)
    st[c, S_CASH] = max(st[c, S_CASH] + pnl - fee, 0.0)
    st[c, S_FEES] += fee
    st[c, S_TRADE_FEES] += fee
    net = pnl - st[c, S_TRADE_FEES] - st[c, S_TRADE_FUND]
    st[c, S_TRADES] += 1
    if net > 0:
        st[c, S_WINS] += 1
        st[c, S_GROSS_WIN] += net
    else:
        st[c, S_GROSS_LOSS] -= net
    k = nt[0]
    tr[k, T_COL] = c
    tr[k, T_SIDE] = side
    tr[k, T_ENTRY_BAR] = st[c, S_ENTRY_BAR]
    tr[k, T_EXIT_BAR] = i
    tr[k, T_ENTRY] = entry
    tr[k, T_EXIT] = price
    tr[k, T_QTY] = qty
    tr[k, T_LEV] = lev
    tr[k, T_MARGIN] = margin
    tr[k, T_LP] = st[c, S_LP]
    tr[k, T_PNL] = net
    tr[k, T_FEES] = st[c, S_TRADE_FEES] + liq_fee
    st[c, S_FEES] += liq_fee
    tr[k, T_FUNDING] = st[c, S_TRADE_FUND]
    tr[k, T_REASON] = reason
    nt[0] = k + 1
    st[c, S_INPOS] = 0.0
    st[c, S_PEND_EXIT] = 0.0
    st[c, S_TRADE_FEES] = 0.0
    st[c, S_TRADE_FUND] = 0.0


@njit(cache=True)
def simulate_nb(
    open_, high, low, close, mark_open, mark_high, mark_low, funding,
    entries, exits, sig_col, exit_col, side, leverage, stop_pct, tp_pct, time_stop, size_risk, size_value,
    fee_rate, slippage, liq_fee_rate, lp_in, lp_ok, st, equity, tr, nt,
):  # fmt: skip
    """Advance every column until it needs a liquidation price (status NEED_LP), needs more trade-record room
    (NEED_ROOM) or reaches the end (DONE). Returns the number of columns not DONE."""
    n = open_.shape[0]
    ncol = st.shape[0]
    cap = tr.shape[0]
    active = 0
    for c in range(ncol):
        status = st[c, S_STATUS]
        if status == DONE:
            continue
        s = side[c]
        lev = leverage[c]
        sc = sig_col[c]
        i = int(st[c, S_BAR])
        resume = False
        if status == NEED_LP:  # the driver priced the entry at bar i's open
            if nt[0] + 2 > cap:  # this bar may close trades: wait (still NEED_LP) until the driver adds room
                active += 1
                continue
            st[c, S_STATUS] = RUN
            resume = True
            if lp_ok[c]:
                notional = st[c, S_QTY] * st[c, S_ENTRY]
                fee = notional * fee_rate
                st[c, S_CASH] -= fee
                st[c, S_FEES] += fee
                st[c, S_TRADE_FEES] = fee
                st[c, S_TRADE_FUND] = 0.0
                st[c, S_INPOS] = 1.0
                st[c, S_LP] = lp_in[c]
                st[c, S_ENTRY_BAR] = i
                sp = stop_pct[c]
                st[c, S_STOP] = st[c, S_ENTRY] * (1.0 - s * sp) if sp > 0 else math.nan
                tp = tp_pct[c]
                st[c, S_TP] = st[c, S_ENTRY] * (1.0 + s * tp) if tp > 0 else math.nan
            else:
                st[c, S_REJECTED] += 1
        elif status == NEED_ROOM:
            st[c, S_STATUS] = RUN
            if nt[0] + 2 > cap:
                st[c, S_STATUS] = NEED_ROOM
                active += 1
                continue
        paused = False
        while i < n:
            if not resume:
                if nt[0] + 2 > cap:  # at most two trades close per bar (exit at open, then intrabar)
                    st[c, S_STATUS] = NEED_ROOM
                    st[c, S_BAR] = i
                    paused = True
                    break
                if st[c, S_INPOS] == 1.0 and st[c, S_PEND_EXIT] > 0:
                    px = open_[i] * (1.0 - s * slippage)
                    _close(st, c, tr, nt, i, px, int(st[c, S_PEND_EXIT]) - 1, fee_rate, lev, s)
                if st[c, S_INPOS] == 0.0 and st[c, S_PEND_ENTRY] == 1.0:
                    st[c, S_PEND_ENTRY] = 0.0
                    cash = st[c, S_CASH]
                    px = open_[i] * (1.0 + s * slippage)
                    if cash > 0 and px > 0:
                        if size_risk:
                            qty = size_value[c] * cash / (px * stop_pct[c])
                        else:
                            qty = size_value[c] * cash * lev / px
                        # margin plus both fees must fit in the wallet
                        max_qty = cash / (px * (1.0 / lev + 2.0 * fee_rate))
                        qty = min(qty, max_qty)
                        if qty > 0:
                            st[c, S_QTY] = qty
                            st[c, S_ENTRY] = px
                            st[c, S_MARGIN] = qty * px / lev
                            st[c, S_BAR] = i
                            st[c, S_STATUS] = NEED_LP
                            paused = True
                            break
            resume = False
            inpos = st[c, S_INPOS] == 1.0
            if inpos:
                qty = st[c, S_QTY]
                # funding at this bar's open timestamp, for a position held through it
                rate = funding[i]
                if not math.isnan(rate) and st[c, S_ENTRY_BAR] < i:
                    pay = s * qty * mark_open[i] * rate
                    st[c, S_CASH] = max(st[c, S_CASH] - pay, 0.0)
                    st[c, S_FUNDING] += pay
                    st[c, S_TRADE_FUND] += pay
                lp = st[c, S_LP]
                stop = st[c, S_STOP]
                tp = st[c, S_TP]
                if (s > 0 and mark_low[i] <= lp) or (s < 0 and mark_high[i] >= lp):
                    left = st[c, S_MARGIN] + s * qty * (lp - st[c, S_ENTRY])  # margin left at the price
                    lfee = min(liq_fee_rate * qty * lp, max(left, 0.0))
                    st[c, S_LIQS] += 1
                    _close(st, c, tr, nt, i, lp, R_LIQ, fee_rate, lev, s, lfee)
                elif (s > 0 and low[i] <= stop) or (s < 0 and high[i] >= stop):
                    px = min(open_[i], stop) if s > 0 else max(open_[i], stop)
                    _close(st, c, tr, nt, i, px * (1.0 - s * slippage), R_STOP, fee_rate, lev, s)
                elif (s > 0 and high[i] >= tp) or (s < 0 and low[i] <= tp):
                    px = max(open_[i], tp) if s > 0 else min(open_[i], tp)
                    _close(st, c, tr, nt, i, px * (1.0 - s * slippage), R_TP, fee_rate, lev, s)
                st[c, S_EXPOSURE] += 1.0
            # decisions on this bar's close
            if st[c, S_INPOS] == 1.0:
                if exits[i, exit_col[c]]:
                    st[c, S_PEND_EXIT] = R_SIGNAL + 1
                elif time_stop[c] > 0 and i - st[c, S_ENTRY_BAR] + 1 >= time_stop[c]:
                    st[c, S_PEND_EXIT] = R_TIME + 1
                unreal = max(s * st[c, S_QTY] * (close[i] - st[c, S_ENTRY]), -st[c, S_MARGIN])
                equity[i, c] = max(st[c, S_CASH] + unreal, 0.0)
            else:
                st[c, S_PEND_ENTRY] = 1.0 if entries[i, sc] else 0.0
                equity[i, c] = st[c, S_CASH]
            i += 1
        if paused:
            active += 1
            continue
        if st[c, S_INPOS] == 1.0:
            _close(st, c, tr, nt, n - 1, close[n - 1], R_END, fee_rate, lev, s)
            equity[n - 1, c] = st[c, S_CASH]
        st[c, S_BAR] = n
        st[c, S_STATUS] = DONE
    return active


@dataclass
class SimResult:
    """Per-column totals, the trade records, and the equity curve (bars × columns, quote, at each close)."""

    equity: np.ndarray
    state: np.ndarray
    trades: np.ndarray
    rounds: int
    seconds: float


def _col(x: Any, ncol: int, dtype=np.float64) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=dtype), (ncol,)))


def simulate(
    frame: dict[str, np.ndarray],
    entries: np.ndarray,
    exits: np.ndarray,
    *,
    side: Any = 1,
    leverage: Any = 3.0,
    stop_pct: Any = np.nan,
    take_profit_pct: Any = np.nan,
    time_stop: Any = 0,
    size_mode: str = "fraction",
    size_value: Any = 0.5,
    sig_col: Any = None,
    exit_col: Any = None,
    init_cash: float = 10_000.0,
    fee_rate: float = 0.0005,
    slippage: float = 0.0002,
    liquidation_fee_rate: float = 0.0125,
    exchange: str = "binance",
    symbol: str | None = "BTCUSDT",
    maintenance_margin_rate: float | None = None,
    deadline: float | None = None,
) -> SimResult:
    """Run the simulator. ``frame`` holds 1-D bar arrays (open, high, low, close, mark_open, mark_high,
    mark_low, funding_rate); ``entries``/``exits`` are bars × signal-columns booleans; ``sig_col[c]`` and
    ``exit_col[c]`` pick the entry/exit column of simulation column ``c`` (default: the same index).
    Per-column parameters broadcast to the number of simulation columns: ``side`` (+1 long, −1 short),
    ``leverage``, ``stop_pct``/``take_profit_pct``
    (decimal distance from entry; NaN or 0 = none), ``time_stop`` (bars; 0 = none), ``size_value``.
    ``exchange``/``symbol`` (or ``maintenance_margin_rate``) select the liquidation rules of :mod:`core`.
    ``deadline`` (``time.monotonic()`` value) raises ``TimeoutError`` when passed between rounds.
    """
    t0 = time.perf_counter()
    o = np.ascontiguousarray(frame["open"], dtype=np.float64)
    n = o.shape[0]
    entries = np.ascontiguousarray(entries, dtype=np.bool_)
    exits = np.ascontiguousarray(exits, dtype=np.bool_)
    for name, a in (("entries", entries), ("exits", exits)):
        if a.ndim not in (1, 2) or a.shape[0] != n:
            raise ValueError(f"{name}: one row per bar ({n}), got shape {a.shape}")
    entries, exits = entries.reshape(n, -1), exits.reshape(n, -1)
    lens = [np.size(x) for x in (side, leverage, stop_pct, take_profit_pct, time_stop, size_value, sig_col)
            if x is not None]  # fmt: skip
    ncol = max([entries.shape[1] if sig_col is None else 1] + lens)
    sc = np.arange(ncol) if sig_col is None else _col(sig_col, ncol, np.int64)
    if sig_col is None and entries.shape[1] not in (1, ncol):
        raise ValueError("entries: one column, or one per simulation column")
    if sig_col is None and entries.shape[1] == 1:
        sc = np.zeros(ncol, dtype=np.int64)
    if sc.min() < 0 or sc.max() >= entries.shape[1]:
        raise ValueError("sig_col: out of range of the entry columns")
    if exit_col is None:
        if exits.shape != entries.shape:
            raise ValueError("exits: must have the shape of entries (or give exit_col)")
        xc = sc
    else:
        xc = _col(exit_col, ncol, np.int64)
        if xc.min() < 0 or xc.max() >= exits.shape[1]:
            raise ValueError("exit_col: out of range of the exit columns")
    s = _col(side, ncol)
    lev = _col(leverage, ncol)
    stp = np.nan_to_num(_col(stop_pct, ncol), nan=0.0)
    tpp = np.nan_to_num(_col(take_profit_pct, ncol), nan=0.0)
    tst = _col(time_stop, ncol, np.int64)
    sv = _col(size_value, ncol)
    if size_mode not in ("fraction", "risk"):
        raise ValueError("size_mode: fraction or risk")
    if not np.all(np.isin(s, (1.0, -1.0))):
        raise ValueError("side: +1 (long) or -1 (short)")
    if not np.all((lev >= 1) & np.isfinite(lev)):
        raise ValueError("leverage: at least 1")
    if size_mode == "risk" and not np.all(stp > 0):
        raise ValueError("stop_pct: required (> 0) with size_mode=risk")
    if not np.all((sv > 0) & np.isfinite(sv)) or (size_mode == "fraction" and np.any(sv > 1)):
        raise ValueError("size_value: > 0 (and at most 1 for size_mode=fraction)")
    if not (np.isfinite(init_cash) and init_cash > 0):
        raise ValueError("init_cash: > 0")
    arrays = [np.ascontiguousarray(frame[k], dtype=np.float64) for k in
              ("high", "low", "close", "mark_open", "mark_high", "mark_low", "funding_rate")]  # fmt: skip
    st = np.zeros((ncol, N_STATE))
    st[:, S_CASH] = init_cash
    st[:, S_STOP] = st[:, S_TP] = np.nan
    equity = np.empty((n, ncol))
    tr = np.empty((max(64, ncol * 4), N_TRADE))
    nt = np.zeros(1, dtype=np.int64)
    lp_in = np.full(ncol, np.nan)
    lp_ok = np.zeros(ncol, dtype=np.bool_)
    rounds = 0
    while True:
        active = simulate_nb(o, *arrays[:3], *arrays[3:], entries, exits, sc, xc, s, lev, stp, tpp, tst,
                             size_mode == "risk", sv, fee_rate, slippage, liquidation_fee_rate, lp_in, lp_ok,
                             st, equity, tr, nt)  # fmt: skip
        rounds += 1
        if active == 0:
            break
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError("run time budget exceeded")
        status = st[:, S_STATUS]
        if (status == NEED_ROOM).any() or nt[0] + 2 > tr.shape[0]:
            tr = np.concatenate([tr, np.empty_like(tr)])
        need = np.flatnonzero(status == NEED_LP)
        if need.size:
            res = core.liquidation_price(
                side=s[need], entry_price=st[need, S_ENTRY], quantity=st[need, S_QTY], leverage=lev[need],
                exchange=exchange, symbol=symbol, maintenance_margin_rate=maintenance_margin_rate,
                fields=("liquidation_price",), raise_errors=False,
            )  # fmt: skip
            code = np.asarray(res["error_code"]).reshape(-1)
            lp = np.asarray(res["liquidation_price"], dtype=float).reshape(-1)
            lp_ok[need] = code == 0
            # no liquidation price (a long at 1x): never liquidated
            lp_in[need] = np.where(np.isnan(lp), -np.inf * s[need], lp)
    return SimResult(equity, st, tr[: nt[0]].copy(), rounds, time.perf_counter() - t0)
