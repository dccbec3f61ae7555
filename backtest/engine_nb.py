"""The simulator's compiled loop over the bars (numba, cached on disk) and its state layout: one row of ``S_*``
fields per simulation column, one row of ``T_*`` fields per trade. The order of events within a bar and the
conventions are stated once, in :mod:`backtest.engine`, which drives this loop."""

from __future__ import annotations

import math

from numba import njit

#: the state and trade layout, and the kernels the driver calls
__all__ = [
    "DONE", "NEED_LP", "NEED_REPRICE", "N_STATE", "N_TRADE", "PRICED", "REASONS", "REPRICE_NEAR",
    "REPRICE_SLOPE", "ROOM", "RUN", "R_END", "R_LIQ", "R_SIGNAL", "R_STOP", "R_TIME", "R_TP", "S_ASK", "S_BAR",
    "S_CASH", "S_ENTRY", "S_ENTRY_BAR", "S_EXPOSURE", "S_FEES", "S_FUNDING", "S_GROSS_LOSS", "S_GROSS_WIN",
    "S_INPOS", "S_LIQS", "S_LP", "S_LP0", "S_MARGIN", "S_MARGIN0", "S_PEND_ENTRY", "S_PEND_EXIT", "S_PHASE",
    "S_PRICED_MARGIN", "S_QTY", "S_REJECTED", "S_REPRICES", "S_STATUS", "S_STOP", "S_TP", "S_TRADES",
    "S_TRADE_FEES", "S_TRADE_FUND", "S_WINS", "T_COL", "T_ENTRY", "T_ENTRY_BAR", "T_EXIT", "T_EXIT_BAR",
    "T_FEES", "T_FUNDING", "T_LEV", "T_LP", "T_LP_ENTRY", "T_MARGIN", "T_MARGIN_EXIT", "T_PNL", "T_QTY",
    "T_REASON", "T_SIDE", "T_STALE", "linear_pnl_nb", "simulate_nb",
]  # fmt: skip
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
def _close_nb(st, c, tr, nt, i, price, reason, fee_rate, lev, side, liq_fee=0.0):
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
def _liquidate_nb(st, c, tr, nt, i, liq_fee_rate, fee_rate, lev, s):
    qty, lp = st[c, S_QTY], st[c, S_LP]
    left = st[c, S_MARGIN] + linear_pnl_nb(s, qty, st[c, S_ENTRY], lp)  # margin left at the price
    lfee = min(liq_fee_rate * qty * lp, max(left, 0.0))
    st[c, S_LIQS] += 1
    _close_nb(st, c, tr, nt, i, lp, R_LIQ, fee_rate, lev, s, lfee)


@njit(cache=True)
def _pay_funding_nb(st, c, value, s):
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
def _slip_nb(slippage, by_range, o, h, lo):
    if by_range:
        return slippage * (h - lo) / o if o > 0 else 0.0
    return slippage


@njit(cache=True)
def simulate_nb(
    open_, high, low, close, trig_open, trig_high, trig_low, liq_open, liq_high, liq_low, funding_open,
    funding_inside, entries, exits, sig_col, exit_col, side, leverage, stop_pct, tp_pct, time_stop, size_risk,
    size_value, fee_rate, slippage, slip_by_range, liq_fee_rate, lp_in, lp_ok, st, equity, tr, nt,
):  # fmt: skip
    """One pass of the bar loop. One function on purpose (about 150 lines): the phases 0 to 3 of a bar share the
    column's state and a paused column resumes at its phase; split up, that state would travel through a dozen
    arguments of every step.

    Advance every column until it needs a liquidation price (NEED_LP at an entry, NEED_REPRICE after funding
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
                if st[c, S_INPOS] == 1.0 and st[c, S_ENTRY_BAR] < i and _pay_funding_nb(st, c, funding_open[i], s):
                    if st[c, S_MARGIN] <= 0.0:
                        _liquidate_nb(st, c, tr, nt, i, liq_fee_rate, fee_rate, lev, s)
            if phase == 1:
                phase = 2
                if st[c, S_INPOS] == 1.0 and st[c, S_PEND_EXIT] > 0:
                    px = open_[i] * (1.0 - s * _slip_nb(slippage, slip_by_range, open_[i], high[i], low[i]))
                    _close_nb(st, c, tr, nt, i, px, int(st[c, S_PEND_EXIT]) - 1, fee_rate, lev, s)
                if st[c, S_INPOS] == 0.0 and st[c, S_PEND_ENTRY] == 1.0:
                    st[c, S_PEND_ENTRY] = 0.0
                    cash = st[c, S_CASH]
                    px = open_[i] * (1.0 + s * _slip_nb(slippage, slip_by_range, open_[i], high[i], low[i]))
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
                if st[c, S_INPOS] == 1.0 and _pay_funding_nb(st, c, funding_inside[i], s):
                    if st[c, S_MARGIN] <= 0.0:
                        _liquidate_nb(st, c, tr, nt, i, liq_fee_rate, fee_rate, lev, s)
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
                slip = _slip_nb(slippage, slip_by_range, open_[i], high[i], low[i])
                if (s > 0 and liq_open[i] <= lp) or (s < 0 and liq_open[i] >= lp):
                    _liquidate_nb(st, c, tr, nt, i, liq_fee_rate, fee_rate, lev, s)
                elif (s > 0 and trig_open[i] <= stop) or (s < 0 and trig_open[i] >= stop):
                    _close_nb(st, c, tr, nt, i, open_[i] * (1.0 - s * slip), R_STOP, fee_rate, lev, s)
                elif (s > 0 and trig_open[i] >= tp) or (s < 0 and trig_open[i] <= tp):
                    _close_nb(st, c, tr, nt, i, open_[i] * (1.0 - s * slip), R_TP, fee_rate, lev, s)
                else:
                    liq_hit = (s > 0 and liq_low[i] <= lp) or (s < 0 and liq_high[i] >= lp)
                    stop_hit = (s > 0 and trig_low[i] <= stop) or (s < 0 and trig_high[i] >= stop)
                    if liq_hit and stop_hit:  # the level nearer to the open is reached first
                        d_liq = s * (liq_open[i] - lp) / liq_open[i]
                        d_stop = s * (trig_open[i] - stop) / trig_open[i]
                        liq_hit = d_liq < d_stop
                        stop_hit = not liq_hit
                    if liq_hit:
                        _liquidate_nb(st, c, tr, nt, i, liq_fee_rate, fee_rate, lev, s)
                    elif stop_hit:
                        _close_nb(st, c, tr, nt, i, stop * (1.0 - s * slip), R_STOP, fee_rate, lev, s)
                    elif (s > 0 and trig_high[i] >= tp) or (s < 0 and trig_low[i] <= tp):
                        _close_nb(st, c, tr, nt, i, tp * (1.0 - s * slip), R_TP, fee_rate, lev, s)
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
            px = close[j] * (1.0 - s * _slip_nb(slippage, slip_by_range, close[j], high[j], low[j]))
            _close_nb(st, c, tr, nt, j, px, R_END, fee_rate, lev, s)
            equity[j, c] = st[c, S_CASH]
        st[c, S_STATUS] = DONE
    return active
