"""Gate (gate.io) USDT-margined linear and BTC-settled inverse futures.

Sources
-------
* Gate help "Liquidation price / bankruptcy price",
  https://www.gate.io/help/futures/futures/27724/liquidation-price-bankruptcy-price (as quoted in freqtrade
  ``exchange.py``): linear ``LP = (EP ∓ margin/multiplier/size)/(1 ∓ (MMR + f))``; inverse
  ``LP = size·EP·(1 ± MMR ± f)/(size ± margin·EP)`` (upper sign long).
* Graded maintenance margin (Gate announcement of 2025-07-29, "risk limit becomes automatic and maintenance
  margin a gradient calculation"; its example: a 1,200,000 USDT BTC_USDT position's maintenance margin falls
  from 6,000 to 4,900 USDT): ``MM = position value × maintenance_rate − deduction`` with the tier's
  ``deduction`` from ``GET /api/v4/futures/{settle}/risk_limit_tiers``
  (https://www.gate.io/docs/developers/apiv4/#list-risk-limit-tiers, "maintenance margin quick calculation
  deduction"). With it the closed form above becomes, linear, ``LP = (EP ∓ (margin + deduction)/size)/(1 ∓ (MMR
  + f))`` — the kernels' ``a = MMR + f``, ``b = −deduction``. ``risk_limit`` is a tier's largest position value
  (inclusive).
* Taker fee used in the formula: 0.075 % (Gate customer-service answer, 2023-07-02) — the default here.
* Gate announced (2024-09-24) that liquidation now triggers on the maintenance-margin ratio, so treat the
  closed form as an estimate. The tier is the one at entry (no re-tiering rule published).
"""

from . import Ruleset

RULESET = Ruleset(
    name="gate",
    mm_basis="mark",
    retier=False,
    fee_in_mm=True,
    close_fee_in_mm=False,
    default_taker_fee=0.00075,
    source="https://www.gate.io/help/futures/futures/27724/liquidation-price-bankruptcy-price",
    default_symbol="BTC_USDT",
)
