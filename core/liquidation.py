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

import math
from typing import Any

import numba
import numpy as np

from . import _kernels
from ._inputs import SIDES, as_float, broadcast, choice, side_array, unflatten
from .contracts import Contract, resolve_contract, unrealized_pnl
from .errors import InputError, as_input_error
from .kernel_args import INPUT_FIELDS, OnePosition, kernel_arguments, table_arguments, table_tuple
from .messages import describe_warnings, raise_first_error
from .tiers import TierTable

MARGIN_MODES = ("isolated", "cross")
POSITION_MODES = ("one_way", "hedge")

#: The result arrays of :func:`liquidation_price` (besides ``warnings``, ``warning_flags``, ``error_code``).
RESULT_FIELDS = tuple(f for f in _kernels.OUTPUT_FIELDS if f not in ("warning_flags", "error_code"))

# Below this many rows the serial kernel wins: launching numba's thread pool costs ~0.2 ms.
PARALLEL_MIN_ROWS = 50_000

_INT_FIELDS = ("tier", "liquidation_tier", "warning_flags", "error_code")

# the kernel's table when no tier table is known (the MMR is given): one dummy tier; the override is used for every row
_OVERRIDE_TABLE = TierTable(np.zeros(1), np.full(1, np.inf), np.full(1, np.nan), np.zeros(1), np.zeros(1))


def other_positions_sum(other_positions: Any, exchange: str, symbol: str | None) -> float:
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
    contract = resolve_contract(exchange, symbol, contract_type, contract_size, maintenance_margin_rate, tiers)
    rules, symbol, contract_type, contract_size, table = contract[:5]
    cross = margin_mode == "cross"
    if cross and wallet_balance is None:
        raise InputError("wallet_balance", "required for cross margin")
    if not cross and other_positions:
        raise InputError("other_positions", "only used with cross margin")
    other = other_positions_sum(other_positions, exchange, symbol) if cross else 0.0
    fee = rules.default_taker_fee if taker_fee_rate is None else taker_fee_rate
    if table is None and maintenance_margin_rate is None:
        raise InputError("maintenance_margin_rate", "required when no tier table is known")
    use_table = _OVERRIDE_TABLE if table is None else table
    if fields is None:
        row = _one_row(
            side=side, entry_price=entry_price, quantity=quantity, leverage=leverage, margin=margin,
            mark_price=mark_price, wallet_balance=wallet_balance, other_positions=other,
            maintenance_margin_rate=maintenance_margin_rate, maintenance_amount=maintenance_amount,
            taker_fee_rate=fee, contract_size=1.0 if contract_size is None else contract_size,
        )  # fmt: skip
        if row is not None:
            if maintenance_amount is not None and maintenance_margin_rate is None:
                raise InputError("maintenance_amount", "only used together with maintenance_margin_rate")
            return _price_one(row, contract_type, cross, rules, use_table, table, raise_errors)
    args = {
        "side": side_array(side, validate=False),  # the kernel checks each row (row errors when not raising)
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
        "contract_size": _contract_sizes(contract, as_float("contract_size", contract_size, default=1.0)),
    }
    if maintenance_amount is not None and maintenance_margin_rate is None:
        raise InputError("maintenance_amount", "only used together with maintenance_margin_rate")
    shape, a = broadcast(args)
    n = int(np.prod(shape)) if shape else 1
    wanted = _wanted(fields)
    kernel = _kernel_for(
        contract_type, cross, rules, use_table, parallel=n >= PARALLEL_MIN_ROWS and numba.get_num_threads() > 1
    )
    with _kernels.KERNEL_LOCK:
        # One position: reuse the preallocated buffers (read into Python scalars before the lock is released)
        out = _kernels.SCALAR_OUTPUTS if shape == () and wanted is None else _kernels.empty_outputs(n, wanted)
        kernel(*kernel_arguments(n, a, table_arguments(use_table), out))
        if wanted is not None:
            out = {k: v for k, v in out.items() if k in wanted or k == "error_code"}
        res = unflatten(out, shape, _INT_FIELDS)
    if raise_errors:
        raise_first_error(np.asarray(res["error_code"]).reshape(-1), shape, a)
    if "warning_flags" in res:
        res["warnings"] = describe_warnings(res["warning_flags"])
    uses_table = table is not None and (maintenance_margin_rate is None or np.isnan(a["maintenance_margin_rate"]).any())
    res["tiers_as_of"] = table.as_of if uses_table else None
    res["tiers_source"] = table.source if uses_table else None
    return res


_ONE = OnePosition()
_MMR_INDEX = INPUT_FIELDS.index("maintenance_margin_rate")
_NUMBER_TYPES = (float, int, np.float64)


def _one_row(**inputs: Any) -> list[float] | None:
    """One position's kernel inputs (named as in :data:`~core.kernel_args.INPUT_FIELDS`) as Python floats in
    that order, when
    every input is one number (or a side name, or not given): what :func:`as_float`, :func:`side_array`
    and :func:`broadcast` give for such input, without their arrays. None for anything else (arrays, other
    types, a NaN fee or contract size, integers a float cannot hold exactly): the general path takes it."""
    row = [inputs[k] for k in INPUT_FIELDS]
    side = row[0]
    if type(side) is str:
        side = row[0] = SIDES.get(side)
    if side is None:  # not a side name, or not given: side_array words the error
        return None
    for i, v in enumerate(row):
        t = type(v)
        if t is float:
            continue
        if v is None:
            row[i] = math.nan
        elif t in _NUMBER_TYPES and (t is not int or -(2**53) <= v <= 2**53):
            row[i] = float(v)
        else:
            return None
    if math.isnan(row[-2]) or math.isnan(row[-1]):  # taker fee and contract size: filled or refused below
        return None
    return row


def _price_one(
    row: list[float], contract_type: str, cross: bool, rules: Any, use_table: TierTable, table: Any, raise_errors: bool
) -> dict[str, Any]:
    """:func:`liquidation_price` of one position given as :func:`_one_row`: the same kernel on length-1
    buffers filled and read in one step each, the same result dict (Python scalars) as the general path."""
    kernel = _kernel_for(contract_type, cross, rules, use_table)
    table_args = table_tuple(use_table)
    with _kernels.KERNEL_LOCK:
        _ONE.fill(row)
        kernel(*_ONE.head, *table_args, *_ONE.tail)
        res = _ONE.results()
    if raise_errors and res["error_code"]:
        a = {k: np.array([v]) for k, v in zip(INPUT_FIELDS, row, strict=True)}
        raise_first_error(np.array([res["error_code"]], dtype=np.uint8), (), a)
    res["warnings"] = describe_warnings(res["warning_flags"])
    uses_table = table is not None and math.isnan(row[_MMR_INDEX])
    res["tiers_as_of"] = table.as_of if uses_table else None
    res["tiers_source"] = table.source if uses_table else None
    return res


def _kernel_for(contract_type: str, cross: bool, rules: Any, table: TierTable, parallel: bool = False):
    """The compiled kernel configuration for a contract type, margin mode, ruleset and tier table basis."""
    return _kernels.liquidation_kernel(
        contract_type == "inverse",
        cross,
        rules.mm_basis == "entry",
        rules.retier,
        rules.fee_in_mm,
        rules.close_fee_in_mm,
        table.basis == "quantity",
        parallel=parallel,
    )


def _wanted(fields: Any) -> frozenset[str] | None:
    if fields is None:
        return None
    if isinstance(fields, str) or not all(isinstance(f, str) for f in fields):
        raise InputError("fields", "must be a list of output names")
    unknown = set(fields) - set(_kernels.OUTPUT_FIELDS)
    if unknown:
        raise InputError(
            "fields", f"unknown output {sorted(unknown)[0]!r}; allowed: {', '.join(_kernels.OUTPUT_FIELDS)}"
        )
    return frozenset(fields)


def _contract_sizes(contract: Contract, sizes: np.ndarray) -> np.ndarray:
    """An inverse contract's sizes with the rows not given (NaN, in a batch) filled from the symbol."""
    if contract.contract_type != "inverse" or not np.isnan(sizes).any():
        return sizes
    if contract.instrument is None or contract.instrument.contract_size is None:
        raise InputError("contract_size", "required for an inverse contract the ruleset does not know")
    return _fill(sizes, contract.instrument.contract_size)


def _fill(arr: np.ndarray, default: float) -> np.ndarray:
    """NaN entries ("not given" in a batch row) replaced by ``default``; no copy when there are none."""
    return np.where(np.isnan(arr), default, arr) if np.isnan(arr).any() else arr


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
