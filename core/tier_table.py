"""One symbol's margin tier (bracket / risk-limit) table: :class:`TierTable`, its checks and its lookup.

A tier table is a list of rows ``{notional_floor, notional_cap, max_leverage, maintenance_margin_rate,
maintenance_amount}`` carrying ``source``, ``as_of`` and ``complete`` (``False`` when only some of the
exchange's rows are known: a position beyond them is refused, never given an invented tier). Where tables
come from (packaged, loaded, user supplied) is :mod:`core.tiers`.

Boundary rules (``upper_inclusive``)
------------------------------------
* Binance (``GET /fapi/v1/leverageBracket``, https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Notional-and-Leverage-Brackets):
  ``notionalCap`` is the next bracket's ``notionalFloor`` and a notional equal to a floor belongs to the
  higher bracket, i.e. a tier covers ``floor <= value < cap``. User tables follow the same rule.
* Bybit ``riskLimitValue`` (https://bybit-exchange.github.io/docs/v5/market/risk-limit), Gate ``risk_limit``
  (https://www.gate.io/docs/developers/apiv4/#list-risk-limit-tiers) and OKX ``maxSz``
  (https://www.okx.com/docs-v5/en/#public-data-rest-api-get-position-tiers) are a tier's largest position:
  a tier covers ``floor < value <= cap``.
* Hyperliquid ``lowerBound`` (https://hyperliquid.gitbook.io/hyperliquid-docs/trading/margin-tiers) starts a
  tier: ``floor <= value < cap``.

Maintenance amount recurrence (Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures
Contracts", https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93; Hyperliquid docs
"Margin tiers"): ``cum_n = cum_{n-1} + floor_n * (MMR_n - MMR_{n-1})``, ``cum_1 = 0``. It makes the
maintenance margin ``notional * MMR - cum`` continuous in notional.

The lookup value is the position notional in the margin currency (quote for linear, coin for inverse)
for ``basis == "notional"``, or the position size (base units, or USD face value for inverse) for
``basis == "quantity"`` (OKX tiers by contract count, converted with the contract value ``ctVal``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from .errors import InputError
from .solve_nb import tier_indices_nb

TIER_FIELDS = ("notional_floor", "notional_cap", "max_leverage", "maintenance_margin_rate", "maintenance_amount")


@dataclass(frozen=True)
class TierTable:
    """One symbol's tiers as contiguous float arrays (for the kernels) plus its provenance.

    ``complete`` is False when only the first rows of the exchange's table are known; ``upper_inclusive``
    says a value equal to a cap belongs to that tier (Bybit, Gate, OKX) rather than the next (Binance,
    Hyperliquid, user tables).
    """

    floors: np.ndarray
    caps: np.ndarray
    max_leverage: np.ndarray
    mmr: np.ndarray
    amount: np.ndarray
    basis: str = "notional"
    source: str = "user supplied"
    as_of: str | None = None
    currency: str | None = None
    complete: bool = True
    upper_inclusive: bool = False

    def __len__(self) -> int:
        return len(self.floors)

    @cached_property
    def kernel_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``(floors, caps)`` for the kernels' half-open lookup (``floor <= value < cap``). For inclusive caps
        both are moved up by one ulp, since for doubles ``value > x`` exactly when
        ``value >= nextafter(x, +inf)``; so one branch-free lookup serves every boundary rule."""
        if not self.upper_inclusive:
            return self.floors, self.caps
        return np.nextafter(self.floors, np.inf), np.nextafter(self.caps, np.inf)

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
        """0-based tier index for each ``value`` (``floor <= value < cap``, or ``floor < value <= cap`` when
        ``upper_inclusive``); values beyond the last cap get ``len(self)`` (out of range), negative values
        tier 0. The kernels' own lookup (:func:`core.solve_nb.tier_index_nb` on :attr:`kernel_bounds`)."""
        v = np.asarray(value, dtype=float)
        floors, caps = self.kernel_bounds
        return tier_indices_nb(floors, caps, np.ascontiguousarray(v).reshape(-1)).reshape(v.shape)


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
        raise InputError("tiers", "must be a non-empty list of tier objects")
    cols: dict[str, list[float]] = {k: [] for k in TIER_FIELDS}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"tiers[{i}]", f"must be an object with fields {', '.join(TIER_FIELDS)}")
        for k in TIER_FIELDS:
            if k == "maintenance_amount" and k not in row:
                cols[k].append(np.nan)  # filled by the recurrence below
                continue
            if k not in row:
                raise InputError(f"tiers[{i}].{k}", "missing")
            v = row[k]
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
                raise InputError(f"tiers[{i}].{k}", "must be a finite number")
            cols[k].append(float(v))
    floors, caps = np.array(cols["notional_floor"]), np.array(cols["notional_cap"])
    lev, mmr, amt = (
        np.array(cols["max_leverage"]),
        np.array(cols["maintenance_margin_rate"]),
        np.array(cols["maintenance_amount"]),
    )
    if floors[0] != 0:
        raise InputError("tiers[0].notional_floor", "the first tier must start at 0")
    if np.any(caps <= floors):
        i = int(np.argmax(caps <= floors))
        raise InputError(f"tiers[{i}].notional_cap", "must be greater than notional_floor")
    if np.any(floors[1:] != caps[:-1]):
        i = int(np.argmax(floors[1:] != caps[:-1])) + 1
        raise InputError(f"tiers[{i}].notional_floor", "must equal the previous tier's notional_cap")
    if np.any(lev < 1):
        raise InputError(f"tiers[{int(np.argmax(lev < 1))}].max_leverage", "must be >= 1")
    if np.any((mmr < 0) | (mmr >= 1)):
        raise InputError(
            f"tiers[{int(np.argmax((mmr < 0) | (mmr >= 1)))}].maintenance_margin_rate", "must be in [0, 1)"
        )
    if np.any(np.isnan(amt)):
        amt = maintenance_amounts(floors, mmr)
    return TierTable(floors, caps, lev, mmr, amt, basis=basis, source=source)


def maintenance_amounts(floors: np.ndarray, mmr: np.ndarray) -> np.ndarray:
    """Maintenance amounts by the recurrence ``cum_n = cum_{n-1} + floor_n (MMR_n − MMR_{n−1})``."""
    steps = np.concatenate([[0.0], floors[1:] * np.diff(mmr)])
    return np.cumsum(steps)


def table_from_columns(
    rows: Any,
    *,
    basis: str = "notional",
    source: str,
    as_of: str | None,
    currency: str | None = None,
    complete: bool = True,
    upper_inclusive: bool = False,
) -> TierTable:
    """A :class:`TierTable` from rows ``[floor, cap, max_leverage, MMR, maintenance amount]`` (the packaged
    and ``LIQRISK_TIERS_DIR`` format), validated like a user table.

    Raises
    ------
    ValueError
        naming the bad row, as :func:`table_from_rows`.
    """
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == len(TIER_FIELDS) for r in rows):
        raise InputError("tiers", f"must be a list of [{', '.join(TIER_FIELDS)}] rows")
    table = table_from_rows([dict(zip(TIER_FIELDS, r, strict=True)) for r in rows], basis=basis, source=source)
    return replace(
        table, as_of=as_of, currency=currency, complete=bool(complete), upper_inclusive=bool(upper_inclusive)
    )


def partial_message(table: TierTable) -> str:
    """Why a position beyond the known rows of a partial table is refused, and how to supply the table."""
    return (
        f"beyond the known rows of a partial tier table (rows up to {table.caps[-1]:g}, as of {table.as_of}); "
        "the exchange's further tiers are not known here, so none is invented: give the current table in "
        "`tiers`, or load it with `liqrisk tiers refresh` into LIQRISK_TIERS_DIR"
    )
