"""Fused numba kernels: one pass over the positions computes validation codes, tiers, margins,
bankruptcy and liquidation prices (the closed forms are documented in :mod:`core.liquidation`).

Every array argument is 1-D with length 1 (a broadcast scalar, read at index 0) or length ``n``; the
``_at`` helper picks the element. Kernels follow vectorbt's convention: ``_nb`` suffix, ``cache=True``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Row error codes (0 = valid); core.liquidation maps them to argument names and messages.
ERR_SIDE = 1
ERR_ENTRY = 2
ERR_QTY = 3
ERR_LEV = 4
ERR_LEV_MAX = 5
ERR_MARGIN = 6
ERR_LEV_MISSING = 7
ERR_WALLET = 8
ERR_MARK = 9
ERR_MMR = 10
ERR_AMOUNT = 11
ERR_FEE = 12
ERR_CSIZE = 13
ERR_TOO_LARGE = 14
ERR_OTHER = 15

# Warning bit flags.
W_TIER_CHANGED = 1
W_NO_LIQUIDATION = 2
W_BEYOND_MARK = 4
W_IMPLIED_LEVERAGE = 8
W_RETIER_FAILED = 16


@njit(cache=True, inline="always")
def _at(a, i):
    return a[0] if a.shape[0] == 1 else a[i]


@njit(cache=True, inline="always")
def _lookup(floors, caps, value):
    """0-based tier for ``floor <= value < cap``; ``len`` when beyond the last cap."""
    nt = floors.shape[0]
    if value >= caps[nt - 1]:
        return nt
    k = 0
    while k + 1 < nt and value >= floors[k + 1]:
        k += 1
    return k


@njit(cache=True, inline="always")
def _value(inverse, q, cs, price):
    """Position value at ``price``: quote units (linear) or coin (inverse, ``q·cs/price``)."""
    if inverse:
        return q * cs / price
    return q * price


@njit(cache=True, inline="always")
def _solve(inverse, s, q, cs, ep, margin, a, b):
    """Price P with ``margin + PnL(P) = a·value(P) + b``; NaN where none is positive and finite.

    Linear: ``P = (s·Q·EP + b − M)/(Q·(s − a))``; inverse (``V = Q·CS``):
    ``P = V·(a + s)/(M − b + s·V/EP)``.
    """
    if inverse:
        v = q * cs
        den = margin - b + s * v / ep
        p = v * (a + s) / den if den != 0.0 else math.inf
    else:
        p = (s * q * ep + b - margin) / (q * (s - a))
    if p > 0.0 and p < math.inf:
        return p
    return math.nan


@njit(cache=True)
def liquidation_nb(
    n,
    side,
    entry,
    qty,
    lev,
    margin,
    mark,
    wallet,
    other,
    mmr_o,
    amt_o,
    fee,
    csize,
    floors,
    caps,
    t_maxlev,
    t_mmr,
    t_amt,
    inverse,
    cross,
    entry_basis,
    retier,
    fee_in_mm,
    close_fee,
    qty_basis,
    lp_out,
    bp_out,
    notional_out,
    im_out,
    mm_out,
    mmr_out,
    amt_out,
    tier_out,
    maxlev_out,
    dist_out,
    liq_tier_out,
    flags_out,
    err_out,
):
    nt = floors.shape[0]
    for i in range(n):
        err = 0
        flags = 0
        s = _at(side, i)
        ep = _at(entry, i)
        q = _at(qty, i)
        L = _at(lev, i)
        mg = _at(margin, i)
        mk = _at(mark, i)
        f = _at(fee, i)
        cs = _at(csize, i) if inverse else 1.0
        mo = _at(mmr_o, i)
        ao = _at(amt_o, i)
        if math.isnan(mk):
            mk = ep
        if s != 1 and s != -1:
            err = ERR_SIDE
        elif not (ep > 0.0 and ep < math.inf):
            err = ERR_ENTRY
        elif not (q > 0.0 and q < math.inf):
            err = ERR_QTY
        elif not (mk > 0.0 and mk < math.inf):
            err = ERR_MARK
        elif not (f >= 0.0 and f < 1.0):
            err = ERR_FEE
        elif inverse and not (cs > 0.0 and cs < math.inf):
            err = ERR_CSIZE
        elif not math.isnan(L) and not (L >= 1.0 and L < math.inf):
            err = ERR_LEV
        elif not math.isnan(mo) and not (mo >= 0.0 and mo < 1.0):
            err = ERR_MMR
        elif not math.isnan(ao) and not (ao > -math.inf and ao < math.inf):
            err = ERR_AMOUNT
        n_entry = _value(inverse, q, cs, ep)
        n_mark = _value(inverse, q, cs, mk)
        mmr = math.nan
        amt = math.nan
        mmr_m = math.nan
        amt_m = math.nan
        maxlev = math.nan
        t = -1
        if err == 0:
            if not math.isnan(mo):
                mmr = mo
                amt = 0.0 if math.isnan(ao) else ao
                mmr_m = mmr
                amt_m = amt
            else:
                size = q * cs if qty_basis else n_entry
                t = _lookup(floors, caps, size)
                tm = _lookup(floors, caps, q * cs if qty_basis else n_mark)
                if t >= nt or tm >= nt:
                    err = ERR_TOO_LARGE
                else:
                    mmr = t_mmr[t]
                    amt = t_amt[t]
                    maxlev = t_maxlev[t]
                    mmr_m = t_mmr[tm]
                    amt_m = t_amt[tm]
        if err == 0 and not math.isnan(L) and not math.isnan(maxlev) and L > maxlev * (1.0 + 1e-12):
            err = ERR_LEV_MAX
        m = math.nan
        if err == 0:
            if cross:
                w = _at(wallet, i)
                o = _at(other, i)
                if not (w >= 0.0 and w < math.inf):
                    err = ERR_WALLET
                elif not (o > -math.inf and o < math.inf):
                    err = ERR_OTHER
                else:
                    m = w + o
            elif not math.isnan(mg):
                if not (mg > 0.0 and mg < math.inf):
                    err = ERR_MARGIN
                else:
                    m = mg
                    if math.isnan(L) and not math.isnan(maxlev) and n_entry / mg > maxlev * (1.0 + 1e-12):
                        flags |= W_IMPLIED_LEVERAGE
            elif not math.isnan(L):
                m = n_entry / L
            else:
                err = ERR_LEV_MISSING
        err_out[i] = err
        if err != 0:
            lp_out[i] = math.nan
            bp_out[i] = math.nan
            notional_out[i] = math.nan
            im_out[i] = math.nan
            mm_out[i] = math.nan
            mmr_out[i] = math.nan
            amt_out[i] = math.nan
            tier_out[i] = 0
            maxlev_out[i] = math.nan
            dist_out[i] = math.nan
            liq_tier_out[i] = 0
            flags_out[i] = 0
            continue
        fl = f if fee_in_mm else 0.0
        liq_t = t
        if entry_basis:
            mm_const = mmr * n_entry - amt
            fc = f if close_fee else 0.0
            bp = _solve(inverse, s, q, cs, ep, m, fc, 0.0)
            b = mm_const
            if fc > 0.0 and not math.isnan(bp):
                b += fc * _value(inverse, q, cs, bp)
            lp = _solve(inverse, s, q, cs, ep, m, 0.0, b)
            mm = mm_const
        else:
            bp = _solve(inverse, s, q, cs, ep, m, fl, 0.0)
            lp = _solve(inverse, s, q, cs, ep, m, mmr + fl, -amt)
            if retier and t >= 0 and not qty_basis and not math.isnan(lp):
                t_lp = _lookup(floors, caps, _value(inverse, q, cs, lp))
                if t_lp != t:
                    found = False
                    for k in range(nt):
                        cand = _solve(inverse, s, q, cs, ep, m, t_mmr[k] + fl, -t_amt[k])
                        if not math.isnan(cand) and _lookup(floors, caps, _value(inverse, q, cs, cand)) == k:
                            lp = cand
                            liq_t = k
                            found = True
                            break
                    if found:
                        flags |= W_TIER_CHANGED
                    else:
                        flags |= W_RETIER_FAILED
            mm = mmr_m * n_mark - amt_m
        if math.isnan(lp):
            flags |= W_NO_LIQUIDATION
            dist = math.nan
        else:
            dist = s * (mk - lp) / mk * 100.0
            if dist <= 0.0:
                flags |= W_BEYOND_MARK
        lp_out[i] = lp
        bp_out[i] = bp
        notional_out[i] = n_mark
        im_out[i] = n_entry / L if not math.isnan(L) else (mg if not cross else math.nan)
        mm_out[i] = mm
        mmr_out[i] = mmr
        amt_out[i] = amt
        tier_out[i] = t + 1
        maxlev_out[i] = maxlev
        dist_out[i] = dist
        liq_tier_out[i] = liq_t + 1
        flags_out[i] = flags


@njit(cache=True)
def copy_pass_nb(arrays_out, arrays_in):  # pragma: no cover - benchmark baseline helper
    for j in range(len(arrays_in)):
        a = arrays_in[j]
        o = arrays_out[j]
        for i in range(a.shape[0]):
            o[i] = a[i]


def empty_outputs(n: int) -> dict[str, np.ndarray]:
    f8 = (
        "liquidation_price",
        "bankruptcy_price",
        "notional",
        "initial_margin",
        "maintenance_margin",
        "maintenance_margin_rate",
        "maintenance_amount",
        "max_leverage",
        "distance_pct",
    )
    out = {k: np.empty(n, dtype=np.float64) for k in f8}
    out["tier"] = np.empty(n, dtype=np.int16)
    out["liquidation_tier"] = np.empty(n, dtype=np.int16)
    out["warning_flags"] = np.empty(n, dtype=np.uint8)
    out["error_code"] = np.empty(n, dtype=np.uint8)
    return out
