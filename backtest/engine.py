"""The leveraged perpetual-futures simulator: isolated margin, fees, slippage, funding and liquidation.

One pass over the bars per column, many columns at once (one column = one parameter combination), in numba.
Liquidation prices come from :func:`core.liquidation_price` itself (the function the API serves): the compiled
loop runs every column until it opens a position or its isolated margin changes, then returns; the Python
driver prices all the waiting columns in one vectorised ``core`` call (``margin=`` the position's margin now) and
resumes the loop. So the backtest and the calculator can never disagree, and the loop stays cacheable on disk.

Conventions (USDⓈ-margined linear perpetuals; prices in quote per base unit, money in quote). Within bar ``t``
events happen in this order — the one place the order is stated:

1. **Funding at the bar's open timestamp.** A position held from an earlier bar pays (``rate > 0``: longs pay,
   shorts receive) ``quantity × mark price × rate`` (``funding_open`` = Σ rate × mark of the events at that
   instant), taken from its isolated margin and from the wallet: Binance settles an isolated position's funding
   against its margin (https://www.binance.com/en/support/faq/360033525031), so the liquidation price moves;
   ``core`` re-prices it with the new margin before any later bar whose liquidation-trigger range comes near the
   last priced level (within :data:`REPRICE_NEAR` of price plus a bound on how far the margin change can move
   it), and once more for the trade record at the exit — exact where it matters, without a pause per funding
   event. A margin used up by funding is liquidated at the open.
2. **Orders decided on bar ``t−1``'s close fill at the open** (exits first, then entries), moved against the
   trader by the slippage; every fill pays ``fee_rate`` (taker, decimal) on its notional. Orders reach the
   exchange just after the funding instant: a fill at the open of a funding bar is charged that funding when it
   is an exit (the position was open at the timestamp) and not when it is an entry (it was not) — the same rule.
3. **Funding events strictly inside the bar** (coarse bars: ``funding_inside`` = Σ rate × mark over them, each at
   its own time and mark price) are settled next, from the margin, the same way.
4. **Gaps at the open**: a liquidation-trigger open (mark by default) beyond the liquidation price liquidates at
   once; else a stop-trigger open (last by default) beyond the stop, or beyond the take profit, fills at the open.
5. **Along the path**: when the bar's range reaches both the stop and the liquidation price, the level nearer to
   its open (relative distance, each on its own trigger series) is reached first — a stop between the open and
   the liquidation price fills at the stop; else the liquidation. A take profit in the same bar as an adverse
   level comes after it (the pessimistic order). Liquidation loses the isolated margin (equity never goes below
   zero); of it the exchange keeps ``liquidation_fee_rate`` × notional at the liquidation price, capped by the
   margin left there (Binance's liquidation clearance fee), reported in ``fees_paid``.
6. **At the close**: exit and time-stop decisions (a time stop closes at the next open after ``time_stop`` bars
   in the trade), the next entry decision, equity marked at the close. A position still open after the last bar
   closes at the last close (reason ``end``), paying the slippage and the fee like any other exit.

Triggers (``stop_trigger``, ``liquidation_trigger``): ``"last"`` or ``"mark"`` price series; defaults ``last`` for
stop/take profit (Binance's default ``workingType=CONTRACT_PRICE``) and ``mark`` for liquidation. Slippage
(``slippage_model``): ``"fixed"`` moves every fill by ``slippage`` (decimal of price); ``"range"`` moves it by
``slippage × (high − low) / open`` of the fill's bar (a share of the bar's range, so volatile bars cost more).
Isolated margin: ``margin = notional / leverage`` at entry. Size is ``size_value`` × equity as margin
(``size_mode="fraction"``) or the quantity that loses ``size_value`` × equity at the stop (``size_mode="risk"``,
needs ``stop_pct``), capped by the equity. An entry ``core`` refuses (leverage above the tier's maximum for that
notional) is counted in ``S_REJECTED`` and reported by the callers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

import core

from .params import SIM_DEFAULTS

REASONS = ("signal", "stop", "take_profit", "time", "liquidation", "end")
R_SIGNAL, R_STOP, R_TP, R_TIME, R_LIQ, R_END = range(6)
# column status: running; waiting for an entry's liquidation price; waiting for a re-price after a margin change;
# priced by the driver (resume); finished
RUN, NEED_LP, NEED_REPRICE, PRICED, DONE = 0, 1, 2, 3, 4
# per-column state, float64 (ints stored as floats keep one array); S_PHASE: the step of bar S_BAR to resume at
S_CASH, S_BAR, S_INPOS, S_QTY, S_ENTRY, S_MARGIN, S_LP, S_STOP, S_TP, S_ENTRY_BAR = range(10)
S_PEND_ENTRY, S_PEND_EXIT, S_FEES, S_FUNDING, S_TRADE_FEES, S_TRADE_FUND, S_EXPOSURE = range(10, 17)
S_TRADES, S_LIQS, S_WINS, S_GROSS_WIN, S_GROSS_LOSS, S_REJECTED, S_STATUS, S_PHASE, S_ASK, S_MARGIN0 = range(17, 27)
S_REPRICES, S_LP0, S_PRICED_MARGIN = 27, 28, 29
N_STATE = 30
T_COL, T_SIDE, T_ENTRY_BAR, T_EXIT_BAR, T_ENTRY, T_EXIT, T_QTY, T_LEV, T_MARGIN, T_LP = range(10)
T_PNL, T_FEES, T_FUNDING, T_REASON, T_LP_ENTRY, T_MARGIN_EXIT, T_STALE = range(10, 17)
N_TRADE = 17
#: re-price when the liquidation-trigger extreme of a bar comes within this share of price of the last priced
#: liquidation price, or within ``REPRICE_SLOPE`` × |margin change| / quantity of it (the liquidation price of an
#: isolated position moves by |Δmargin| / (quantity × (1 ∓ MMR)) ≤ 2 |Δmargin| / quantity for MMR ≤ 0.5)
REPRICE_NEAR = 0.02
REPRICE_SLOPE = 4.0
#: trade records one column may write in one bar (an exit at the open, then an intrabar or end-of-data close)
ROOM = 2


@njit(cache=True)
def linear_pnl_nb(side, quantity, entry_price, price):
    """PnL in quote of closing ``quantity`` base units bought (``side`` +1) or sold (−1) at ``entry_price`` at
    ``price`` (quote per base): ``side·Q·(price − EP)``, Binance USDⓈ-M
    (https://www.binance.com/en/support/faq/360036498511); :func:`core.contracts.unrealized_pnl` in numpy."""
    return side * quantity * (price - entry_price)


@njit(cache=True)
def _close(st, c, tr, nt, i, price, reason, fee_rate, lev, side, liq_fee=0.0):
    """Close column ``c``'s position at ``price`` on bar ``i``; realised PnL floored at −margin (isolated).
    A liquidation loses the margin; ``liq_fee`` is the part of it the exchange keeps (reported, not extra)."""
    k = nt[0]
    if k >= tr.shape[0]:  # the driver guarantees ROOM free rows before every bar: never write past the buffer
        raise IndexError("trade buffer full")
    qty, entry, margin = st[c, S_QTY], st[c, S_ENTRY], st[c, S_MARGIN]
    if reason == R_LIQ:
        fee = 0.0
        pnl = -margin
    else:
        fee = qty * price * fee_rate
        pnl = max(linear_pnl_nb(side, qty, entry, price), -margin)
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
    tr[k, T_COL] = c
    tr[k, T_SIDE] = side
    tr[k, T_ENTRY_BAR] = st[c, S_ENTRY_BAR]
    tr[k, T_EXIT_BAR] = i
    tr[k, T_ENTRY] = entry
    tr[k, T_EXIT] = price
    tr[k, T_QTY] = qty
    tr[k, T_LEV] = lev
    tr[k, T_MARGIN] = st[c, S_MARGIN0]
    tr[k, T_LP] = st[c, S_LP]
    tr[k, T_LP_ENTRY] = st[c, S_LP0]
    tr[k, T_MARGIN_EXIT] = margin
    tr[k, T_STALE] = 1.0 if margin != st[c, S_PRICED_MARGIN] else 0.0  # re-priced by the driver afterwards
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
def _liquidate(st, c, tr, nt, i, liq_fee_rate, fee_rate, lev, s):
    qty, lp = st[c, S_QTY], st[c, S_LP]
    left = st[c, S_MARGIN] + linear_pnl_nb(s, qty, st[c, S_ENTRY], lp)  # margin left at the price
    lfee = min(liq_fee_rate * qty * lp, max(left, 0.0))
    st[c, S_LIQS] += 1
    _close(st, c, tr, nt, i, lp, R_LIQ, fee_rate, lev, s, lfee)


@njit(cache=True)
def _pay_funding(st, c, value, s):
    """Settle ``value`` (Σ rate × mark, quote per base) from the margin and the wallet; True if margin changed."""
    if value == 0.0 or math.isnan(value):
        return False
    pay = s * st[c, S_QTY] * value
    st[c, S_CASH] = max(st[c, S_CASH] - pay, 0.0)
    st[c, S_MARGIN] -= pay
    st[c, S_FUNDING] += pay
    st[c, S_TRADE_FUND] += pay
    return True


@njit(cache=True)
def _slip(slippage, by_range, o, h, lo):
    if by_range:
        return slippage * (h - lo) / o if o > 0 else 0.0
    return slippage


@njit(cache=True)
def simulate_nb(
    open_, high, low, close, trig_open, trig_high, trig_low, liq_open, liq_high, liq_low, funding_open,
    funding_inside, entries, exits, sig_col, exit_col, side, leverage, stop_pct, tp_pct, time_stop, size_risk,
    size_value, fee_rate, slippage, slip_by_range, liq_fee_rate, lp_in, lp_ok, st, equity, tr, nt,
):  # fmt: skip
    """Advance every column until it needs a liquidation price (NEED_LP at an entry, NEED_REPRICE after funding
    changed its margin) or reaches the end (DONE); a column that would need more trade records than the buffer
    has left stops where it is and sets ``nt[1]``. Returns the number of columns not DONE."""
    n = open_.shape[0]
    ncol = st.shape[0]
    cap = tr.shape[0]
    active = 0
    for c in range(ncol):
        status = st[c, S_STATUS]
        if status == DONE:
            continue
        if status == NEED_LP or status == NEED_REPRICE:  # not priced yet (the driver prices before each call)
            active += 1
            continue
        if nt[0] + ROOM > cap:  # room first, before any change of state, so the column can resume unchanged
            nt[1] = 1
            active += 1
            continue
        s = side[c]
        lev = leverage[c]
        i = int(st[c, S_BAR])
        phase = int(st[c, S_PHASE])
        if status == PRICED:
            st[c, S_STATUS] = RUN
            if st[c, S_ASK] == NEED_LP:  # an entry at bar i's open
                if lp_ok[c]:
                    notional = st[c, S_QTY] * st[c, S_ENTRY]
                    fee = notional * fee_rate
                    st[c, S_CASH] -= fee
                    st[c, S_FEES] += fee
                    st[c, S_TRADE_FEES] = fee
                    st[c, S_TRADE_FUND] = 0.0
                    st[c, S_INPOS] = 1.0
                    st[c, S_LP] = st[c, S_LP0] = lp_in[c]
                    st[c, S_PRICED_MARGIN] = st[c, S_MARGIN]
                    st[c, S_ENTRY_BAR] = i
                    sp = stop_pct[c]
                    st[c, S_STOP] = st[c, S_ENTRY] * (1.0 - s * sp) if sp > 0 else math.nan
                    tp = tp_pct[c]
                    st[c, S_TP] = st[c, S_ENTRY] * (1.0 + s * tp) if tp > 0 else math.nan
                else:
                    st[c, S_REJECTED] += 1
            else:  # a re-price after funding (refused by core: the last price stands)
                if lp_ok[c]:
                    st[c, S_LP] = lp_in[c]
                st[c, S_PRICED_MARGIN] = st[c, S_MARGIN]
                st[c, S_REPRICES] += 1
        paused = False
        while i < n:
            if phase == 0:
                if nt[0] + ROOM > cap:
                    nt[1] = 1
                    paused = True
                    break
                phase = 1
                if st[c, S_INPOS] == 1.0 and st[c, S_ENTRY_BAR] < i and _pay_funding(st, c, funding_open[i], s):
                    if st[c, S_MARGIN] <= 0.0:
                        _liquidate(st, c, tr, nt, i, liq_fee_rate, fee_rate, lev, s)
            if phase == 1:
                phase = 2
                if st[c, S_INPOS] == 1.0 and st[c, S_PEND_EXIT] > 0:
                    px = open_[i] * (1.0 - s * _slip(slippage, slip_by_range, open_[i], high[i], low[i]))
                    _close(st, c, tr, nt, i, px, int(st[c, S_PEND_EXIT]) - 1, fee_rate, lev, s)
                if st[c, S_INPOS] == 0.0 and st[c, S_PEND_ENTRY] == 1.0:
                    st[c, S_PEND_ENTRY] = 0.0
                    cash = st[c, S_CASH]
                    px = open_[i] * (1.0 + s * _slip(slippage, slip_by_range, open_[i], high[i], low[i]))
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
                            st[c, S_MARGIN0] = st[c, S_MARGIN]
                            st[c, S_STATUS] = NEED_LP
                            paused = True
                            break
            if phase == 2:
                phase = 3
                if st[c, S_INPOS] == 1.0 and _pay_funding(st, c, funding_inside[i], s):
                    if st[c, S_MARGIN] <= 0.0:
                        _liquidate(st, c, tr, nt, i, liq_fee_rate, fee_rate, lev, s)
            # phase 3: intrabar exits, then the decisions on the close
            if st[c, S_INPOS] == 1.0 and st[c, S_MARGIN] != st[c, S_PRICED_MARGIN]:
                # the margin moved since the last pricing: re-price (core) before this bar can reach the level
                lp = st[c, S_LP]
                ref = lp if math.isfinite(lp) else 0.0
                tol = (
                    REPRICE_NEAR * abs(ref)
                    + REPRICE_SLOPE * abs(st[c, S_MARGIN] - st[c, S_PRICED_MARGIN]) / st[c, S_QTY]
                )
                near = liq_low[i] <= ref + tol if s > 0 else liq_high[i] >= ref - tol
                if near:
                    st[c, S_STATUS] = NEED_REPRICE
                    paused = True
                    break
            if st[c, S_INPOS] == 1.0:
                lp, stop, tp = st[c, S_LP], st[c, S_STOP], st[c, S_TP]
                slip = _slip(slippage, slip_by_range, open_[i], high[i], low[i])
                if (s > 0 and liq_open[i] <= lp) or (s < 0 and liq_open[i] >= lp):
                    _liquidate(st, c, tr, nt, i, liq_fee_rate, fee_rate, lev, s)
                elif (s > 0 and trig_open[i] <= stop) or (s < 0 and trig_open[i] >= stop):
                    _close(st, c, tr, nt, i, open_[i] * (1.0 - s * slip), R_STOP, fee_rate, lev, s)
                elif (s > 0 and trig_open[i] >= tp) or (s < 0 and trig_open[i] <= tp):
                    _close(st, c, tr, nt, i, open_[i] * (1.0 - s * slip), R_TP, fee_rate, lev, s)
                else:
                    liq_hit = (s > 0 and liq_low[i] <= lp) or (s < 0 and liq_high[i] >= lp)
                    stop_hit = (s > 0 and trig_low[i] <= stop) or (s < 0 and trig_high[i] >= stop)
                    if liq_hit and stop_hit:  # the level nearer to the open is reached first
                        d_liq = s * (liq_open[i] - lp) / liq_open[i]
                        d_stop = s * (trig_open[i] - stop) / trig_open[i]
                        liq_hit = d_liq < d_stop
                        stop_hit = not liq_hit
                    if liq_hit:
                        _liquidate(st, c, tr, nt, i, liq_fee_rate, fee_rate, lev, s)
                    elif stop_hit:
                        _close(st, c, tr, nt, i, stop * (1.0 - s * slip), R_STOP, fee_rate, lev, s)
                    elif (s > 0 and trig_high[i] >= tp) or (s < 0 and trig_low[i] <= tp):
                        _close(st, c, tr, nt, i, tp * (1.0 - s * slip), R_TP, fee_rate, lev, s)
                st[c, S_EXPOSURE] += 1.0
            if st[c, S_INPOS] == 1.0:
                if exits[i, exit_col[c]]:
                    st[c, S_PEND_EXIT] = R_SIGNAL + 1
                elif time_stop[c] > 0 and i - st[c, S_ENTRY_BAR] + 1 >= time_stop[c]:
                    st[c, S_PEND_EXIT] = R_TIME + 1
                unreal = max(linear_pnl_nb(s, st[c, S_QTY], st[c, S_ENTRY], close[i]), -st[c, S_MARGIN])
                equity[i, c] = max(st[c, S_CASH] + unreal, 0.0)
            else:
                st[c, S_PEND_ENTRY] = 1.0 if entries[i, sig_col[c]] else 0.0
                equity[i, c] = st[c, S_CASH]
            i += 1
            phase = 0
        st[c, S_BAR] = i
        st[c, S_PHASE] = phase
        if paused:
            st[c, S_ASK] = st[c, S_STATUS]
            active += 1
            continue
        if st[c, S_INPOS] == 1.0:  # room: checked at the start of the last bar, which closed nothing after this
            j = n - 1
            px = close[j] * (1.0 - s * _slip(slippage, slip_by_range, close[j], high[j], low[j]))
            _close(st, c, tr, nt, j, px, R_END, fee_rate, lev, s)
            equity[j, c] = st[c, S_CASH]
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


#: the simulator's ``side`` for each of the strategy's words
SIDES = {"long": 1, "short": -1}
TRIGGERS = ("last", "mark")
SLIPPAGE_MODELS = ("fixed", "range")


def funding_values(frame: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(funding_open, funding_inside)``: Σ rate × mark (quote per base) of the funding events at each bar's
    open timestamp and strictly inside it. Taken from the frame when it has them (:func:`backtest.data.market_frame`
    builds them from the funding file); else every ``funding_rate`` is read as an event at its bar's open, paid
    on the mark open."""
    if "funding_open" in frame:
        fo = np.nan_to_num(np.asarray(frame["funding_open"], dtype=np.float64))
        fi = np.nan_to_num(np.asarray(frame.get("funding_inside", np.zeros_like(fo)), dtype=np.float64))
        return np.ascontiguousarray(fo), np.ascontiguousarray(fi)
    rate = np.asarray(frame["funding_rate"], dtype=np.float64)
    fo = np.nan_to_num(rate * np.asarray(frame["mark_open"], dtype=np.float64))
    return np.ascontiguousarray(fo), np.zeros_like(fo)


def simulate(
    frame: dict[str, np.ndarray],
    entries: np.ndarray,
    exits: np.ndarray,
    *,
    side: Any = SIDES[SIM_DEFAULTS["side"]],
    leverage: Any = SIM_DEFAULTS["leverage"],
    stop_pct: Any = SIM_DEFAULTS["stop_pct"],
    take_profit_pct: Any = SIM_DEFAULTS["take_profit_pct"],
    time_stop: Any = SIM_DEFAULTS["time_stop"],
    size_mode: str = SIM_DEFAULTS["size_mode"],
    size_value: Any = SIM_DEFAULTS["size_value"],
    sig_col: Any = None,
    exit_col: Any = None,
    init_cash: float = SIM_DEFAULTS["init_cash"],
    fee_rate: float = SIM_DEFAULTS["fee_rate"],
    slippage: float = SIM_DEFAULTS["slippage"],
    slippage_model: str = SIM_DEFAULTS["slippage_model"],
    liquidation_fee_rate: float = SIM_DEFAULTS["liquidation_fee_rate"],
    stop_trigger: str = SIM_DEFAULTS["stop_trigger"],
    liquidation_trigger: str = SIM_DEFAULTS["liquidation_trigger"],
    exchange: str = SIM_DEFAULTS["exchange"],
    symbol: str | None = SIM_DEFAULTS["symbol"],
    maintenance_margin_rate: float | None = None,
    deadline: float | None = None,
) -> SimResult:
    """Run the simulator. ``frame`` holds 1-D bar arrays (open, high, low, close, mark_open, mark_high,
    mark_low, funding_rate, optionally funding_open/funding_inside, see :func:`funding_values`);
    ``entries``/``exits`` are bars × signal-columns booleans; ``sig_col[c]`` and
    ``exit_col[c]`` pick the entry/exit column of simulation column ``c`` (default: the same index).
    Per-column parameters broadcast to the number of simulation columns: ``side`` (+1 long, −1 short),
    ``leverage``, ``stop_pct``/``take_profit_pct``
    (decimal distance from entry; NaN or 0 = none), ``time_stop`` (bars; 0 = none), ``size_value``.
    ``exchange``/``symbol`` (or ``maintenance_margin_rate``) select the liquidation rules of :mod:`core`.
    Defaults: the strategy's, :data:`backtest.params.SIM_DEFAULTS` (``side`` +1 for ``long``); pass ``stop_pct``,
    ``take_profit_pct`` NaN and ``time_stop`` 0 for none. ``deadline`` (``time.monotonic()`` value) raises
    ``TimeoutError`` when passed between rounds.
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
    if slippage_model not in SLIPPAGE_MODELS:
        raise ValueError("slippage_model: fixed or range")
    for name, v in (("stop_trigger", stop_trigger), ("liquidation_trigger", liquidation_trigger)):
        if v not in TRIGGERS:
            raise ValueError(f"{name}: last or mark")
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
    bars = {k: np.ascontiguousarray(frame[k], dtype=np.float64) for k in
            ("high", "low", "close", "mark_open", "mark_high", "mark_low")}  # fmt: skip
    last = (o, bars["high"], bars["low"])
    mark = (bars["mark_open"], bars["mark_high"], bars["mark_low"])
    trig = last if stop_trigger == "last" else mark
    liq = mark if liquidation_trigger == "mark" else last
    f_open, f_inside = funding_values(frame)
    st = np.zeros((ncol, N_STATE))
    st[:, S_CASH] = init_cash
    st[:, S_STOP] = st[:, S_TP] = np.nan
    equity = np.empty((n, ncol))
    tr = np.empty((max(64, ncol * 4), N_TRADE))
    nt = np.zeros(2, dtype=np.int64)  # [records written, 1 = a column waits for room]
    lp_in = np.full(ncol, np.nan)
    lp_ok = np.zeros(ncol, dtype=np.bool_)
    rounds = 0
    while True:
        active = simulate_nb(o, *last[1:], bars["close"], *trig, *liq, f_open, f_inside, entries, exits, sc, xc, s,
                             lev, stp, tpp, tst, size_mode == "risk", sv, fee_rate, slippage,
                             slippage_model == "range", liquidation_fee_rate, lp_in, lp_ok, st, equity, tr,
                             nt)  # fmt: skip
        rounds += 1
        if active == 0:
            break
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError("run time budget exceeded")
        if nt[1]:
            tr = np.concatenate([tr, np.empty_like(tr)])
            nt[1] = 0
        status = st[:, S_STATUS]
        need = np.flatnonzero((status == NEED_LP) | (status == NEED_REPRICE))
        if need.size:
            res = core.liquidation_price(
                side=s[need], entry_price=st[need, S_ENTRY], quantity=st[need, S_QTY], leverage=lev[need],
                margin=st[need, S_MARGIN], exchange=exchange, symbol=symbol,
                maintenance_margin_rate=maintenance_margin_rate, fields=("liquidation_price",), raise_errors=False,
            )  # fmt: skip
            code = np.asarray(res["error_code"]).reshape(-1)
            lp = np.asarray(res["liquidation_price"], dtype=float).reshape(-1)
            lp_ok[need] = code == 0
            # no liquidation price (a long whose margin covers its notional): never liquidated
            lp_in[need] = np.where(np.isnan(lp), -np.inf * s[need], lp)
            st[need, S_STATUS] = PRICED
    trades = tr[: nt[0]].copy()
    stale = np.flatnonzero(trades[:, T_STALE] == 1.0)
    if stale.size:  # margin moved by funding after the last pricing: the liquidation price at exit, from core
        t = trades[stale]
        res = core.liquidation_price(
            side=t[:, T_SIDE], entry_price=t[:, T_ENTRY], quantity=t[:, T_QTY], leverage=t[:, T_LEV],
            margin=t[:, T_MARGIN_EXIT], exchange=exchange, symbol=symbol,
            maintenance_margin_rate=maintenance_margin_rate, fields=("liquidation_price",), raise_errors=False,
        )  # fmt: skip
        lp = np.asarray(res["liquidation_price"], dtype=float).reshape(-1)
        ok = np.asarray(res["error_code"]).reshape(-1) == 0
        trades[stale[ok], T_LP] = np.where(np.isnan(lp[ok]), -np.inf * t[ok, T_SIDE], lp[ok])
    return SimResult(equity, st, trades, rounds, time.perf_counter() - t0)
