"""Margin tier (bracket / risk-limit) tables and tier lookup.

A tier table is a list of rows ``{notional_floor, notional_cap, max_leverage, maintenance_margin_rate,
maintenance_amount}``. The packaged tables live in ``core/data/<exchange>.json``; every table carries
``source`` and ``as_of``. A user may pass a custom table instead.

Boundary convention (Binance, as in freqtrade and the Binance API): a value equal to a tier's floor
belongs to that (higher) tier, i.e. a tier covers ``floor <= value < cap``.

Maintenance amount recurrence (Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures
Contracts", https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93; Hyperliquid docs
"Margin tiers"): ``cum_n = cum_{n-1} + floor_n * (MMR_n - MMR_{n-1})``, ``cum_1 = 0``. It makes the
maintenance margin ``notional * MMR - cum`` continuous in notional.

The lookup value is the position notional in the margin currency (quote for linear, coin for inverse)
for ``basis == "notional"``, or the position size (base units, or USD face value for inverse) for
``basis == "quantity"`` (OKX tiers by contract count).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

EXCHANGES = ("binance", "bybit", "okx", "gate", "hyperliquid", "generic")
TIER_FIELDS = ("notional_floor", "notional_cap", "max_leverage", "maintenance_margin_rate", "maintenance_amount")


@dataclass(frozen=True)
class TierTable:
    """One symbol's tiers as contiguous float arrays (for the kernels) plus its provenance."""

    floors: np.ndarray
    caps: np.ndarray
    max_leverage: np.ndarray
    mmr: np.ndarray
    amount: np.ndarray
    basis: str = "notional"
    source: str = "user supplied"
    as_of: str | None = None
    currency: str | None = None

    def __len__(self) -> int:
        return len(self.floors)

    def rows(self) -> list[dict[str, float | int]]:
        return [
            {
                "tier": i + 1,
                "notional_floor": float(self.floors[i]),
                "notional_cap": float(self.caps[i]),
                "max_leverage": float(self.max_leverage[i]),
                "maintenance_margin_rate": float(self.mmr[i]),
                "maintenance_amount": float(self.amount[i]),
            }
            for i in range(len(self))
        ]

    def lookup(self, value: Any) -> np.ndarray:
        """0-based tier index for each ``value`` (``floor <= value < cap``); values beyond the last cap
        get ``len(self)`` (out of range), negative values tier 0."""
        idx = np.searchsorted(self.floors, np.asarray(value, dtype=float), side="right") - 1
        idx = np.maximum(idx, 0)
        return np.where(np.asarray(value) >= self.caps[-1], len(self), idx)


@dataclass(frozen=True)
class Instrument:
    """Contract spec of one packaged symbol."""

    exchange: str
    symbol: str
    contract_type: str
    contract_size: float | None
    tiers: TierTable


def table_from_rows(rows: Any, *, basis: str = "notional", source: str = "user supplied") -> TierTable:
    """Validate a user tier table and turn it into a :class:`TierTable`.

    Raises
    ------
    ValueError
        naming ``tiers`` and what is wrong: missing fields, non-finite or negative values, floors that are
        not increasing or that leave gaps between one tier's cap and the next tier's floor, leverage < 1,
        MMR outside [0, 1).
    """
    if not isinstance(rows, list | tuple) or len(rows) == 0:
        raise ValueError("tiers: must be a non-empty list of tier objects")
    cols: dict[str, list[float]] = {k: [] for k in TIER_FIELDS}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"tiers[{i}]: must be an object with fields {', '.join(TIER_FIELDS)}")
        for k in TIER_FIELDS:
            if k == "maintenance_amount" and k not in row:
                cols[k].append(np.nan)  # filled by the recurrence below
                continue
            if k not in row:
                raise ValueError(f"tiers[{i}].{k}: missing")
            v = row[k]
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
                raise ValueError(f"tiers[{i}].{k}: must be a finite number")
            cols[k].append(float(v))
    floors, caps = np.array(cols["notional_floor"]), np.array(cols["notional_cap"])
    lev, mmr, amt = (
        np.array(cols["max_leverage"]),
        np.array(cols["maintenance_margin_rate"]),
        np.array(cols["maintenance_amount"]),
    )
    if floors[0] != 0:
        raise ValueError("tiers[0].notional_floor: the first tier must start at 0")
    if np.any(caps <= floors):
        i = int(np.argmax(caps <= floors))
        raise ValueError(f"tiers[{i}].notional_cap: must be greater than notional_floor")
    if np.any(floors[1:] != caps[:-1]):
        i = int(np.argmax(floors[1:] != caps[:-1])) + 1
        raise ValueError(f"tiers[{i}].notional_floor: must equal the previous tier's notional_cap")
    if np.any(lev < 1):
        raise ValueError(f"tiers[{int(np.argmax(lev < 1))}].max_leverage: must be >= 1")
    if np.any((mmr < 0) | (mmr >= 1)):
        raise ValueError(f"tiers[{int(np.argmax((mmr < 0) | (mmr >= 1)))}].maintenance_margin_rate: must be in [0, 1)")
    if np.any(np.isnan(amt)):
        amt = maintenance_amounts(floors, mmr)
    return TierTable(floors, caps, lev, mmr, amt, basis=basis, source=source)


def maintenance_amounts(floors: np.ndarray, mmr: np.ndarray) -> np.ndarray:
    """Maintenance amounts by the recurrence ``cum_n = cum_{n-1} + floor_n (MMR_n − MMR_{n−1})``."""
    steps = np.concatenate([[0.0], floors[1:] * np.diff(mmr)])
    return np.cumsum(steps)


@cache
def _exchange_file(exchange: str) -> dict[str, Any]:
    text = resources.files("core").joinpath("data", f"{exchange}.json").read_text(encoding="utf-8")
    return json.loads(text)


@cache
def instrument(exchange: str, symbol: str) -> Instrument:
    """The packaged spec of ``symbol`` on ``exchange``.

    Raises
    ------
    ValueError
        ``exchange: unknown`` or ``symbol: unknown`` (listing the known ones).
    """
    if exchange not in EXCHANGES:
        raise ValueError(f"exchange: unknown exchange {exchange!r}; allowed: {', '.join(EXCHANGES)}")
    if exchange == "generic":
        raise ValueError("symbol: the generic ruleset has no packaged symbols; give maintenance_margin_rate or tiers")
    data = _exchange_file(exchange)
    spec = data["symbols"].get(symbol)
    if spec is None:
        known = ", ".join(sorted(data["symbols"]))
        raise ValueError(f"symbol: unknown symbol {symbol!r} for {exchange}; known: {known}")
    rows = spec["tiers"]
    table = TierTable(
        floors=np.array([r["notional_floor"] for r in rows], dtype=float),
        caps=np.array([r["notional_cap"] for r in rows], dtype=float),
        max_leverage=np.array([r["max_leverage"] for r in rows], dtype=float),
        mmr=np.array([r["maintenance_margin_rate"] for r in rows], dtype=float),
        amount=np.array([r["maintenance_amount"] for r in rows], dtype=float),
        basis=spec.get("basis", "notional"),
        source=spec["source"],
        as_of=spec["as_of"],
        currency=spec.get("currency"),
    )
    return Instrument(exchange, symbol, spec["contract_type"], spec.get("contract_size"), table)


def symbols(exchange: str) -> list[str]:
    """Packaged symbols of ``exchange`` (empty for ``generic``)."""
    if exchange == "generic":
        return []
    if exchange not in EXCHANGES:
        raise ValueError(f"exchange: unknown exchange {exchange!r}; allowed: {', '.join(EXCHANGES)}")
    return sorted(_exchange_file(exchange)["symbols"])


def tiers_for(exchange: str, symbol: str, notional: Any = None, tiers: Any = None) -> dict[str, Any]:
    """Tier table of a symbol, or the tier a notional falls in.

    Parameters
    ----------
    exchange, symbol : str
        Ruleset and the exchange's own instrument name (e.g. ``binance``, ``BTCUSDT``).
    notional : float or array, optional
        Position notional in the margin currency (quote for linear, coin for inverse), or position size
        for tables with ``basis == "quantity"``. ``floor <= notional < cap``.
    tiers : list of dict, optional
        A custom table used instead of the packaged one.

    Returns
    -------
    dict
        Without ``notional``: ``exchange, symbol, contract_type, contract_size, basis, currency, source,
        as_of, tiers``. With it: ``tier`` (1-based), ``maintenance_margin_rate``, ``maintenance_amount``,
        ``max_leverage``, ``notional_floor``, ``notional_cap`` (arrays when ``notional`` is an array).
    """
    if tiers is not None:
        table = table_from_rows(tiers)
        meta = {"exchange": exchange, "symbol": symbol, "contract_type": None, "contract_size": None}
    else:
        inst = instrument(exchange, symbol)
        table = inst.tiers
        meta = {
            "exchange": exchange,
            "symbol": symbol,
            "contract_type": inst.contract_type,
            "contract_size": inst.contract_size,
        }
    if notional is None:
        return {
            **meta,
            "basis": table.basis,
            "currency": table.currency,
            "source": table.source,
            "as_of": table.as_of,
            "tiers": table.rows(),
        }
    value = np.asarray(notional, dtype=float)
    if np.any(~np.isfinite(value)) or np.any(value < 0):
        raise ValueError("notional: must be a finite number >= 0")
    idx = table.lookup(value)
    if np.any(idx >= len(table)):
        raise ValueError(f"notional: above the last tier's cap {table.caps[-1]:g}")
    out = {
        "tier": idx + 1,
        "maintenance_margin_rate": table.mmr[idx],
        "maintenance_amount": table.amount[idx],
        "max_leverage": table.max_leverage[idx],
        "notional_floor": table.floors[idx],
        "notional_cap": table.caps[idx],
    }
    if value.ndim == 0:
        out = {k: (int(v) if k == "tier" else float(v)) for k, v in out.items()}
    return {**meta, **out, "source": table.source, "as_of": table.as_of}
