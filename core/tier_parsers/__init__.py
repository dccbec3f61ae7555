"""Parsers of the exchanges' own tier endpoints: each turns one response (field names and units exactly as the
exchange returns them) into the project's tier tables, ``{symbol: Instrument}``, with ``source`` and
``as_of``. Pure functions: fetching is the caller's business (``liqrisk tiers refresh``).

Each parser applies its exchange's boundary rule (``TierTable.upper_inclusive``, see :mod:`core.tier_table`) and
raises ``ValueError`` naming the first malformed row (``[3].brackets[1].notionalCap: ...``) or an empty answer,
so a bad response never replaces a good table.

One module per endpoint: :mod:`~core.tier_parsers.binance_brackets`, :mod:`~core.tier_parsers.bybit_risk_limit`,
:mod:`~core.tier_parsers.okx_position_tiers`, :mod:`~core.tier_parsers.gate_risk_limit_tiers`,
:mod:`~core.tier_parsers.hyperliquid_margin_tables`; what they share (reading numbers and fields, building the
checked table) is ``_reading``.
"""

from .binance_brackets import BINANCE_COINM_SOURCE, BINANCE_USDM_SOURCE, binance_coinm, binance_usdm
from .bybit_risk_limit import BYBIT_SOURCE, bybit
from .gate_risk_limit_tiers import GATE_SOURCE, gate
from .hyperliquid_margin_tables import HYPERLIQUID_SOURCE, NO_CAP, hyperliquid
from .okx_position_tiers import OKX_SOURCE, okx

__all__ = [
    "NO_CAP",
    "BINANCE_USDM_SOURCE",
    "BINANCE_COINM_SOURCE",
    "BYBIT_SOURCE",
    "OKX_SOURCE",
    "GATE_SOURCE",
    "HYPERLIQUID_SOURCE",
    "binance_usdm",
    "binance_coinm",
    "bybit",
    "okx",
    "gate",
    "hyperliquid",
]
