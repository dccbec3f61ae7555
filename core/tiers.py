"""Margin tier (bracket / risk-limit) tables and tier lookup.

A tier table is a list of rows ``{notional_floor, notional_cap, max_leverage, maintenance_margin_rate,
maintenance_amount}``. The packaged tables live in ``core/data/<exchange>.json``, parsed from each exchange's
own tier endpoint (:mod:`core.tier_parsers`); every table carries ``source``, ``as_of`` and ``complete``
(``False`` when only some of the exchange's rows are known: a position beyond them is refused, never given
an invented tier). Tables loaded at run time (:func:`install_overlay`, fed by the API from
``LIQRISK_TIERS_DIR``) take precedence over the packaged ones. A user may pass a custom table instead.

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

import datetime as dt
import json
from dataclasses import dataclass, replace
from functools import cache, cached_property
from importlib import resources
from typing import Any

import numpy as np

from .errors import InputError, as_input_error

EXCHANGES = ("binance", "bybit", "okx", "gate", "hyperliquid", "generic")
TIER_FIELDS = ("notional_floor", "notional_cap", "max_leverage", "maintenance_margin_rate", "maintenance_amount")
SPEC_FIELDS = ("contract_type", "contract_size", "basis", "currency", "source", "as_of", "complete", "upper_inclusive")


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

    def held_tier(self, value: Any) -> np.ndarray:
        """0-based tier of a position already held at ``value``: as :meth:`lookup`, except that past the last
        cap of a complete table the last tier applies (the cap limits opening a position, not keeping it;
        the liquidation kernel re-tiers by the same rule). Past the known rows of a partial table: ``len``."""
        t = self.lookup(value)
        return np.minimum(t, len(self) - 1) if self.complete else t

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
        tier 0. The same rule as the kernels' ``_lookup_nb``."""
        v = np.asarray(value, dtype=float)
        if self.upper_inclusive:
            idx = np.searchsorted(self.floors, v, side="left") - 1
            beyond = v > self.caps[-1]
        else:
            idx = np.searchsorted(self.floors, v, side="right") - 1
            beyond = v >= self.caps[-1]
        return np.where(beyond, len(self), np.maximum(idx, 0))


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


def parse_document(doc: Any, exchange: str) -> dict[str, Instrument]:
    """Validate one exchange's tier document (the ``core/data/<exchange>.json`` format) into instruments.

    The document is ``{"exchange", "tables": {key: defaults}, "symbols": {symbol: spec}}`` where a spec
    holds ``tiers`` (rows ``[floor, cap, max_leverage, MMR, maintenance amount]``) and any of
    ``contract_type, contract_size, basis, currency, source, as_of, complete, upper_inclusive``, or
    ``table`` naming a defaults entry that supplies the fields it does not give.

    Raises
    ------
    ValueError
        ``symbols.<symbol>.<field>: ...`` for the first invalid entry.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("symbols"), dict):
        raise InputError("symbols", "must be an object of symbol -> tier spec")
    if doc.get("exchange", exchange) != exchange:
        raise InputError("exchange", f"the document is for {doc.get('exchange')!r}, not {exchange!r}")
    defaults = doc.get("tables") or {}
    out: dict[str, Instrument] = {}
    for sym, raw in doc["symbols"].items():
        if not isinstance(raw, dict):
            raise InputError(f"symbols.{sym}", "must be an object")
        base = defaults.get(raw["table"], None) if "table" in raw else {}
        if base is None:
            raise InputError(f"symbols.{sym}.table", f"unknown table {raw['table']!r}")
        spec = {**base, **raw}
        missing = [k for k in ("contract_type", "source", "tiers") if k not in spec]
        if missing:
            raise InputError(f"symbols.{sym}.{missing[0]}", "missing")
        if spec["contract_type"] not in ("linear", "inverse"):
            raise InputError(f"symbols.{sym}.contract_type", "must be linear or inverse")
        if spec["contract_type"] == "inverse" and not spec.get("contract_size"):
            raise InputError(f"symbols.{sym}.contract_size", "required for an inverse contract")
        if spec.get("basis", "notional") not in ("notional", "quantity"):
            raise InputError(f"symbols.{sym}.basis", "must be notional or quantity")
        as_of = spec.get("as_of")
        if as_of is not None:
            try:
                dt.date.fromisoformat(as_of)
            except (TypeError, ValueError):
                raise InputError(f"symbols.{sym}.as_of", "must be a date YYYY-MM-DD or null") from None
        try:
            table = table_from_columns(
                spec["tiers"],
                basis=spec.get("basis", "notional"),
                source=str(spec["source"]),
                as_of=as_of,
                currency=spec.get("currency"),
                complete=spec.get("complete", True),
                upper_inclusive=spec.get("upper_inclusive", False),
            )
        except ValueError as exc:
            raise as_input_error(exc).within(f"symbols.{sym}") from None
        size = spec.get("contract_size")
        out[sym] = Instrument(exchange, sym, spec["contract_type"], float(size) if size else None, table)
    return out


def document(instruments: dict[str, Instrument], exchange: str) -> dict[str, Any]:
    """The inverse of :func:`parse_document`: instruments as a tier document (one spec per symbol)."""
    symbols_out = {}
    for sym, inst in sorted(instruments.items()):
        t = inst.tiers
        spec: dict[str, Any] = {
            "contract_type": inst.contract_type,
            "basis": t.basis,
            "currency": t.currency,
            "source": t.source,
            "as_of": t.as_of,
            "complete": t.complete,
            "upper_inclusive": t.upper_inclusive,
        }
        if inst.contract_size is not None:
            spec["contract_size"] = inst.contract_size
        spec["tiers"] = [
            [float(t.floors[i]), float(t.caps[i]), float(t.max_leverage[i]), float(t.mmr[i]), float(t.amount[i])]
            for i in range(len(t))
        ]
        symbols_out[sym] = spec
    return {"exchange": exchange, "symbols": symbols_out}


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
        for tables with ``basis == "quantity"``; the table's boundary rule applies (see the module).
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


def partial_message(table: TierTable) -> str:
    """Why a position beyond the known rows of a partial table is refused, and how to supply the table."""
    return (
        f"beyond the known rows of a partial tier table (rows up to {table.caps[-1]:g}, as of {table.as_of}); "
        "the exchange's further tiers are not known here, so none is invented: give the current table in "
        "`tiers`, or load it with `liqrisk tiers refresh` into LIQRISK_TIERS_DIR"
    )
