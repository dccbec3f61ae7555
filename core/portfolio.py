"""Liquidation prices of a whole cross-margin account (one-way or hedge mode): every position's price
solved with the others held at their mark prices, the legs of one symbol together. The equation is the
one of :mod:`core.liquidation`, summed over a symbol's legs."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _kernels
from ._inputs import as_float, choice, side_array
from .contracts import resolve_contract
from .errors import InputError, as_input_error
from .fields import PORTFOLIO_POSITION_FIELDS, PORTFOLIO_POSITION_REQUIRED
from .liquidation import POSITION_MODES, other_positions_sum
from .messages import WARNINGS
from .rulesets import get_ruleset
from .tiers import TierTable, partial_message


@np.errstate(all="ignore")
def portfolio_liquidation(
    *,
    wallet_balance: float,
    positions: Any,
    exchange: str = "binance",
    position_mode: str = "one_way",
    other_positions: Any = None,
    max_iterations: int = 20,
) -> dict[str, Any]:
    """Liquidation prices of every position of one cross-margin account (linear contracts).

    Each symbol's price is solved holding the other symbols at their mark prices; positions of the same
    symbol (hedge mode LONG and SHORT legs) move together and share one price — Binance's hedge-mode
    formula (https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93):

        LP = (WB − TMM1 + UPNL1 + Σcum − Σ s·Q·EP) / (Σ Q·MMR − Σ s·Q)

    summed over the symbol's legs; generalised to every ruleset by ``a``/``b`` as in :mod:`core.liquidation`'s
    docstring. Tiers are re-read at the liquidation price until stable (Binance rule).

    Parameters
    ----------
    wallet_balance : cross wallet balance, quote currency (≥ 0).
    positions : list of position dicts, or a dict of equal-length arrays, with ``symbol``, ``side``,
        ``entry_price``, ``quantity``, optional ``mark_price`` (default entry), ``maintenance_margin_rate``,
        ``maintenance_amount``.
    exchange : the ruleset.
    position_mode : "one_way" (at most one position per symbol) or "hedge" (at most one long and one short).
    other_positions : extra ``{maintenance_margin, unrealized_pnl}`` summaries held constant.

    Returns
    -------
    dict
        Per position (arrays in input order): ``symbol``, ``side``, ``liquidation_price`` (NaN where none),
        ``maintenance_margin``, ``maintenance_margin_rate``, ``maintenance_amount``, ``tier``,
        ``tiers_as_of`` (list), ``unrealized_pnl``, ``notional``; account: ``wallet_balance``,
        ``margin_balance`` (wallet + unrealised PnL), ``maintenance_margin`` (total), ``margin_ratio``
        (total MM / margin balance; liquidation at 1; NaN when the margin balance is <= 0), ``warnings``.
    """
    choice("position_mode", position_mode, POSITION_MODES)
    rules = get_ruleset(exchange)
    wb = float(as_float("wallet_balance", wallet_balance))
    if not (np.isfinite(wb) and wb >= 0):
        raise InputError("wallet_balance", "must be a finite number >= 0")
    sym, s, ep, q, mk, mmr_o, amt_o = _legs(positions, position_mode)
    tables = _tier_tables(exchange, sym, mmr_o)
    other = other_positions_sum(other_positions, exchange, None)
    fee = rules.default_taker_fee if rules.fee_in_mm else 0.0

    mmr, amt, tier = _tier_params(tables, sym, q, mmr_o, amt_o, mk)
    notional = q * mk
    entry_basis = rules.mm_basis == "entry"
    mm = np.where(entry_basis, q * ep * mmr - amt, notional * mmr - amt)
    upnl = s * q * (mk - ep)
    margin_balance = wb + upnl.sum() + other
    total_mm = mm.sum()
    groups, inv = np.unique(sym, return_inverse=True)
    contrib = upnl - mm  # what each position adds to the margin left at current marks
    group_contrib = np.bincount(inv, weights=contrib, minlength=len(groups))
    rest = wb + other + contrib.sum() - group_contrib  # everything outside the group, per group
    warnings: list[dict[str, str]] = []
    mmr_l, amt_l = mmr, amt
    for _ in range(max_iterations):
        a = np.where(entry_basis, 0.0, mmr_l + fee)
        b = np.where(entry_basis, q * ep * mmr_l - amt_l, -amt_l)
        lp = solve_shared_price(inv, len(groups), s, q, ep, a, b, rest)
        if not rules.retier:
            break
        mmr_new, amt_new, _ = _tier_params(tables, sym, q, mmr_o, amt_o, np.where(np.isnan(lp[inv]), mk, lp[inv]))
        if np.array_equal(mmr_new, mmr_l):
            break
        if not warnings:
            warnings.append(dict(zip(("code", "message"), WARNINGS[_kernels.W_TIER_CHANGED], strict=True)))
        mmr_l, amt_l = mmr_new, amt_new
    if np.any(np.isnan(lp)):
        warnings.append(dict(zip(("code", "message"), WARNINGS[_kernels.W_NO_LIQUIDATION], strict=True)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = total_mm / margin_balance if margin_balance > 0 else np.nan
    return {
        "symbol": sym.astype(str),
        "side": np.where(s > 0, "long", "short"),
        "liquidation_price": lp[inv],
        "maintenance_margin": mm,
        "maintenance_margin_rate": mmr,
        "maintenance_amount": amt,
        "tier": tier,
        "tiers_as_of": [tables[name][0].as_of if tables[name][0] is not None else None for name in sym],
        "unrealized_pnl": upnl,
        "notional": notional,
        "wallet_balance": wb,
        "margin_balance": float(margin_balance),
        "total_maintenance_margin": float(total_mm),
        "margin_ratio": float(ratio),
        "warnings": warnings,
    }


@np.errstate(divide="ignore", invalid="ignore")
def solve_shared_price(
    group: np.ndarray,
    n_groups: int,
    side: np.ndarray,
    quantity: np.ndarray,
    entry_price: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    rest: np.ndarray,
) -> np.ndarray:
    """The one price ``P`` per group of linear legs that move together (the legs of one symbol), where the
    margin left reaches the legs' maintenance margin.

    Summed over the group's legs, with ``rest`` the margin the account holds outside the group (wallet,
    other positions' PnL less their maintenance margin): ``rest + Σ s·Q·(P − EP) = Σ (a·Q·P + b)``, so

        P = (Σ s·Q·EP + Σ b − rest) / Σ Q·(s − a)

    — the module docstring of :mod:`core.liquidation`'s linear equation summed over legs (one leg gives
    exactly the kernel's ``_solve_nb``); Binance's hedge-mode formula with ``a = MMR``, ``b = −cum``. Prices
    in quote currency; NaN where no positive finite price solves it.

    Parameters
    ----------
    group : the group index of each leg (0 … n_groups − 1).
    side, quantity, entry_price, a, b : per leg (±1; base units; quote per base unit; decimal; quote).
    rest : per group, quote currency.
    """
    num = np.bincount(group, weights=side * quantity * entry_price + b, minlength=n_groups) - rest
    den = np.bincount(group, weights=quantity * (side - a), minlength=n_groups)
    lp = num / den
    return np.where(np.isfinite(lp) & (lp > 0), lp, np.nan)


def _legs(positions: Any, position_mode: str) -> tuple[np.ndarray, ...]:
    """The positions as checked arrays ``symbol, side (±1), entry_price, quantity, mark_price (default
    entry), maintenance_margin_rate, maintenance_amount`` (NaN = from the tier table); at most one position
    per symbol in one-way mode, one long and one short in hedge mode."""
    cols = _columns(positions)
    n = len(cols["symbol"])
    sym = np.asarray(cols["symbol"], dtype=object)
    try:
        s = side_array(cols["side"]) * np.ones(n)
    except InputError as exc:
        first = 0 if exc.rows is None or exc.rows.size == 0 else int(exc.rows[0])
        raise InputError(f"positions[{first}].side", "must be long or short", rows=exc.rows) from None
    ep = as_float("positions.entry_price", cols["entry_price"]) * np.ones(n)
    q = as_float("positions.quantity", cols["quantity"]) * np.ones(n)
    mk = as_float("positions.mark_price", cols.get("mark_price")) * np.ones(n)
    mk = np.where(np.isnan(mk), ep, mk)
    mmr_o = as_float("positions.maintenance_margin_rate", cols.get("maintenance_margin_rate")) * np.ones(n)
    amt_o = as_float("positions.maintenance_amount", cols.get("maintenance_amount")) * np.ones(n)
    for name, arr in (("entry_price", ep), ("quantity", q), ("mark_price", mk)):
        bad = ~(np.isfinite(arr) & (arr > 0))
        if bad.any():
            raise InputError(f"positions[{int(np.argmax(bad))}].{name}", "must be a finite number > 0")
    bad = ~np.isnan(mmr_o) & ~((mmr_o >= 0) & (mmr_o < 1))
    if bad.any():
        raise InputError(f"positions[{int(np.argmax(bad))}].maintenance_margin_rate", "must be in [0, 1)")
    key = np.array([f"{a}|{b}" for a, b in zip(sym, s, strict=True)])
    if len(np.unique(key)) < n and position_mode == "hedge":
        raise InputError("positions", "hedge mode allows one long and one short position per symbol")
    if len(np.unique(sym)) < n and position_mode == "one_way":
        raise InputError("positions", "one-way mode allows one position per symbol (use position_mode hedge)")
    return sym, s, ep, q, mk, mmr_o, amt_o


def _tier_tables(exchange: str, sym: np.ndarray, mmr_o: np.ndarray) -> dict[str, tuple[TierTable | None, np.ndarray]]:
    """Each symbol's tier table (None when every position of it gives its own MMR) and the rows priced with
    it (those without their own MMR); linear contracts only."""
    tables: dict[str, tuple[TierTable | None, np.ndarray]] = {}
    names, inverse, counts = np.unique(sym, return_inverse=True, return_counts=True)
    by_symbol = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])  # rows per symbol
    for name, idx in zip(names, by_symbol, strict=True):
        rows = idx[np.isnan(mmr_o[idx])]
        if rows.size == 0:
            tables[name] = (None, rows)
            continue
        try:
            contract = resolve_contract(exchange, name, None, None, margin=False)
        except ValueError as exc:
            raise as_input_error(exc).within(f"positions[{int(idx[0])}]") from None
        if contract.contract_type != "linear":
            raise InputError(f"positions[{int(idx[0])}].symbol", "portfolio liquidation supports linear contracts only")
        tables[name] = (contract.tiers, rows)
    return tables


def _tier_params(
    tables: dict[str, tuple[TierTable | None, np.ndarray]],
    sym: np.ndarray,
    q: np.ndarray,
    mmr_o: np.ndarray,
    amt_o: np.ndarray,
    price: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MMR, maintenance amount and 1-based tier (0: given MMR) of each position held at ``price``
    (:meth:`~core.tiers.TierTable.held_tier`: past the last cap the last tier applies)."""
    mmr = mmr_o.copy()
    amt = np.where(np.isnan(amt_o), 0.0, amt_o)
    tier = np.zeros(len(sym), dtype=int)
    for table, idx in tables.values():
        if table is None:
            continue
        t = table.held_tier(q[idx] if table.basis == "quantity" else q[idx] * price[idx])
        if not table.complete and np.any(t >= len(table)):
            where = int(idx[np.argmax(t >= len(table))])
            raise InputError(f"positions[{where}].tiers", partial_message(table), kind="too_large")
        mmr[idx], amt[idx], tier[idx] = table.mmr[t], table.amount[t], t + 1
    return mmr, amt, tier


def _columns(positions: Any) -> dict[str, Any]:
    """Positions as columns: accepts a list of dicts or a dict of arrays."""
    if isinstance(positions, dict):
        cols = dict(positions)
    elif isinstance(positions, list | tuple):
        if not positions:
            raise InputError("positions", "must not be empty")
        keys = set(PORTFOLIO_POSITION_FIELDS)
        cols = {}
        for i, p in enumerate(positions):
            if not isinstance(p, dict):
                raise InputError(f"positions[{i}]", "must be an object")
            unknown = set(p) - keys
            if unknown:
                raise InputError(f"positions[{i}].{sorted(unknown)[0]}", "unknown field")
        for k in PORTFOLIO_POSITION_FIELDS:
            vals = [p.get(k) for p in positions]
            if k in ("symbol", "side"):
                cols[k] = vals
            elif any(v is not None for v in vals):
                cols[k] = [np.nan if v is None else v for v in vals]
    else:
        raise InputError("positions", "must be a list of positions or a dict of arrays")
    for k in PORTFOLIO_POSITION_REQUIRED:
        if k not in cols or cols[k] is None:
            raise InputError(f"positions.{k}", "required")
    cols["symbol"] = list(np.atleast_1d(np.asarray(cols["symbol"], dtype=object)))
    if any(not isinstance(x, str) for x in cols["symbol"]):
        raise InputError("positions.symbol", "must be strings")
    return cols
