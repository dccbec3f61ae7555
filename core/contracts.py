"""Contract arithmetic shared by every calculator: position value and PnL of linear and inverse
contracts.

Sources: Binance "How to Use Binance Futures Calculator" (https://www.binance.com/en/support/faq/360036498511):
USDⓈ-M ``PnL = side·Q·(exit − EP)`` in quote currency; COIN-M ``PnL = side·N·CS·(1/EP − 1/exit)`` in coin.
"""

from __future__ import annotations

from typing import Any


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
