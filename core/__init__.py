"""liqrisk core: the vectorised position engine (pure functions, numpy in, numpy out).

Every public function takes keyword arguments named like the HTTP API's JSON fields, accepts scalars or
numpy arrays broadcast together, and returns a dict named like the JSON response.
"""

from .calculators import average_entry, break_even_price, funding_payments, max_open, pnl, target_price
from .errors import InputError
from .liquidation import liquidation_price
from .liquidation_clusters import cascade, liquidation_map
from .market import liquidation_summary, squeeze_score
from .messages import describe_errors, describe_warnings
from .portfolio import portfolio_liquidation
from .risk import liquidation_probability, position_size
from .tiers import tiers_for

__all__ = [
    "liquidation_price",
    "portfolio_liquidation",
    "pnl",
    "target_price",
    "max_open",
    "average_entry",
    "break_even_price",
    "funding_payments",
    "tiers_for",
    "liquidation_probability",
    "position_size",
    "squeeze_score",
    "liquidation_summary",
    "liquidation_map",
    "cascade",
    "InputError",
    "describe_errors",
    "describe_warnings",
]
