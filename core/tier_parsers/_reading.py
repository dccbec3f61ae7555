"""Reading an exchange's tier response: finite numbers from JSON numbers or numeric strings, required fields,
non-empty lists, each error naming where in the response it is; and the checked :class:`~core.tier_table.TierTable`
built from the parsed columns."""

from __future__ import annotations

import math
from typing import Any

from ..errors import InputError
from ..tier_table import TierTable, table_from_rows


def num(value: Any, where: str, *, allow_empty: bool = False) -> float:
    """A finite number from a JSON number or numeric string (exchanges send both)."""
    if allow_empty and (value is None or value == ""):
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(where, f"must be a number or numeric string, got {value!r}")
    try:
        out = float(value)
    except ValueError:
        raise InputError(where, f"must be a number or numeric string, got {value!r}") from None
    if not math.isfinite(out):
        raise InputError(where, f"must be finite, got {value!r}")
    return out


def field(row: Any, name: str, where: str) -> Any:
    """``row[name]``; errors name ``where`` (not an object) or ``where.name`` (missing)."""
    if not isinstance(row, dict):
        raise InputError(where, "must be an object")
    if name not in row:
        raise InputError(f"{where}.{name}", "missing")
    return row[name]


def nums(row: Any, where: str, *names: str) -> tuple[float, ...]:
    """The fields ``names`` of ``row``, in order, each a finite number (errors name ``where.<field>``)."""
    return tuple(num(field(row, name, where), f"{where}.{name}") for name in names)


def tier_table(
    floors: list[float],
    caps: list[float],
    lev: list[float],
    mmr: list[float],
    amount: list[float] | None,
    *,
    where: str,
    source: str,
    as_of: str | None,
    currency: str | None,
    basis: str = "notional",
    complete: bool = True,
    upper_inclusive: bool,
) -> TierTable:
    rows = [
        {
            "notional_floor": floors[i],
            "notional_cap": caps[i],
            "max_leverage": lev[i],
            "maintenance_margin_rate": mmr[i],
            **({"maintenance_amount": amount[i]} if amount is not None else {}),
        }
        for i in range(len(floors))
    ]
    try:
        table = table_from_rows(rows, basis=basis, source=source)
    except ValueError as exc:
        raise InputError(where, str(exc)) from None
    return TierTable(
        table.floors,
        table.caps,
        table.max_leverage,
        table.mmr,
        table.amount,
        basis=basis,
        source=source,
        as_of=as_of,
        currency=currency,
        complete=complete,
        upper_inclusive=upper_inclusive,
    )


def nonempty(items: Any, what: str) -> list[Any]:
    if not isinstance(items, list):
        raise InputError(what, f"must be a list, got {type(items).__name__}")
    if not items:
        raise InputError(what, "empty answer (no tiers); the old table stays")
    return items
