"""The liquidation equation's jitted pieces, shared by every solver: the tier lookup, a position's value, its
maintenance margin and the price where ``margin + PnL(P) = a·value(P) + b``, for one position (the kernel of
:mod:`core._kernels`) and for legs that share one price (:func:`core.portfolio.portfolio_liquidation`).

The equation, and ``a``/``b`` per ruleset, are in :mod:`core.liquidation`'s docstring and ``docs/formulas.md``
(Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts",
https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93). Prices in quote currency per base
unit; values in the margin currency (quote for linear, coin for inverse).

The primitives are ``inline="always"``: numba pastes them into the million-position kernel, which so pays no
call. numba's on-disk cache of a caller does not see edits to this file, so :data:`SOURCE_DIGEST` (a hash of
it) is a closure constant of the kernel, part of its cache key: an edit here recompiles the kernel too.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
from numba import njit

from . import lean_cache

#: hash of this file's text; the kernel (:func:`core._kernels.liquidation_kernel`) holds it as a constant
SOURCE_DIGEST = int(hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:15], 16)


@njit(cache=True, inline="always", error_model="numpy")
def tier_index_nb(floors, caps, value):
    """0-based tier for ``floor <= value < cap``; ``len`` when beyond the last cap (tier 0 below the first
    floor, and for NaN). Counts the floors at or below ``value`` without branching, so random tiers cost no
    branch mispredictions.

    Inclusive caps (Bybit, Gate, OKX: ``floor < value <= cap``, see :mod:`core.tier_table`) use the same rule
    on bounds moved up by one ulp (:attr:`core.tier_table.TierTable.kernel_bounds`): for doubles,
    ``value > x`` exactly when ``value >= nextafter(x, +inf)``.
    """
    nt = floors.shape[0]
    k = 0
    for j in range(1, nt):
        k += value >= floors[j]
    if value >= caps[nt - 1]:
        k = nt
    return k


@lean_cache.mark
@njit(cache=True, error_model="numpy")
def tier_indices_nb(floors, caps, values):
    """:func:`tier_index_nb` of each of ``values`` (1-D), as int64."""
    out = np.empty(values.shape[0], dtype=np.int64)
    for i in range(values.shape[0]):
        out[i] = tier_index_nb(floors, caps, values[i])
    return out


@njit(cache=True, inline="always", error_model="numpy")
def position_value_nb(inverse, q, cs, price):
    """Position value at ``price``: quote units (linear, ``Q·P``) or coin (inverse, ``Q·CS/P``)."""
    if inverse:
        return q * cs / price
    return q * price


@njit(cache=True, inline="always", error_model="numpy")
def maintenance_margin_nb(mmr, value, amount):
    """Maintenance margin ``MMR·value − amount`` (the tier's maintenance amount, Binance's ``cum``)."""
    return mmr * value - amount


@njit(cache=True, inline="always", error_model="numpy")
def positive_price_nb(p):
    """``p`` when it is a price (positive and finite), else NaN (no liquidation price)."""
    if p > 0.0 and p < math.inf:
        return p
    return math.nan


@njit(cache=True, inline="always", error_model="numpy")
def linear_price_nb(legs_num, rest, legs_den):
    """The linear equation solved for legs that share one price: with ``legs_num = Σ (s·Q·EP + b)``,
    ``legs_den = Σ Q·(s − a)`` over the legs and ``rest`` the margin held outside them,
    ``rest + Σ s·Q·(P − EP) = Σ (a·Q·P + b)`` gives ``P = (legs_num − rest)/legs_den``. One leg with
    ``rest`` its margin is the single-position solve (:func:`solve_price_nb`)."""
    return positive_price_nb((legs_num - rest) / legs_den)


@njit(cache=True, inline="always", error_model="numpy")
def solve_price_nb(inverse, s, q, cs, ep, margin, a, b):
    """Price P with ``margin + PnL(P) = a·value(P) + b``; NaN where none is positive and finite.

    Linear: ``P = (s·Q·EP + b − M)/(Q·(s − a))``; inverse (``V = Q·CS``):
    ``P = V·(a + s)/(M − b + s·V/EP)``.
    """
    if inverse:
        v = q * cs
        den = margin - b + s * v / ep
        return positive_price_nb(v * (a + s) / den if den != 0.0 else math.inf)
    return linear_price_nb(s * q * ep + b, margin, q * (s - a))


@lean_cache.mark
@njit(cache=True, error_model="numpy")
def shared_prices_nb(group, side, q, ep, entry_basis, fee, mmr, amount, rest):
    """One price per group of linear legs that move together (the legs of one symbol), where the margin left
    reaches the legs' maintenance margin: :func:`linear_price_nb` over each group's legs.

    The legs' ``a``/``b`` are the kernel's: ``a = 0``, ``b = MMR·Q·EP − amount`` when the maintenance margin is
    fixed at entry value (``entry_basis``), else ``a = MMR + fee``, ``b = −amount``. Binance's hedge-mode formula
    is ``a = MMR``, ``b = −cum``.

    Parameters
    ----------
    group : int64, the group index of each leg (0 … len(rest) − 1).
    side, q, ep : per leg: ±1; base units; quote per base unit.
    entry_basis : bool; fee : the taker fee rate counted in the maintenance margin (decimal).
    mmr, amount : per leg: maintenance margin rate (decimal) and maintenance amount (quote).
    rest : per group: the margin the account holds outside the group, quote.
    """
    n_groups = rest.shape[0]
    num = np.zeros(n_groups)
    den = np.zeros(n_groups)
    for i in range(group.shape[0]):
        if entry_basis:
            a = 0.0
            b = maintenance_margin_nb(mmr[i], q[i] * ep[i], amount[i])
        else:
            a = mmr[i] + fee
            b = -amount[i]
        g = group[i]
        num[g] += side[i] * q[i] * ep[i] + b
        den[g] += q[i] * (side[i] - a)
    out = np.empty(n_groups)
    for g in range(n_groups):
        out[g] = linear_price_nb(num[g], rest[g], den[g])
    return out


@lean_cache.mark
@njit(cache=True, error_model="numpy")
def held_tiers_nb(order, table_of, starts, floors, caps, complete, qty_basis, q, price, t_mmr, t_amt, mmr, amt, tier):
    """Tier, MMR and maintenance amount of each leg held at ``price``, written into ``tier`` (1-based),
    ``mmr`` and ``amt`` for the legs with a table; past the last cap of a complete table the last tier applies
    (the cap limits opening a position, not keeping it; the kernel re-tiers by the same rule).

    Leg ``i`` uses table ``k = table_of[i]`` (−1: it gave its own MMR), whose rows are ``starts[k] :
    starts[k + 1]`` of the stacked ``floors``, ``caps`` (:attr:`~core.tier_table.TierTable.kernel_bounds`),
    ``t_mmr`` and ``t_amt``; the lookup value is the size ``q`` (``qty_basis[k]``) or the notional ``q·price``.
    Legs are visited in ``order``. Returns the first leg beyond the known rows of a partial table (nothing of
    it written), or −1.
    """
    for i in order:
        k = table_of[i]
        if k < 0:
            continue
        lo = starts[k]
        nt = starts[k + 1] - lo
        value = q[i] if qty_basis[k] else q[i] * price[i]
        t = tier_index_nb(floors[lo : lo + nt], caps[lo : lo + nt], value)
        if t >= nt:
            if not complete[k]:
                return i
            t = nt - 1
        mmr[i] = t_mmr[lo + t]
        amt[i] = t_amt[lo + t]
        tier[i] = t + 1
    return -1
