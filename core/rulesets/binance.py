"""Binance USDⓈ-M (linear) and COIN-M (inverse) futures.

Sources
-------
* "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts",
  https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93 — one-way:
  ``LP = (WB − TMM1 + UPNL1 + cum − side·Q·EP) / (Q·MMR − side·Q)``; hedge mode adds the LONG and SHORT
  legs' terms; isolated: ``WB`` = isolated wallet balance, ``TMM1 = UPNL1 = 0``; LP < 0 shown as "--".
* "How to Calculate Liquidation Price of COIN-M Futures Contracts",
  https://www.binance.com/en/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46 — inverse:
  ``LP = (N·MMR + side·N) / ((WB − TMM1 + UPNL1 + cum)/CS + side·N/EP)`` (balances in coin), and: *if the
  bracket at the liquidation price differs from the bracket at the opening price, use the bracket at the
  liquidation price* — applied here to both USDⓈ-M and COIN-M (``retier``), with a warning.
* Maintenance margin ``notional × MMR − cum`` from the leverage brackets (GET /fapi/v1/leverageBracket).
* No fee term in the liquidation price; fees and funding enter only through the wallet balance.
"""

from . import Ruleset

RULESET = Ruleset(
    name="binance",
    mm_basis="mark",
    retier=True,
    fee_in_mm=False,
    close_fee_in_mm=False,
    default_taker_fee=0.0005,
    source="https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93",
    default_symbol="BTCUSDT",
)
