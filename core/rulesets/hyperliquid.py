"""Hyperliquid perpetuals (USDC-margined, linear).

Sources
-------
* https://hyperliquid.gitbook.io/hyperliquid-docs/trading/liquidations : maintenance margin is half the
  initial margin at the asset's max leverage, ``MM = notional/(2·max_lev)``;
  ``liq_price = price − side·margin_available/position_size/(1 − l·side)``, ``l = 1/(2·max_lev)``;
  isolated ``margin_available = isolated_margin − MM``; cross ``margin_available = account_value − MM``.
  Official estimator: ``hyperliquid-dex/ts-examples`` ``examples/LiquidationPx.tsx``.
* https://hyperliquid.gitbook.io/hyperliquid-docs/trading/margin-tiers : ``MM = notional·MMR_tier −
  deduction``, ``MMR_tier = 1/(2·max_lev_tier)``, deductions by the same recurrence as Binance's cum, so
  the maintenance margin is continuous and the tier at the liquidation price is used (``retier``).
* Checked against 29 real ``liquidationPx`` values of the Hyperliquid API (freqtrade
  ``tests/exchange/test_hyperliquid.py``), max relative deviation 3.5e-5.
* For a user-supplied asset max leverage ``L`` pass ``maintenance_margin_rate = 1/(2·L)``.
"""

from . import Ruleset

RULESET = Ruleset(
    name="hyperliquid",
    mm_basis="mark",
    retier=True,
    fee_in_mm=False,
    close_fee_in_mm=False,
    default_taker_fee=0.00045,
    source="https://hyperliquid.gitbook.io/hyperliquid-docs/trading/liquidations",
    default_symbol="BTC",
)
