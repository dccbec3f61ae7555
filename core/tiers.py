"""Margin tier tables by exchange and symbol, and tier lookup (:func:`tiers_for`).

The packaged tables live in ``core/data/<exchange>.json``, parsed from each exchange's own tier endpoint
(:mod:`core.tier_parsers`) and read by :func:`~core.tier_documents.parse_document`. Tables loaded at run
time (:func:`install_overlay`, fed by the API from ``LIQRISK_TIERS_DIR``) take precedence over the packaged
ones. A user may pass a custom table instead. The table itself, each exchange's boundary rule and the
maintenance amount recurrence are :mod:`core.tier_table`.

This module is the tiers' public surface: it also re-exports the table and document names.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from .errors import InputError
from .tier_documents import SPEC_FIELDS, document, parse_document
from .tier_table import (
    TIER_FIELDS,
    Instrument,
    TierTable,
    maintenance_amounts,
    partial_message,
    table_from_columns,
    table_from_rows,
)

__all__ = [
    "EXCHANGES",
    "SPEC_FIELDS",
    "TIER_FIELDS",
    "Instrument",
    "TierTable",
    "document",
    "install_overlay",
    "instrument",
    "maintenance_amounts",
    "overlay",
    "parse_document",
    "partial_message",
    "stale_warning",
    "symbol_list",
    "symbols",
    "table_from_columns",
    "table_from_rows",
    "tier_age_days",
    "tiers_for",
]

EXCHANGES = ("binance", "bybit", "okx", "gate", "hyperliquid", "generic")


@cache
def _packaged(exchange: str) -> dict[str, Any]:
    """The packaged document of ``exchange``, parsed lazily: ``{symbol: raw spec}`` plus its defaults."""
    text = resources.files("core").joinpath("data", f"{exchange}.json").read_text(encoding="utf-8")
    return json.loads(text)


_OVERLAY: dict[str, dict[str, Instrument]] = {}
_INSTRUMENTS: dict[tuple[str, str], Instrument] = {}


def install_overlay(tables: dict[str, dict[str, Instrument]]) -> None:
    """Use ``tables`` (exchange -> symbol -> instrument, from :func:`parse_document`) in preference to the
    packaged tables, replacing any earlier overlay. Kernels take tables as arguments, so nothing recompiles."""
    global _OVERLAY
    unknown = set(tables) - set(EXCHANGES[:-1])
    if unknown:
        raise InputError("exchange", f"unknown exchange {sorted(unknown)[0]!r}", kind="unknown")
    _OVERLAY = {k: dict(v) for k, v in tables.items()}
    _INSTRUMENTS.clear()
    _symbol_rows.cache_clear()


def overlay() -> dict[str, dict[str, Instrument]]:
    """The tables installed by :func:`install_overlay` (exchange -> symbol -> instrument)."""
    return _OVERLAY


def _check_exchange(exchange: str) -> None:
    if exchange not in EXCHANGES:
        raise InputError("exchange", f"unknown exchange {exchange!r}; allowed: {', '.join(EXCHANGES)}", kind="unknown")


def instrument(exchange: str, symbol: str) -> Instrument:
    """The spec of ``symbol`` on ``exchange``: a loaded table (:func:`install_overlay`) or the packaged one.

    Raises
    ------
    ValueError
        ``exchange: unknown`` or ``symbol: unknown`` (with how many symbols are known and where to list them).
    """
    key = (exchange, symbol)
    inst = _INSTRUMENTS.get(key)
    if inst is not None:
        return inst
    _check_exchange(exchange)
    if exchange == "generic":
        raise InputError("symbol", "the generic ruleset has no packaged symbols; give maintenance_margin_rate or tiers")
    inst = _OVERLAY.get(exchange, {}).get(symbol)
    if inst is None:
        data = _packaged(exchange)
        raw = data["symbols"].get(symbol) if isinstance(symbol, str) else None
        if raw is None:
            names = symbols(exchange)
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            raise InputError(
                "symbol",
                f"unknown symbol {symbol!r} for {exchange}; {len(names)} known ({shown}; "
                f"GET /v1/exchanges/{exchange}/symbols lists them), or give maintenance_margin_rate or tiers",
                kind="unknown",
            )
        inst = parse_document({"tables": data.get("tables"), "symbols": {symbol: raw}}, exchange)[symbol]
    _INSTRUMENTS[key] = inst
    return inst


def symbols(exchange: str) -> list[str]:
    """Known symbols of ``exchange``, packaged or loaded (empty for ``generic``)."""
    if exchange == "generic":
        return []
    _check_exchange(exchange)
    return sorted(set(_packaged(exchange)["symbols"]) | set(_OVERLAY.get(exchange, {})))


@cache
def _symbol_rows(exchange: str) -> tuple[dict[str, Any], ...]:
    rows = []
    for sym in symbols(exchange):
        t = instrument(exchange, sym).tiers
        rows.append(
            {
                "symbol": sym,
                "contract_type": instrument(exchange, sym).contract_type,
                "as_of": t.as_of,
                "source": t.source,
                "complete": t.complete,
                "tiers": len(t),
                "last_cap": float(t.caps[-1]),
                "loaded": sym in _OVERLAY.get(exchange, {}),
            }
        )
    return tuple(rows)


def symbol_list(exchange: str) -> list[dict[str, Any]]:
    """One entry per known symbol: ``symbol, contract_type, as_of, source, complete, tiers`` (row count),
    ``last_cap`` and ``loaded`` (True for a table from the tiers directory, False for a packaged one)."""
    _check_exchange(exchange)
    if exchange == "generic":
        return []
    return [dict(r) for r in _symbol_rows(exchange)]


def tier_age_days(as_of: str | None, today: dt.date) -> int | None:
    """Whole days from a table's ``as_of`` to ``today`` (None when the table is undated)."""
    if as_of is None:
        return None
    return (today - dt.date.fromisoformat(as_of)).days


def stale_warning(as_of: str | None, today: dt.date, max_age_days: int) -> dict[str, str] | None:
    """``{"code": "stale_tiers", "message"}`` when a table is older than ``max_age_days`` or undated."""
    age = tier_age_days(as_of, today)
    if age is None:
        return {
            "code": "stale_tiers",
            "message": "the tier table carries no date; refresh it (liqrisk tiers refresh) or give tiers",
        }
    if age > max_age_days:
        return {
            "code": "stale_tiers",
            "message": f"the tier table is {age} days old (as of {as_of}; limit {max_age_days}); the exchange "
            "may have changed it: refresh it (liqrisk tiers refresh) or give tiers",
        }
    return None


def tiers_for(exchange: str, symbol: str, notional: Any = None, tiers: Any = None) -> dict[str, Any]:
    """Tier table of a symbol, or the tier a notional falls in.

    Parameters
    ----------
    exchange, symbol : str
        Ruleset and the exchange's own instrument name (e.g. ``binance``, ``BTCUSDT``).
    notional : float or array, optional
        Position notional in the margin currency (quote for linear, coin for inverse), or position size
        for tables with ``basis == "quantity"``; the table's boundary rule applies (:mod:`core.tier_table`).
    tiers : list of dict, optional
        A custom table used instead of the packaged one.

    Returns
    -------
    dict
        Without ``notional``: ``exchange, symbol, contract_type, contract_size, basis, currency, source,
        as_of, complete, upper_inclusive, tiers``. With it: ``tier`` (1-based), ``maintenance_margin_rate``,
        ``maintenance_amount``, ``max_leverage``, ``notional_floor``, ``notional_cap`` (arrays when ``notional``
        is an array), ``source``, ``as_of``, ``complete``.
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
            "complete": table.complete,
            "upper_inclusive": table.upper_inclusive,
            "tiers": table.rows(),
        }
    value = np.asarray(notional, dtype=float)
    if np.any(~np.isfinite(value)) or np.any(value < 0):
        raise InputError("notional", "must be a finite number >= 0")
    idx = table.lookup(value)
    if np.any(idx >= len(table)):
        if not table.complete:
            raise InputError("notional", partial_message(table), kind="too_large")
        raise InputError("notional", f"above the last tier's cap {table.caps[-1]:g}", kind="too_large")
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
    return {**meta, **out, "source": table.source, "as_of": table.as_of, "complete": table.complete}
