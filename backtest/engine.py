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

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

import core

from .engine_nb import *  # noqa: F403 (callers read results by the layout's names: engine.T_EXIT, ...)
from .engine_nb import (
    N_STATE,
    N_TRADE,
    NEED_LP,
    NEED_REPRICE,
    PRICED,
    S_CASH,
    S_ENTRY,
    S_MARGIN,
    S_QTY,
    S_STATUS,
    S_STOP,
    S_TP,
    T_ENTRY,
    T_LEV,
    T_LP,
    T_MARGIN_EXIT,
    T_QTY,
    T_SIDE,
    T_STALE,
    simulate_nb,
)
from .params import SIM_DEFAULTS


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
    open timestamp and strictly inside it. Taken from the frame when it has them
    (:func:`backtest.alignment.market_frame` builds them from the funding file); else every ``funding_rate`` is
    read as an event at its bar's open, paid on the mark open."""
    if "funding_open" in frame:
        fo = np.nan_to_num(np.asarray(frame["funding_open"], dtype=np.float64))
        fi = np.nan_to_num(np.asarray(frame.get("funding_inside", np.zeros_like(fo)), dtype=np.float64))
        return np.ascontiguousarray(fo), np.ascontiguousarray(fi)
    rate = np.asarray(frame["funding_rate"], dtype=np.float64)
    fo = np.nan_to_num(rate * np.asarray(frame["mark_open"], dtype=np.float64))
    return np.ascontiguousarray(fo), np.zeros_like(fo)


def _columns(n, entries, exits, sig_col, exit_col, side, leverage, stop_pct, take_profit_pct, time_stop, size_value):
    """The signal matrices (bars × signal columns), each simulation column's entry and exit column, and the
    per-column parameters broadcast to the number of simulation columns (ValueError naming the argument)."""
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
    return entries, exits, sc, xc, s, lev, stp, tpp, tst, sv


def _check_settings(s, lev, stp, sv, size_mode, slippage_model, stop_trigger, liquidation_trigger, init_cash):
    """ValueError naming the first argument out of its range."""
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


def _liquidation_prices(side, entry, quantity, leverage, margin, exchange, symbol, maintenance_margin_rate):
    """``(price, ok)`` per position from :func:`core.liquidation_price` (isolated, ``margin`` the margin now);
    ``ok`` False where core refuses the position. No liquidation price (a long whose margin covers its
    notional) is ∓inf: never reached."""
    res = core.liquidation_price(
        side=side, entry_price=entry, quantity=quantity, leverage=leverage, margin=margin, exchange=exchange,
        symbol=symbol, maintenance_margin_rate=maintenance_margin_rate, fields=("liquidation_price",),
        raise_errors=False,
    )  # fmt: skip
    lp = np.asarray(res["liquidation_price"], dtype=float).reshape(-1)
    ok = np.asarray(res["error_code"]).reshape(-1) == 0
    return np.where(np.isnan(lp), -np.inf * side, lp), ok


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
    entries, exits, sc, xc, s, lev, stp, tpp, tst, sv = _columns(
        n, entries, exits, sig_col, exit_col, side, leverage, stop_pct, take_profit_pct, time_stop, size_value
    )
    ncol = s.shape[0]
    _check_settings(s, lev, stp, sv, size_mode, slippage_model, stop_trigger, liquidation_trigger, init_cash)
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
            lp_in[need], lp_ok[need] = _liquidation_prices(
                s[need], st[need, S_ENTRY], st[need, S_QTY], lev[need], st[need, S_MARGIN], exchange, symbol,
                maintenance_margin_rate,
            )  # fmt: skip
            st[need, S_STATUS] = PRICED
    trades = tr[: nt[0]].copy()
    stale = np.flatnonzero(trades[:, T_STALE] == 1.0)
    if stale.size:  # margin moved by funding after the last pricing: the liquidation price at exit, from core
        t = trades[stale]
        lp, ok = _liquidation_prices(t[:, T_SIDE], t[:, T_ENTRY], t[:, T_QTY], t[:, T_LEV], t[:, T_MARGIN_EXIT],
                                     exchange, symbol, maintenance_margin_rate)  # fmt: skip
        trades[stale[ok], T_LP] = lp[ok]
    return SimResult(equity, st, trades, rounds, time.perf_counter() - t0)
