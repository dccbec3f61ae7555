"""Liquidation and bankruptcy prices: single positions (isolated or cross) and cross accounts
(one-way or hedge mode).

The equation
------------
Every ruleset in :mod:`core.rulesets` liquidates on **mark price** when the margin balance falls to the
maintenance margin. With ``s`` = +1 long / −1 short, ``Q`` size (base units; inverse: ``V = Q·CS`` USD),
``EP`` entry price, ``M`` the margin backing the position (isolated margin, or for cross the wallet balance
less the other positions' maintenance margin plus their unrealised PnL, Binance's ``WB − TMM1 + UPNL1``)
and a maintenance margin written as ``a·value(P) + b``:

* linear  ``M + s·Q·(P − EP) = a·Q·P + b``      →  ``P = (s·Q·EP + b − M) / (Q·(s − a))``
* inverse ``M + s·V·(1/EP − 1/P) = a·V/P + b``  →  ``P = V·(a + s) / (M − b + s·V/EP)``

(inverse balances in coin). With ``a = MMR``, ``b = −cum`` this is the Binance USDⓈ-M/COIN-M formula
(https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93,
https://www.binance.com/en/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46) and Hyperliquid's
(``a = 1/(2·max_lev)``); with ``a = MMR + f``, ``b = 0`` it is OKX's and Gate's; with ``a = 0``,
``b = entry value·MMR − deduction`` it is Bybit's. The **bankruptcy price** is the same equation with a
zero maintenance margin (``a`` = the close fee rate where the ruleset charges one at bankruptcy).

Where the tier at the liquidation price differs from the tier at entry and the ruleset says so (Binance,
Hyperliquid), the price is solved with the tier that is consistent at the liquidation price (unique,
because ``notional·MMR − cum`` is continuous in notional) and a warning says so.

A long whose margin covers the loss down to a price of zero (and an inverse short whose margin covers any
rise) has no liquidation price: NaN, with the ``no_liquidation`` warning.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from . import _kernels as K
from ._inputs import as_float, broadcast, choice, first_bad, side_array, unflatten
from .errors import InputError, as_input_error
from .rulesets import Ruleset, get_ruleset
from .tiers import Instrument, TierTable, instrument, partial_message, table_from_rows

CONTRACT_TYPES = ("linear", "inverse")
MARGIN_MODES = ("isolated", "cross")
POSITION_MODES = ("one_way", "hedge")

ERRORS = {
    K.ERR_SIDE: ("side", "must be long or short (+1 / -1)"),
    K.ERR_ENTRY: ("entry_price", "must be a finite number > 0"),
    K.ERR_QTY: ("quantity", "must be a finite number > 0"),
    K.ERR_LEV: ("leverage", "must be a finite number >= 1"),
    K.ERR_LEV_MAX: ("leverage", "above the maximum leverage of the position's tier"),
    K.ERR_MARGIN: ("margin", "must be a finite number > 0"),
    K.ERR_LEV_MISSING: ("leverage", "required for isolated margin when margin is not given"),
    K.ERR_WALLET: ("wallet_balance", "must be a finite number >= 0"),
    K.ERR_MARK: ("mark_price", "must be a finite number > 0"),
    K.ERR_MMR: ("maintenance_margin_rate", "must be a decimal rate in [0, 1)"),
    K.ERR_AMOUNT: ("maintenance_amount", "must be a finite number"),
    K.ERR_FEE: ("taker_fee_rate", "must be a decimal rate in [0, 1)"),
    K.ERR_CSIZE: ("contract_size", "must be a finite number > 0"),
    K.ERR_TOO_LARGE: ("quantity", "the position is larger than the last tier's cap"),
    K.ERR_PARTIAL: (
        "tiers",
        "the position is beyond the known rows of a partial tier table; the exchange's further tiers are not "
        "known here, so none is invented: give the current table in `tiers`, or load it with "
        "`liqrisk tiers refresh` into LIQRISK_TIERS_DIR",
    ),
    K.ERR_OTHER: ("other_positions", "must sum to finite maintenance margin and unrealised PnL"),
    K.ERR_OVERFLOW: ("quantity", "quantity x price is outside the range that can be computed (overflow or underflow)"),
}

WARNINGS = {
    K.W_TIER_CHANGED: (
        "tier_changed",
        "the notional at the liquidation price falls in another tier than at entry; the liquidation price "
        "was solved with the tier at the liquidation price (Binance rule)",
    ),
    K.W_NO_LIQUIDATION: (
        "no_liquidation",
        "the margin covers the position's loss at any price (a long down to zero), so there is no liquidation price",
    ),
    K.W_BEYOND_MARK: ("beyond_mark", "the mark price is already at or beyond the liquidation price"),
    K.W_IMPLIED_LEVERAGE: (
        "implied_leverage_above_max",
        "notional / margin exceeds the tier's maximum leverage; the exchange would not open this position",
    ),
    K.W_RETIER_FAILED: (
        "tier_not_consistent",
        "no tier is consistent at the liquidation price; the entry tier was used",
    ),
}

#: The result arrays of :func:`liquidation_price` (besides ``warnings``, ``warning_flags``, ``error_code``).
RESULT_FIELDS = tuple(f for f in K.OUTPUT_FIELDS if f not in ("warning_flags", "error_code"))

# Below this many rows the serial kernel wins: launching numba's thread pool costs ~0.2 ms.
PARALLEL_MIN_ROWS = 50_000

_INT_FIELDS = ("tier", "liquidation_tier", "warning_flags", "error_code")


def resolve_contract(
    exchange: str,
    symbol: str | None,
    contract_type: str | None,
    contract_size: Any,
    maintenance_margin_rate: Any,
    tiers: Any,
) -> tuple[Ruleset, str | None, str, Any, TierTable | None]:
    """Ruleset, symbol, contract type, contract size and tier table for a request.

    A symbol the ruleset does not know is accepted when ``maintenance_margin_rate`` or ``tiers`` is given
    (and ``contract_size`` for inverse contracts); otherwise ``ValueError`` naming ``symbol``.
    """
    rules = get_ruleset(exchange)
    if symbol is None:
        symbol = rules.default_symbol
    if symbol is not None and not isinstance(symbol, str):
        raise InputError("symbol", "must be a string")
    inst: Instrument | None = None
    if symbol is not None and exchange != "generic":
        try:
            inst = instrument(exchange, symbol)
        except ValueError:
            if maintenance_margin_rate is None and tiers is None:
                raise
    elif exchange == "generic" and maintenance_margin_rate is None and tiers is None:
        raise InputError("maintenance_margin_rate", "required for the generic ruleset (or give tiers)")
    if contract_type is None:
        contract_type = inst.contract_type if inst else "linear"
    choice("contract_type", contract_type, CONTRACT_TYPES)
    if inst and inst.contract_type != contract_type:
        raise InputError("contract_type", f"{symbol} on {exchange} is {inst.contract_type}, not {contract_type}")
    if contract_type == "inverse" and contract_size is None:
        if inst is None or inst.contract_size is None:
            raise InputError("contract_size", "required for an inverse contract the ruleset does not know")
        contract_size = inst.contract_size
    table = table_from_rows(tiers) if tiers is not None else (inst.tiers if inst else None)
    return rules, symbol, contract_type, contract_size, table


def _other_sum(other_positions: Any, exchange: str, symbol: str | None) -> float:
    """Σ unrealised PnL − Σ maintenance margin of the other positions in the cross wallet
    (Binance ``UPNL1 − TMM1``). Items are ``{maintenance_margin, unrealized_pnl}`` summaries or full
    positions ``{symbol, side, entry_price, quantity, mark_price, [maintenance_margin_rate, ...]}``."""
    if other_positions is None:
        return 0.0
    if not isinstance(other_positions, list | tuple):
        raise InputError("other_positions", "must be a list")
    total = 0.0
    for i, pos in enumerate(other_positions):
        if not isinstance(pos, dict):
            raise InputError(f"other_positions[{i}]", "must be an object")
        if "maintenance_margin" in pos or "unrealized_pnl" in pos:
            try:
                mm = float(pos.get("maintenance_margin", 0.0))
                upnl = float(pos.get("unrealized_pnl", 0.0))
            except (TypeError, ValueError):
                raise InputError(
                    f"other_positions[{i}]", "maintenance_margin and unrealized_pnl must be numbers"
                ) from None
            if not (np.isfinite(mm) and np.isfinite(upnl)) or mm < 0:
                raise InputError(f"other_positions[{i}]", "maintenance_margin must be >= 0 and both finite")
            total += upnl - mm
        else:
            if pos.get("symbol", symbol) == symbol and symbol is not None:
                raise InputError(
                    f"other_positions[{i}].symbol",
                    "a position in the same symbol shares the liquidation price "
                    "in cross margin (hedge mode); use portfolio_liquidation / POST /v1/portfolio/liquidation",
                )
            try:
                p = position_margin(exchange=exchange, **pos)
            except ValueError as exc:
                raise as_input_error(exc).within(f"other_positions[{i}]") from None
            total += p["unrealized_pnl"] - p["maintenance_margin"]
    return total


def liquidation_price(
    *,
    side: Any,
    entry_price: Any,
    quantity: Any,
    leverage: Any = None,
    margin: Any = None,
    exchange: str = "binance",
    symbol: str | None = None,
    contract_type: str | None = None,
    contract_size: Any = None,
    margin_mode: str = "isolated",
    position_mode: str = "one_way",
    wallet_balance: Any = None,
    mark_price: Any = None,
    maintenance_margin_rate: Any = None,
    maintenance_amount: Any = None,
    tiers: Any = None,
    taker_fee_rate: Any = None,
    other_positions: Any = None,
    raise_errors: bool = True,
    fields: Any = None,
) -> dict[str, Any]:
    """Liquidation price, bankruptcy price and margins of one or many positions (broadcast together).

    Parameters
    ----------
    side : "long"/"short", ±1, or an array of either.
    entry_price : average entry price, quote currency per base unit (> 0).
    quantity : base-asset units (linear) or number of contracts (inverse) (> 0).
    leverage : initial leverage (≥ 1, ≤ the tier's maximum); required for isolated without ``margin``.
    margin : isolated margin in the margin currency (quote for linear, coin for inverse), including any
        added margin; defaults to ``notional at entry / leverage``.
    exchange : binance, bybit, okx, gate, hyperliquid or generic (see :mod:`core.rulesets`).
    symbol : the exchange's instrument name (Binance ``BTCUSDT``/``BTCUSD_PERP``, Bybit ``BTCUSDT``/
        ``BTCUSD``, OKX ``BTC-USDT-SWAP``, Gate ``BTC_USDT``, Hyperliquid ``BTC``); selects tiers and the
        contract spec. Unknown symbols need ``maintenance_margin_rate`` or ``tiers``.
    contract_type : "linear" or "inverse"; defaults from the symbol.
    contract_size : inverse only, USD per contract; defaults from the symbol.
    margin_mode : "isolated" or "cross".
    position_mode : "one_way" or "hedge" (for a single isolated position the formulas agree; cross hedge
        legs of one symbol are solved together by :func:`portfolio_liquidation`).
    wallet_balance : cross only, the cross wallet balance in the margin currency (≥ 0).
    mark_price : current mark price (default ``entry_price``), for the maintenance margin and distance.
    maintenance_margin_rate, maintenance_amount : overrides (decimal; margin currency); no tier lookup is
        made and no leverage cap is checked. Hyperliquid: ``MMR = 1/(2·asset max leverage)``.
    tiers : a custom tier table (list of dicts, see :mod:`core.tiers`).
    taker_fee_rate : decimal; used by rulesets whose condition includes a fee (OKX, Gate, generic: added to
        the MMR; Bybit: estimated close fee at the bankruptcy price). Default: the ruleset's.
    other_positions : cross only: the other positions sharing the wallet, as
        ``{maintenance_margin, unrealized_pnl}`` or full positions.
    raise_errors : if False, invalid rows give NaN and a non-zero ``error_code`` instead of raising.
    fields : optional subset of the output names to compute (e.g. ``("liquidation_price", "tier")``); the
        kernel then writes only those arrays, which is what makes very large batches cheap. Default: all.

    Returns
    -------
    dict
        ``liquidation_price`` and ``bankruptcy_price`` (quote per base unit; NaN where none),
        ``notional`` (value at mark price: quote for linear, coin for inverse), ``initial_margin``
        (notional at entry / leverage), ``maintenance_margin`` (at mark price), ``maintenance_margin_rate``,
        ``maintenance_amount``, ``tier`` (1-based entry tier, 0 when overridden), ``liquidation_tier``,
        ``max_leverage``, ``distance_pct`` (percent of mark price left before liquidation, signed: negative
        once beyond), ``warning_flags`` and ``warnings`` (scalar input: a list of ``{code, message}``;
        arrays: ``{code: indices}``), ``error_code`` (0 = valid), ``tiers_as_of`` and ``tiers_source`` (the
        tier table used; both None when the MMR was given, ``tiers_as_of`` None also for an undated table).

    Raises
    ------
    ValueError
        naming the first invalid argument (and the first bad index for arrays).
    """
    choice("margin_mode", margin_mode, MARGIN_MODES)
    choice("position_mode", position_mode, POSITION_MODES)
    rules, symbol, contract_type, contract_size, table = resolve_contract(
        exchange, symbol, contract_type, contract_size, maintenance_margin_rate, tiers
    )
    cross = margin_mode == "cross"
    if cross and wallet_balance is None:
        raise InputError("wallet_balance", "required for cross margin")
    if not cross and other_positions:
        raise InputError("other_positions", "only used with cross margin")
    other = _other_sum(other_positions, exchange, symbol) if cross else 0.0
    fee = rules.default_taker_fee if taker_fee_rate is None else taker_fee_rate
    if table is None and maintenance_margin_rate is None:
        raise InputError("maintenance_margin_rate", "required when no tier table is known")
    use_table = table
    if use_table is None:  # dummy one-tier table; the MMR override is used for every row
        use_table = TierTable(np.zeros(1), np.full(1, np.inf), np.full(1, np.nan), np.zeros(1), np.zeros(1))
    args = {
        "side": side_array(side),
        "entry_price": as_float("entry_price", entry_price),
        "quantity": as_float("quantity", quantity),
        "leverage": as_float("leverage", leverage),
        "margin": as_float("margin", margin),
        "mark_price": as_float("mark_price", mark_price),
        "wallet_balance": as_float("wallet_balance", wallet_balance),
        "other_positions": np.asarray(other, dtype=np.float64),
        "maintenance_margin_rate": as_float("maintenance_margin_rate", maintenance_margin_rate),
        "maintenance_amount": as_float("maintenance_amount", maintenance_amount),
        "taker_fee_rate": _fill(as_float("taker_fee_rate", fee), rules.default_taker_fee),
        "contract_size": as_float("contract_size", contract_size, default=1.0),
    }
    if contract_type == "inverse" and np.isnan(args["contract_size"]).any():
        default_cs = _default_contract_size(exchange, symbol)
        if default_cs is None:
            raise InputError("contract_size", "required for an inverse contract the ruleset does not know")
        args["contract_size"] = _fill(args["contract_size"], default_cs)
    if maintenance_amount is not None and maintenance_margin_rate is None:
        raise InputError("maintenance_amount", "only used together with maintenance_margin_rate")
    shape, a = broadcast(args)
    n = int(np.prod(shape)) if shape else 1
    wanted = _wanted(fields)
    kernel = K.liquidation_kernel(
        contract_type == "inverse",
        cross,
        rules.mm_basis == "entry",
        rules.retier,
        rules.fee_in_mm,
        rules.close_fee_in_mm,
        use_table.basis == "quantity",
        parallel=n >= PARALLEL_MIN_ROWS and numba.get_num_threads() > 1,
    )
    with K.KERNEL_LOCK:
        # One position: reuse the preallocated buffers (read into Python scalars before the lock is released)
        out = K.SCALAR_OUTPUTS if shape == () and wanted is None else K.empty_outputs(n, wanted)
        kernel(
            n,
            a["side"],
            a["entry_price"],
            a["quantity"],
            a["leverage"],
            a["margin"],
            a["mark_price"],
            a["wallet_balance"],
            a["other_positions"],
            a["maintenance_margin_rate"],
            a["maintenance_amount"],
            a["taker_fee_rate"],
            a["contract_size"],
            *use_table.kernel_bounds,
            use_table.max_leverage,
            use_table.mmr,
            use_table.amount,
            use_table.complete,
            *out.values(),
        )
        if wanted is not None:
            out = {k: v for k, v in out.items() if k in wanted or k == "error_code"}
        res = unflatten(out, shape, _INT_FIELDS)
    if raise_errors:
        _raise_first_error(np.asarray(res["error_code"]).reshape(-1), shape, a)
    if "warning_flags" in res:
        res["warnings"] = describe_warnings(res["warning_flags"])
    uses_table = table is not None and (maintenance_margin_rate is None or np.isnan(a["maintenance_margin_rate"]).any())
    res["tiers_as_of"] = table.as_of if uses_table else None
    res["tiers_source"] = table.source if uses_table else None
    return res


def _wanted(fields: Any) -> frozenset[str] | None:
    if fields is None:
        return None
    if isinstance(fields, str) or not all(isinstance(f, str) for f in fields):
        raise InputError("fields", "must be a list of output names")
    unknown = set(fields) - set(K.OUTPUT_FIELDS)
    if unknown:
        raise InputError("fields", f"unknown output {sorted(unknown)[0]!r}; allowed: {', '.join(K.OUTPUT_FIELDS)}")
    return frozenset(fields)


def _fill(arr: np.ndarray, default: float) -> np.ndarray:
    """NaN entries ("not given" in a batch row) replaced by ``default``; no copy when there are none."""
    return np.where(np.isnan(arr), default, arr) if np.isnan(arr).any() else arr


def _default_contract_size(exchange: str, symbol: str | None) -> float | None:
    try:
        return instrument(exchange, symbol).contract_size if symbol else None
    except ValueError:
        return None


def _raise_first_error(codes: np.ndarray, shape: tuple[int, ...], a: dict[str, np.ndarray]) -> None:
    if not codes.any():
        return
    i = int(np.argmax(codes != 0))
    field, message = ERRORS.get(int(codes[i]), ("body", "the position could not be computed"))
    where = first_bad((codes != 0).reshape(shape)) if shape else ""
    if codes[i] == K.ERR_LEV_MAX:
        lev = a["leverage"][0 if a["leverage"].size == 1 else i]
        message = f"{lev:g} is above the maximum leverage of the position's tier"
    kind = "too_large" if codes[i] in (K.ERR_TOO_LARGE, K.ERR_PARTIAL) else "invalid"
    rows = np.flatnonzero(codes == codes[i]) if shape else None
    raise InputError(field, f"{message}{where}", kind=kind, rows=rows)


def describe_errors(error_code: Any) -> list[InputError]:
    """The rows of each error code of a ``raise_errors=False`` result, as one (unraised) :class:`InputError`
    per code in code order, with the code's field, message and ``rows`` (flat indices)."""
    flat = np.asarray(error_code).reshape(-1)
    out = []
    for code in np.unique(flat[flat != 0]).tolist():
        field, message = ERRORS.get(code, ("body", "the position could not be computed"))
        kind = "too_large" if code in (K.ERR_TOO_LARGE, K.ERR_PARTIAL) else "invalid"
        out.append(InputError(field, message, kind=kind, rows=np.flatnonzero(flat == code)))
    return out


def describe_warnings(flags: Any) -> Any:
    """Scalar flags → list of ``{code, message}``; array flags → ``{code: flat indices}``."""
    if isinstance(flags, int | np.integer):
        return [{"code": code, "message": msg} for bit, (code, msg) in WARNINGS.items() if flags & bit]
    flat = np.asarray(flags).reshape(-1)
    if not flat.any():
        return {}
    return {code: np.flatnonzero(flat & bit) for bit, (code, _) in WARNINGS.items() if (flat & bit).any()}


def position_margin(
    *,
    exchange: str = "binance",
    symbol: str | None = None,
    side: Any,
    entry_price: Any,
    quantity: Any,
    mark_price: Any = None,
    contract_type: str | None = None,
    contract_size: Any = None,
    maintenance_margin_rate: Any = None,
    maintenance_amount: Any = None,
    tiers: Any = None,
    **_ignored: Any,
) -> dict[str, Any]:
    """Maintenance margin (at mark price, the symbol's tier) and unrealised PnL of positions, in the
    margin currency. Used for the other positions of a cross wallet (Binance ``TMM1``, ``UPNL1``)."""
    res = liquidation_price(
        side=side,
        entry_price=entry_price,
        quantity=quantity,
        leverage=1.0,
        exchange=exchange,
        symbol=symbol,
        contract_type=contract_type,
        contract_size=contract_size,
        mark_price=mark_price,
        maintenance_margin_rate=maintenance_margin_rate,
        maintenance_amount=maintenance_amount,
        tiers=tiers,
    )
    from .contracts import unrealized_pnl

    _, ct, cs = resolve_contract(exchange, symbol, contract_type, contract_size, maintenance_margin_rate, tiers)[1:4]
    upnl = unrealized_pnl(
        side=side_array(side),
        entry_price=as_float("entry_price", entry_price),
        mark_price=as_float("mark_price", entry_price if mark_price is None else mark_price),
        quantity=as_float("quantity", quantity),
        contract_type=ct,
        contract_size=1.0 if cs is None else cs,
    )
    return {"maintenance_margin": res["maintenance_margin"], "unrealized_pnl": upnl}


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

    summed over the symbol's legs; generalised to every ruleset by ``a``/``b`` as in this module's
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
    cols = _columns(positions)
    n = len(cols["symbol"])
    sym = np.asarray(cols["symbol"], dtype=object)
    s = side_array(cols["side"]).astype(float) * np.ones(n)
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
    if np.any(~np.isin(s, (1.0, -1.0))):
        raise InputError(f"positions[{int(np.argmax(~np.isin(s, (1.0, -1.0))))}].side", "must be long or short")
    bad = ~np.isnan(mmr_o) & ~((mmr_o >= 0) & (mmr_o < 1))
    if bad.any():
        raise InputError(f"positions[{int(np.argmax(bad))}].maintenance_margin_rate", "must be in [0, 1)")
    key = np.array([f"{a}|{b}" for a, b in zip(sym, s, strict=True)])
    if len(np.unique(key)) < n and position_mode == "hedge":
        raise InputError("positions", "hedge mode allows one long and one short position per symbol")
    if len(np.unique(sym)) < n and position_mode == "one_way":
        raise InputError("positions", "one-way mode allows one position per symbol (use position_mode hedge)")
    fee = rules.default_taker_fee if rules.fee_in_mm else 0.0
    tables: dict[str, TierTable | None] = {}
    names, inverse, counts = np.unique(sym, return_inverse=True, return_counts=True)
    by_symbol = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])  # rows per symbol
    for name, idx in zip(names, by_symbol, strict=True):
        if np.all(~np.isnan(mmr_o[idx])):
            tables[name] = None
            continue
        try:
            inst = instrument(exchange, name)
        except ValueError as exc:
            raise as_input_error(exc).within(f"positions[{int(idx[0])}]") from None
        if inst.contract_type != "linear":
            raise InputError(f"positions[{int(idx[0])}].symbol", "portfolio liquidation supports linear contracts only")
        tables[name] = inst.tiers
    other = _other_sum(other_positions, exchange, None)

    def tier_params(price: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mmr = mmr_o.copy()
        amt = np.where(np.isnan(amt_o), 0.0, amt_o)
        tier = np.zeros(n, dtype=int)
        for name, table in tables.items():
            if table is None:
                continue
            idx = np.flatnonzero((sym == name) & np.isnan(mmr_o))
            value = q[idx] if table.basis == "quantity" else q[idx] * price[idx]
            t = table.lookup(value)
            if not table.complete and np.any(t >= len(table)):
                raise InputError(
                    f"positions[{int(idx[np.argmax(t >= len(table))])}].tiers", partial_message(table), kind="too_large"
                )
            t = np.minimum(t, len(table) - 1)
            mmr[idx], amt[idx], tier[idx] = table.mmr[t], table.amount[t], t + 1
        return mmr, amt, tier

    mmr, amt, tier = tier_params(mk)
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
        num = np.bincount(inv, weights=s * q * ep + b, minlength=len(groups)) - rest
        den = np.bincount(inv, weights=q * (s - a), minlength=len(groups))
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = num / den
        lp = np.where(np.isfinite(lp) & (lp > 0), lp, np.nan)
        if not rules.retier:
            break
        mmr_new, amt_new, _ = tier_params(np.where(np.isnan(lp[inv]), mk, lp[inv]))
        if np.array_equal(mmr_new, mmr_l):
            break
        if not warnings:
            warnings.append(dict(zip(("code", "message"), WARNINGS[K.W_TIER_CHANGED], strict=True)))
        mmr_l, amt_l = mmr_new, amt_new
    if np.any(np.isnan(lp)):
        warnings.append(dict(zip(("code", "message"), WARNINGS[K.W_NO_LIQUIDATION], strict=True)))
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
        "tiers_as_of": [tables[name].as_of if tables[name] is not None else None for name in sym],
        "unrealized_pnl": upnl,
        "notional": notional,
        "wallet_balance": wb,
        "margin_balance": float(margin_balance),
        "total_maintenance_margin": float(total_mm),
        "margin_ratio": float(ratio),
        "warnings": warnings,
    }


def _columns(positions: Any) -> dict[str, Any]:
    """Positions as columns: accepts a list of dicts or a dict of arrays."""
    if isinstance(positions, dict):
        cols = dict(positions)
    elif isinstance(positions, list | tuple):
        if not positions:
            raise InputError("positions", "must not be empty")
        keys = {
            "symbol",
            "side",
            "entry_price",
            "quantity",
            "mark_price",
            "maintenance_margin_rate",
            "maintenance_amount",
        }
        cols = {}
        for i, p in enumerate(positions):
            if not isinstance(p, dict):
                raise InputError(f"positions[{i}]", "must be an object")
            unknown = set(p) - keys
            if unknown:
                raise InputError(f"positions[{i}].{sorted(unknown)[0]}", "unknown field")
        for k in keys:
            vals = [p.get(k) for p in positions]
            if k in ("symbol", "side"):
                cols[k] = vals
            elif any(v is not None for v in vals):
                cols[k] = [np.nan if v is None else v for v in vals]
    else:
        raise InputError("positions", "must be a list of positions or a dict of arrays")
    for k in ("symbol", "side", "entry_price", "quantity"):
        if k not in cols or cols[k] is None:
            raise InputError(f"positions.{k}", "required")
    cols["symbol"] = list(np.atleast_1d(np.asarray(cols["symbol"], dtype=object)))
    if any(not isinstance(x, str) for x in cols["symbol"]):
        raise InputError("positions.symbol", "must be strings")
    return cols
