"""Contracts: which contract a request means (:func:`resolve_contract`, the one place that reads the
contract type, contract size and tier table from the exchange and symbol), and the arithmetic every
calculator shares: position value and PnL of linear and inverse contracts.

Sources: Binance "How to Use Binance Futures Calculator" (https://www.binance.com/en/support/faq/360036498511):
USDⓈ-M ``PnL = side·Q·(exit − EP)`` in quote currency; COIN-M ``PnL = side·N·CS·(1/EP − 1/exit)`` in coin.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ._inputs import choice
from .errors import InputError
from .rulesets import Ruleset, get_ruleset
from .tiers import Instrument, TierTable, instrument, table_from_rows

CONTRACT_TYPES = ("linear", "inverse")


class Contract(NamedTuple):
    """A request's contract: ruleset, symbol, ``contract_type``, ``contract_size`` (USD per contract for
    inverse; as given, else the symbol's; None for linear), its tier table (None when unknown) and the
    packaged or loaded :class:`~core.tiers.Instrument` (None for a symbol the ruleset does not know)."""

    rules: Ruleset
    symbol: str | None
    contract_type: str
    contract_size: Any
    tiers: TierTable | None
    instrument: Instrument | None


def resolve_contract(
    exchange: str,
    symbol: str | None,
    contract_type: str | None,
    contract_size: Any,
    maintenance_margin_rate: Any = None,
    tiers: Any = None,
    *,
    margin: bool = True,
) -> Contract:
    """The contract of a request, from its exchange and symbol and the fields that override them.

    ``contract_type`` defaults from the symbol (else linear) and must agree with it; an inverse contract
    takes ``contract_size`` from the symbol unless given. ``tiers`` (rows) replaces the symbol's table.

    With ``margin=True`` (prices that need maintenance margin: liquidation, max open, the backtester) a
    missing symbol is the ruleset's default one, and a symbol the ruleset does not know is accepted when
    ``maintenance_margin_rate`` or ``tiers`` is given (and ``contract_size`` for inverse contracts). With
    ``margin=False`` (PnL, funding, break-even) the symbol only supplies the contract type and size: no
    default symbol, and an unknown one is refused.

    Raises :class:`~core.errors.InputError` naming ``symbol`` (kind ``unknown`` when the ruleset does not
    know it), ``exchange``, ``contract_type``, ``contract_size`` or ``maintenance_margin_rate``.
    """
    rules = get_ruleset(exchange)
    if symbol is None and margin:
        symbol = rules.default_symbol
    if symbol is not None and not isinstance(symbol, str):
        raise InputError("symbol", "must be a string")
    inst: Instrument | None = None
    if not margin:
        inst = instrument(exchange, symbol) if symbol is not None else None
    elif symbol is not None and exchange != "generic":
        try:
            inst = instrument(exchange, symbol)
        except InputError:
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
            if not margin:
                raise InputError(
                    "contract_size", "required for inverse contracts (USD per contract) unless symbol is given"
                )
            raise InputError("contract_size", "required for an inverse contract the ruleset does not know")
        contract_size = inst.contract_size
    table = table_from_rows(tiers) if tiers is not None else (inst.tiers if inst else None)
    return Contract(rules, symbol, contract_type, contract_size, table, inst)


def position_value(quantity: Any, price: Any, contract_type: str, contract_size: Any = 1.0) -> Any:
    """Value of a position at ``price`` in its margin currency.

    Linear: ``Q·price`` (quote currency; Q in base units). Inverse: ``N·CS/price`` (coin; N contracts of
    CS USD each).
    """
    if contract_type == "inverse":
        return quantity * contract_size / price
    return quantity * price


def unrealized_pnl(
    *, side: Any, entry_price: Any, mark_price: Any, quantity: Any, contract_type: str, contract_size: Any = 1.0
) -> Any:
    """PnL of closing at ``mark_price``: linear ``s·Q·(mark − EP)`` (quote), inverse
    ``s·N·CS·(1/EP − 1/mark)`` (coin)."""
    if contract_type == "inverse":
        return side * quantity * contract_size * (1.0 / entry_price - 1.0 / mark_price)
    return side * quantity * (mark_price - entry_price)
