"""Exchange rulesets: how each exchange turns a position into maintenance margin and a liquidation price.

Every ruleset is one instance of :class:`Ruleset`; the numbers it needs (tiers, contract sizes) live in
``core/data``. All rulesets solve the same equation, on mark price,

    margin balance (margin + unrealised PnL) = maintenance margin (+ fee terms),

with the maintenance margin written as ``a * value_at_price + b``:

* ``mm_basis == "mark"`` (Binance, OKX, Gate, Hyperliquid, generic): ``a = MMR (+ taker fee where the
  exchange includes it)``, ``b = -maintenance amount``, value taken at the liquidation price;
* ``mm_basis == "entry"`` (Bybit): ``a = 0``, ``b = entry value * MMR - MM deduction (+ estimated close
  fee)``, i.e. the maintenance margin is fixed at entry.

The closed forms live in :mod:`core.liquidation`; each module below cites its exchange's page.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ..errors import InputError

MM_BASES = ("mark", "entry")


@dataclass(frozen=True)
class Ruleset:
    """How one exchange computes maintenance margin and liquidation.

    Attributes
    ----------
    name : exchange id used in the API.
    mm_basis : "mark" (MM on the value at the liquidation price) or "entry" (MM fixed at entry value).
    retier : solve with the tier that the position falls in *at the liquidation price* (Binance's rule).
    fee_in_mm : add the taker fee rate to the MMR in the liquidation condition (OKX, Gate).
    close_fee_in_mm : add the estimated fee to close at the bankruptcy price to the MM (Bybit UTA).
    default_taker_fee : decimal per trade, used when the caller gives none and the ruleset uses a fee.
    source : the page the formulas come from.
    """

    name: str
    mm_basis: str
    retier: bool
    fee_in_mm: bool
    close_fee_in_mm: bool
    default_taker_fee: float
    source: str
    default_symbol: str | None


def get_ruleset(exchange: str) -> Ruleset:
    """The ruleset of ``exchange``; ``ValueError`` naming ``exchange`` if unknown."""
    try:
        return _registry()[exchange]
    except (KeyError, TypeError):
        raise InputError(
            "exchange", f"unknown exchange {exchange!r}; allowed: {', '.join(_registry())}", kind="unknown"
        ) from None


@cache
def _registry() -> dict[str, Ruleset]:
    from . import binance, bybit, gate, generic, hyperliquid, okx

    return {
        "binance": binance.RULESET,
        "bybit": bybit.RULESET,
        "okx": okx.RULESET,
        "gate": gate.RULESET,
        "hyperliquid": hyperliquid.RULESET,
        "generic": generic.RULESET,
    }
