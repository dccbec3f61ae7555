"""Liquidation prices of a whole cross-margin account (one-way or hedge mode): every position's price
solved with the others held at their mark prices, the legs of one symbol together. The equation is the
one of :mod:`core.liquidation`, summed over a symbol's legs, and solved with the single-position kernel's own
primitives (:mod:`core.solve_nb`: tier lookup, maintenance margin, the linear solve)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import _kernels
from ._inputs import as_float, choice, side_array
from .contracts import resolve_contract
from .errors import InputError, as_input_error
from .fields import PORTFOLIO_POSITION_FIELDS, PORTFOLIO_POSITION_REQUIRED
from .liquidation import POSITION_MODES, other_positions_sum
from .messages import WARNINGS
from .rulesets import get_ruleset
from .solve_nb import held_tiers_nb, shared_prices_nb
from .tier_table import TierTable, partial_message


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
    docstring. Tiers are re-read at the liquidation price until stable (Binance rule); a symbol with no price at
    its mark price's tiers is tried at other tiers too (:func:`_other_tiers`), as the single-position kernel does.

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
    fee = float(rules.default_taker_fee) if rules.fee_in_mm else 0.0

    book = _tier_book(tables, len(sym))
    mmr, amt, tier = _tier_params(book, q, mmr_o, amt_o, mk)
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
        lp = shared_prices_nb(inv, s, q, ep, entry_basis, fee, mmr_l, amt_l, rest)
        if not rules.retier:
            break
        mmr_new, amt_new, _ = _tier_params(book, q, mmr_o, amt_o, np.where(np.isnan(lp[inv]), mk, lp[inv]))
        if np.array_equal(mmr_new, mmr_l):
            break
        if not warnings:
            warnings.append(dict(zip(("code", "message"), WARNINGS[_kernels.W_TIER_CHANGED], strict=True)))
        mmr_l, amt_l = mmr_new, amt_new
    if rules.retier and np.any(np.isnan(lp)):
        lp, found = _other_tiers(lp, inv, s, q, ep, mk, mmr_o, amt_o, book, entry_basis, fee, mmr_l, amt_l, rest)
        if found and not warnings:
            warnings.append(dict(zip(("code", "message"), WARNINGS[_kernels.W_TIER_CHANGED], strict=True)))
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


#: trial prices for :func:`_other_tiers`: the mark price times 2^-k and 2^k, nearest first
_TRIAL_FACTORS = np.array([f for k in range(1, 41) for f in (0.5**k, 2.0**k)])


def _other_tiers(lp, inv, s, q, ep, mk, mmr_o, amt_o, book, entry_basis, fee, mmr_l, amt_l, rest):
    """Symbols with no liquidation price at the tiers of their mark price may still have one at another tier:
    a long near 1x leverage has none with its entry tier's maintenance amount, but reaches the first tier's
    margin far below (Binance re-reads the tier at the liquidation price). Each such symbol is solved again
    with its legs' tiers at trial prices (the mark price halved or doubled, nearest first); the first
    solution whose own price gives back the tiers it was solved with is taken. Returns the prices per symbol
    and whether any changed."""
    lp = lp.copy()
    missing = np.isnan(lp)
    found = False
    for factor in _TRIAL_FACTORS:
        legs = missing[inv]
        if not legs.any():
            break
        try:
            mmr_t, amt_t, _ = _tier_params(book, q, mmr_o, amt_o, mk * factor)
        except InputError:  # past a partial table's last cap: no tier to try there
            continue
        mmr_try, amt_try = np.where(legs, mmr_t, mmr_l), np.where(legs, amt_t, amt_l)
        trial = shared_prices_nb(inv, s, q, ep, entry_basis, fee, mmr_try, amt_try, rest)
        solved = missing & ~np.isnan(trial) & (trial > 0)
        if not solved.any():
            continue
        try:
            mmr_c, amt_c, _ = _tier_params(book, q, mmr_o, amt_o, np.where(solved[inv], trial[inv], mk))
        except InputError:
            continue
        same = (mmr_c == mmr_try) & (amt_c == amt_try)
        consistent = np.bincount(inv, weights=(~same).astype(float), minlength=len(lp)) == 0
        take = solved & consistent
        lp[take] = trial[take]
        missing &= ~take
        found = found or bool(take.any())
    return lp, found


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


class _TierBook(NamedTuple):
    """The tables of a portfolio stacked for :func:`core.solve_nb.held_tiers_nb` (its argument names)."""

    tables: list[TierTable]
    order: np.ndarray
    table_of: np.ndarray
    starts: np.ndarray
    floors: np.ndarray
    caps: np.ndarray
    complete: np.ndarray
    qty_basis: np.ndarray
    mmr: np.ndarray
    amount: np.ndarray


def _tier_book(tables: dict[str, tuple[TierTable | None, np.ndarray]], n: int) -> _TierBook:
    """The tables of :func:`_tier_tables` stacked: each table's rows (kernel bounds, MMR, amount) one after
    another, the table of each of the ``n`` legs (−1: none), and the legs to price in table order."""
    used = [(table, rows) for table, rows in tables.values() if table is not None]
    table_of = np.full(n, -1, dtype=np.int64)
    for k, (_, rows) in enumerate(used):
        table_of[rows] = k
    empty = np.zeros(0)

    def stack(arrays: list[np.ndarray], dtype: Any = np.float64) -> np.ndarray:
        return np.ascontiguousarray(np.concatenate(arrays) if arrays else empty, dtype=dtype)

    return _TierBook(
        tables=[table for table, _ in used],
        order=stack([rows for _, rows in used], np.int64),
        table_of=table_of,
        starts=np.cumsum([0] + [len(table) for table, _ in used], dtype=np.int64),
        floors=stack([table.kernel_bounds[0] for table, _ in used]),
        caps=stack([table.kernel_bounds[1] for table, _ in used]),
        complete=np.array([table.complete for table, _ in used], dtype=np.bool_),
        qty_basis=np.array([table.basis == "quantity" for table, _ in used], dtype=np.bool_),
        mmr=stack([table.mmr for table, _ in used]),
        amount=stack([table.amount for table, _ in used]),
    )


def _tier_params(
    book: _TierBook, q: np.ndarray, mmr_o: np.ndarray, amt_o: np.ndarray, price: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MMR, maintenance amount and 1-based tier (0: given MMR) of each position held at ``price``
    (:func:`core.solve_nb.held_tiers_nb`: the kernel's tier lookup; past the last cap the last tier applies)."""
    mmr = mmr_o.copy()
    amt = np.where(np.isnan(amt_o), 0.0, amt_o)
    tier = np.zeros(len(q), dtype=np.int64)
    beyond = held_tiers_nb(
        book.order,
        book.table_of,
        book.starts,
        book.floors,
        book.caps,
        book.complete,
        book.qty_basis,
        q,
        price,
        book.mmr,
        book.amount,
        mmr,
        amt,
        tier,
    )
    if beyond >= 0:
        table = book.tables[book.table_of[beyond]]
        raise InputError(f"positions[{beyond}].tiers", partial_message(table), kind="too_large")
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
