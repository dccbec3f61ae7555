"""Generic ruleset: the caller supplies the maintenance margin rate (and optionally a maintenance amount
and a taker fee that is added to the MMR in the liquidation condition).

It solves ``margin + side·Q·(LP − EP) = Q·LP·(MMR + f) − maintenance_amount`` (linear; the inverse form
uses ``1/LP``), i.e. the Binance equation with a fee term — the same closed form as OKX/Gate when
``maintenance_amount = 0`` (``docs/formulas.md`` §3, §6, §7, §9), and the single-position solution of dYdX v4's
margin condition, https://docs.dydx.exchange/concepts-trading/margin (our derivation; dYdX publishes none).
"""

from . import Ruleset

RULESET = Ruleset(
    name="generic",
    mm_basis="mark",
    retier=False,
    fee_in_mm=True,
    close_fee_in_mm=False,
    default_taker_fee=0.0,
    source="https://docs.dydx.exchange/concepts-trading/margin",
    default_symbol=None,
)
