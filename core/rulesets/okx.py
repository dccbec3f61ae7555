"""OKX perpetual swaps (USDT-margined linear and coin-margined inverse).

Sources
-------
* OKX help "How do I use the liquidation price calculator?",
  https://www.okx.com/help/how-do-i-use-the-liquidation-price-calculator (2024-07-03), and OKX's margin-ratio
  definition: liquidation when ``margin ratio = (margin + UPL) / (FV·|n|·mark·(MMR + f)) ≤ 100 %``
  (coin-margined: ``FV·|n|/mark·(MMR + f)``).
* Solved: linear long ``LP = (EP − M/Q)/(1 − MMR − f)``, short ``LP = (EP + M/Q)/(1 + MMR + f)``;
  inverse long ``LP = (1 + MMR + f)/(1/EP + M/(FV·n))``, short ``(1 − MMR − f)/(1/EP − M/(FV·n))``
  (freqtrade's generic ``dry_run_liquidation_price``). The fee is part of the condition (``fee_in_mm``);
  default taker fee 0.05 %.
* Position tiers are by position size (contracts), with no maintenance deduction; the tier is the one at
  entry (size does not change with price).
"""

from . import Ruleset

RULESET = Ruleset(
    name="okx",
    mm_basis="mark",
    retier=False,
    fee_in_mm=True,
    close_fee_in_mm=False,
    default_taker_fee=0.0005,
    source="https://www.okx.com/help/how-do-i-use-the-liquidation-price-calculator",
    default_symbol="BTC-USDT-SWAP",
)
