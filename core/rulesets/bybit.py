"""Bybit linear (USDT/USDC) and inverse contracts, isolated margin.

Sources
-------
* "Liquidation Price (USDT Contract)", https://www.bybit.com/en/help-center/s/article/Liquidation-Price-USDT-Contract
  (classic account): ``IM = Q·EP/leverage``, ``MM = Q·EP·MMR − MM deduction``,
  ``LP_long = EP − (IM − MM)/Q − extra_margin/Q``, ``LP_short = EP + (IM − MM)/Q + extra_margin/Q``.
  The maintenance margin is taken on the **entry** value (``mm_basis = "entry"``).
  Example: 1 BTC @ 20,000, 50x, MMR 0.5 % → IM 400, MM 100, LP 19,700.
* "Liquidation Price Calculation under Isolated Mode (Unified Trading Account)",
  https://www.bybit.com/en/help-center/article/Liquidation-Price-Calculation-under-Isolated-Mode-Unified-Trading-Account
  — inverse: ``PV = contracts/EP``, ``IM = PV/leverage``, ``MM = PV·MMR − MMD``,
  ``LP_long = contracts/(PV + (IM − MM))``, ``LP_short = contracts/(PV − (IM − MM))``. The UTA versions add an
  "estimated fee to close position" to the maintenance margin; we add ``fee × value at the bankruptcy
  price`` when a ``taker_fee_rate`` is given (``close_fee_in_mm``), and nothing otherwise (the classic
  formula above, which the documented example uses).
* Legacy inverse cross, https://help.bybit.com/hc/en-us/articles/360039261334: bankruptcy price
  ``BP = (1 + f)·Q/(Q/EP + balance)``, liquidation with MM at entry plus the close fee at BP; the doc's
  example (0.5 BTC, 10,000 contracts @ 8,000, MMR 0.5 %) gives BP 5,718.57 and LP 5,739.08 by its own
  printed equation (the page prints 5,739.50).
"""

from . import Ruleset

RULESET = Ruleset(
    name="bybit",
    mm_basis="entry",
    retier=False,
    fee_in_mm=False,
    close_fee_in_mm=True,
    default_taker_fee=0.0,
    source="https://www.bybit.com/en/help-center/s/article/Liquidation-Price-USDT-Contract",
    default_symbol="BTCUSDT",
)
