"""Fused numba kernels: one pass over the positions computes validation codes, tiers, margins,
bankruptcy and liquidation prices (the closed forms are documented in :mod:`core.liquidation`; the tier
lookup, value, margin and solve are the shared primitives of :mod:`core.solve_nb`).

Every array argument is 1-D with length 1 (a broadcast scalar, read at index 0) or length ``n``; the
``_at_nb`` helper picks the element. Kernels follow vectorbt's convention: ``_nb`` suffix, ``cache=True``.
"""

from __future__ import annotations

import math
import os
import threading

import numpy as np

# numba's "workqueue" thread pool is fork-safe (GNU OpenMP is not: a gunicorn worker or a
# multiprocessing child of a process that ran a parallel kernel aborts). It is not safe for concurrent
# launches from several Python threads, so kernel calls hold KERNEL_LOCK.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
KERNEL_LOCK = threading.Lock()

from numba import njit, prange  # noqa: E402  (after the threading layer is chosen)

from . import lean_cache  # noqa: E402
from .solve_nb import (  # noqa: E402
    SOURCE_DIGEST,
    maintenance_margin_nb,
    position_value_nb,
    solve_price_nb,
    tier_index_nb,
)

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
ERR_OVERFLOW = 16
ERR_PARTIAL = 17

# Warning bit flags.
W_TIER_CHANGED = 1
W_NO_LIQUIDATION = 2
W_BEYOND_MARK = 4
W_IMPLIED_LEVERAGE = 8
W_RETIER_FAILED = 16


@njit(cache=True, inline="always", error_model="numpy")
def _at_nb(a, i):
    return a[0] if a.shape[0] == 1 else a[i]


@njit(cache=True, inline="always", error_model="numpy")
def _put_nb(a, i, v):
    """Write ``a[i] = v``; a length-1 array is an output the caller did not ask for (only row 0 writes
    it, so threads never share its cache line)."""
    if a.shape[0] != 1:
        a[i] = v
    elif i == 0:
        a[0] = v


def _build(inverse, cross, entry_basis, retier, fee_in_mm, close_fee, qty_basis, parallel):
    """Compile the kernel for one ruleset configuration. The flags are closure constants, so numba
    removes the branches a configuration never takes (and caches each configuration on disk). The solver's
    source digest is one of them too, so an edit of :mod:`core.solve_nb` recompiles the cached kernels.
    ``nogil``: the kernel touches only arrays, so it releases the interpreter lock while it runs and the
    other threads of an API worker answer their requests meanwhile.

    ``liquidation_nb`` is one function of about 190 lines on purpose: each row's checks, tier lookup, solve,
    re-tiering and outputs run in one ``prange`` body whose ~20 per-row values stay in registers; the
    arithmetic itself lives in the inline primitives of :mod:`core.solve_nb`."""
    solver_digest = SOURCE_DIGEST

    @njit(cache=True, parallel=parallel, nogil=True, error_model="numpy")
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
        complete,
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
        _ = parallel  # a closure variable, so the serial and parallel builds get distinct cache entries
        _ = solver_digest  # likewise: a changed core/solve_nb.py gives a new cache entry
        nt = floors.shape[0]
        for i in prange(n):
            err = 0
            flags = 0
            s = _at_nb(side, i)
            ep = _at_nb(entry, i)
            q = _at_nb(qty, i)
            L = _at_nb(lev, i)
            mg = _at_nb(margin, i)
            mk = _at_nb(mark, i)
            f = _at_nb(fee, i)
            cs = _at_nb(csize, i) if inverse else 1.0
            mo = _at_nb(mmr_o, i)
            ao = _at_nb(amt_o, i)
            if math.isnan(mk):
                mk = ep
            if s * s != 1.0:  # branch-free test of s in (1, -1): side is random per row
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
            n_entry = position_value_nb(inverse, q, cs, ep)
            n_mark = position_value_nb(inverse, q, cs, mk)
            if err == 0 and not (n_entry > 0.0 and n_entry < math.inf and n_mark > 0.0 and n_mark < math.inf):
                err = ERR_OVERFLOW
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
                    t = tier_index_nb(floors, caps, size)
                    tm = t if (qty_basis or mk == ep) else tier_index_nb(floors, caps, n_mark)
                    if t >= nt or tm >= nt:
                        err = ERR_TOO_LARGE if complete else ERR_PARTIAL
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
                    w = _at_nb(wallet, i)
                    o = _at_nb(other, i)
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
            lp = math.nan
            bp = math.nan
            mm = math.nan
            dist = math.nan
            liq_t = t
            if err != 0:
                n_entry = n_mark = mmr = amt = maxlev = math.nan
                t = liq_t = -1
                flags = 0
            else:
                fl = f if fee_in_mm else 0.0
                liq_t = t
                if entry_basis:
                    mm_const = maintenance_margin_nb(mmr, n_entry, amt)
                    fc = f if close_fee else 0.0
                    bp = solve_price_nb(inverse, s, q, cs, ep, m, fc, 0.0)
                    b = mm_const
                    if fc > 0.0 and not math.isnan(bp):
                        b += fc * position_value_nb(inverse, q, cs, bp)
                    lp = solve_price_nb(inverse, s, q, cs, ep, m, 0.0, b)
                    mm = mm_const
                else:
                    bp = solve_price_nb(inverse, s, q, cs, ep, m, fl, 0.0)
                    lp = solve_price_nb(inverse, s, q, cs, ep, m, mmr + fl, -amt)
                    if retier and t >= 0 and not qty_basis:
                        # Solve with the tier that holds at the liquidation price. A NaN with the entry tier
                        # can still have a solution in a lower tier (smaller maintenance amount).
                        stale = math.isnan(lp)
                        if not stale:
                            # two comparisons, not a lookup; past the last cap the last tier applies (the cap
                            # only limits opening)
                            v_lp = position_value_nb(inverse, q, cs, lp)
                            stale = v_lp < floors[t] or (v_lp >= caps[t] and t < nt - 1)
                        if stale:
                            had_price = not math.isnan(lp)
                            found = False
                            for k in range(nt):
                                cand = solve_price_nb(inverse, s, q, cs, ep, m, t_mmr[k] + fl, -t_amt[k])
                                # past the last cap the last tier applies (the cap only limits opening)
                                if (
                                    not math.isnan(cand)
                                    and min(
                                        tier_index_nb(floors, caps, position_value_nb(inverse, q, cs, cand)), nt - 1
                                    )
                                    == k
                                ):
                                    lp = cand
                                    liq_t = k
                                    found = True
                                    break
                            if found:
                                flags |= W_TIER_CHANGED
                            elif had_price:
                                flags |= W_RETIER_FAILED
                    mm = maintenance_margin_nb(mmr_m, n_mark, amt_m)
                if math.isnan(lp):
                    flags |= W_NO_LIQUIDATION
                    dist = math.nan
                else:
                    dist = s * (mk - lp) / mk * 100.0
                    if dist <= 0.0:
                        flags |= W_BEYOND_MARK
            _put_nb(err_out, i, err)
            _put_nb(lp_out, i, lp)
            _put_nb(bp_out, i, bp)
            _put_nb(notional_out, i, n_mark)
            _put_nb(im_out, i, n_entry / L if not math.isnan(L) else (mg if not cross and err == 0 else math.nan))
            _put_nb(mm_out, i, mm)
            _put_nb(mmr_out, i, mmr)
            _put_nb(amt_out, i, amt)
            _put_nb(tier_out, i, t + 1)
            _put_nb(maxlev_out, i, maxlev)
            _put_nb(dist_out, i, dist)
            _put_nb(liq_tier_out, i, liq_t + 1)
            _put_nb(flags_out, i, flags)

    return lean_cache.mark(liquidation_nb)


_KERNELS: dict[tuple[bool, ...], object] = {}


def liquidation_kernel(inverse, cross, entry_basis, retier, fee_in_mm, close_fee, qty_basis, parallel=False):
    """The compiled kernel for a configuration (built once per process, loaded from numba's cache)."""
    key = (
        bool(inverse),
        bool(cross),
        bool(entry_basis),
        bool(retier),
        bool(fee_in_mm),
        bool(close_fee),
        bool(qty_basis),
        bool(parallel),
    )
    kernel = _KERNELS.get(key)
    if kernel is None:
        kernel = _KERNELS[key] = _build(*key)
    return kernel


OUTPUT_FIELDS = (
    "liquidation_price",
    "bankruptcy_price",
    "notional",
    "initial_margin",
    "maintenance_margin",
    "maintenance_margin_rate",
    "maintenance_amount",
    "tier",
    "max_leverage",
    "distance_pct",
    "liquidation_tier",
    "warning_flags",
    "error_code",
)
_SMALL_INTS = {"tier": np.int16, "liquidation_tier": np.int16, "warning_flags": np.uint8, "error_code": np.uint8}


def empty_outputs(n: int, fields: frozenset[str] | None = None) -> dict[str, np.ndarray]:
    """Output buffers in kernel argument order: length ``n`` for the wanted fields (all when ``fields`` is
    None; ``error_code`` always), length 1 for the others (the kernel skips them)."""
    out = {}
    for name in OUTPUT_FIELDS:
        size = n if (fields is None or name in fields or name == "error_code") else 1
        out[name] = np.empty(size, dtype=_SMALL_INTS.get(name, np.float64))
    return out


SCALAR_OUTPUTS = empty_outputs(1)  # reused by single-position calls, under KERNEL_LOCK
