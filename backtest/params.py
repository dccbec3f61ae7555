"""The strategy's fields in one place: defaults, allowed ranges, which count whole bars and which may be None.

:func:`backtest.run.strategy` checks a config against these, the CLI makes one option of each number, and the
HTTP schema of ``POST /v1/backtests`` is built from them. No heavy imports: the API loads this module only when
a backtest is asked for. Meanings of the rule fields: :mod:`backtest.signals`; of the others: :mod:`backtest.run`.
"""

from __future__ import annotations

from typing import Any

ENTRY_DEFAULTS: dict[str, Any] = {
    "breakout_window": 48,
    "hold_bars": 2,
    "surge_mult": 3.0,
    "surge_window": 48,
    "funding_threshold": -0.0003,
    "funding_lookback": 72,
    "funding_recovery": 0.3,
}
EXIT_DEFAULTS: dict[str, Any] = {
    "exit_fraction": 0.1,
    "peak_window": 24,
    "rsi_window": 14,
    "rsi_level": 70.0,
    "wick_ratio": 0.6,
    "breakout_window": 48,
    "near_pct": 0.005,
}
SIM_DEFAULTS: dict[str, Any] = {
    "side": "long",
    "leverage": 3.0,
    "stop_pct": 0.04,
    "take_profit_pct": 0.12,
    "time_stop": 72,
    "size_mode": "fraction",
    "size_value": 0.25,
    "fee_rate": 0.0005,
    "slippage": 0.0002,
    "slippage_model": "fixed",
    "stop_trigger": "last",
    "liquidation_trigger": "mark",
    "liquidation_fee_rate": 0.0125,
    "init_cash": 10_000.0,
    "exchange": "binance",
    "symbol": "BTCUSDT",
}
#: your own rule instead of the squeeze rules: an expression (:mod:`backtest.expressions`) decided on each close,
#: or the times (ISO-8601, UTC) at which orders fill at a bar's open; with custom entries and no custom exits,
#: trades end by stop, take profit or the time stop (``time_stop`` = the holding period in bars)
SIGNAL_DEFAULTS: dict[str, Any] = {"entry_rule": None, "exit_rule": None, "entry_times": None, "exit_times": None}
DEFAULTS: dict[str, Any] = {**SIM_DEFAULTS, **ENTRY_DEFAULTS, **EXIT_DEFAULTS, **SIGNAL_DEFAULTS}

#: every numeric field and its allowed range (inclusive; POSITIVE ones exclude the lower bound)
RANGES: dict[str, tuple[float, float]] = {
    "leverage": (1, 125), "stop_pct": (0, 0.9), "take_profit_pct": (0, 100), "time_stop": (0, 10**7),
    "size_value": (0, 1e6), "fee_rate": (0, 0.05), "slippage": (0, 1), "liquidation_fee_rate": (0, 0.1),
    "init_cash": (0, 1e15), "breakout_window": (1, 100_000), "hold_bars": (1, 10_000), "surge_mult": (0, 1e6),
    "surge_window": (1, 100_000), "funding_threshold": (-0.05, 0.05), "funding_lookback": (1, 100_000),
    "funding_recovery": (0, 1), "exit_fraction": (0, 1), "peak_window": (1, 100_000), "rsi_window": (2, 10_000),
    "rsi_level": (50, 100), "wick_ratio": (0, 1), "near_pct": (0, 1),
}  # fmt: skip
POSITIVE = ("size_value", "init_cash")
WHOLE_BARS = ("breakout_window", "hold_bars", "surge_window", "funding_lookback", "peak_window", "rsi_window",
              "time_stop")  # fmt: skip
#: with slippage_model="fixed" slippage is a decimal of price, at most this; with "range" a share of the range
MAX_FIXED_SLIPPAGE = 0.05
#: fields that take one of a few words (the first is the default's spelling, not necessarily the default)
CHOICES: dict[str, tuple[str, ...]] = {
    "side": ("long", "short"),
    "size_mode": ("fraction", "risk"),
    "slippage_model": ("fixed", "range"),
    "stop_trigger": ("last", "mark"),
    "liquidation_trigger": ("mark", "last"),
}
#: fields the simulator takes once per run (a sweep groups its combinations by them); the other simulator
#: fields vary per column inside one run, and the rule fields select the signal columns
RUN_FIELDS = ("fee_rate", "slippage", "slippage_model", "stop_trigger", "liquidation_trigger",
              "liquidation_fee_rate", "init_cash", "exchange", "symbol", "size_mode")  # fmt: skip
COLUMN_FIELDS = ("side", "leverage", "stop_pct", "take_profit_pct", "time_stop", "size_value")
#: None switches these off
NULLABLE = ("stop_pct", "take_profit_pct", "funding_threshold")


def check_contract(exchange: str, symbol: str) -> None:
    """The simulator is USDⓈ-margined (linear): an inverse (coin-margined) symbol is refused by name (ValueError
    ``symbol: ...``). An unknown symbol passes here; the liquidation-price call reports it, as for the
    calculator."""
    from core.contracts import resolve_contract

    try:
        kind = resolve_contract(exchange, symbol, None, None, None, None)[2]
    except ValueError:
        return
    if kind != "linear":
        raise ValueError(
            f"symbol: {symbol} on {exchange} is an {kind} (coin-margined) contract; the backtester "
            "simulates linear (USDⓈ-margined) perpetuals only"
        )
