"""Tier documents: one exchange's tier tables as JSON (the ``core/data/<exchange>.json`` and
``LIQRISK_TIERS_DIR`` format) read into :class:`~core.tier_table.Instrument` objects and written back."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .errors import InputError, as_input_error
from .tier_table import Instrument, table_from_columns

SPEC_FIELDS = ("contract_type", "contract_size", "basis", "currency", "source", "as_of", "complete", "upper_inclusive")


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
