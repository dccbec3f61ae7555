"""Columnar batch validation with numpy masks and per-row errors.

Input: ``{"positions": {field: [values...] or one value}}`` (columnar) or ``{"positions": [position, ...]}``.
Numeric columns are checked in bulk (numbers, not strings or booleans, finite); a column that fails the
fast check is checked element by element only to find its bad rows. Rows are grouped by their categorical
fields (exchange, symbol, contract type, margin mode, position mode) — integer codes per column, combined
into one key and grouped with ``np.unique``'s inverse, so the cost is linear in the rows however many
distinct values they hold — and each group is priced with one vectorised core call (``raise_errors=False``),
so invalid rows get their own errors and valid rows their results.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import repeat
from operator import is_
from typing import Any

import numpy as np
from flask import current_app, g

import core
from core import budget
from core.fields import BATCH_FIELDS, FIELDS
from core.liquidation import RESULT_FIELDS
from core.tiers import symbols

from . import tier_store
from .errors import ApiError

# the columns, their types and allowed words come from the field spec, in its parsing order
NUMERIC = tuple(n for n in BATCH_FIELDS if FIELDS[n].type == "number")
SIDE = "side"
CATEGORICAL = {  # symbol: free text, parsed after the exchange, whose listed symbols it is checked against
    n: FIELDS[n].choices for n in BATCH_FIELDS if FIELDS[n].type == "string" and n != SIDE
}
REQUIRED = tuple(n for n in BATCH_FIELDS if FIELDS[n].required)
OUTPUTS = (*RESULT_FIELDS, "warning_flags")


class RowErrors:
    """Per-row errors grouped by (field, message) → rows."""

    def __init__(self, n: int):
        self.bad = np.zeros(n, dtype=bool)
        self.groups: dict[tuple[str, str], list[np.ndarray]] = {}

    def add(self, field: str, message: str, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return
        rows = rows[~self.bad[rows]]  # first error of a row wins
        if rows.size == 0:
            return
        self.bad[rows] = True
        self.groups.setdefault((field, message), []).append(rows)

    def as_list(self) -> list[dict[str, Any]]:
        return [
            {"field": f, "message": m, "rows": np.sort(np.concatenate(parts))} for (f, m), parts in self.groups.items()
        ]


def _rows_to_columns(rows: list[Any]) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ApiError(422, "each position must be an object", {f"positions[{i}]": ["must be an object"]})
        for key in row:
            if key not in cols:
                cols[key] = [None] * len(rows)
        for key, value in row.items():
            cols[key][i] = value
    return cols


def _nested(name: str) -> None:
    """A list or object where one row's value belongs is malformed input, not a row error."""
    raise ApiError(
        422,
        f"positions.{name} holds a list or an object where a row's value belongs",
        {f"positions.{name}": ["must be one value (number, string, boolean or null) or a list of such values"]},
    )


def _numeric(name: str, col: Any, n: int, errors: RowErrors) -> np.ndarray:
    """A float64 column (NaN = not given) with bad rows reported."""
    if not isinstance(col, list):
        col = [col]
    if len(col) == 1 and n != 1:
        col = col * 1  # broadcast a single value below
    try:
        arr = np.array(col)
    except (ValueError, TypeError):  # ragged nested lists
        arr = np.array([], dtype=object)
    if arr.dtype.kind in "fi" and arr.ndim == 1 and arr.size == len(col):
        out = arr.astype(np.float64, copy=False)
        # numpy turns True/False mixed with numbers into 1/0: look for booleans only in that case
        if ((out == 0) | (out == 1)).any() and (any(map(is_, col, repeat(True))) or any(map(is_, col, repeat(False)))):
            mask = np.fromiter((isinstance(v, bool) for v in col), bool, len(col))
            errors.add(name, "must be a number, not a boolean", np.flatnonzero(mask) if len(col) == n else np.arange(n))
            out = np.where(mask, np.nan, out)
        size = np.abs(out)
        if np.any(size > 1e300):
            big = size > 1e300
            errors.add(name, "must be a finite number", np.flatnonzero(big) if len(col) == n else np.arange(n))
            out = np.where(big, np.nan, out)
        tiny = (size > 0) & (size < 1e-300)
        if tiny.any():
            message = "must be 0 or at least 1e-300 in size (subnormal numbers are not accepted)"
            errors.add(name, message, np.flatnonzero(tiny) if len(col) == n else np.arange(n))
            out = np.where(tiny, np.nan, out)
        out = out + 0.0  # -0.0 becomes 0.0
        return out if len(col) == n else np.full(n, out[0])
    # slow path: find the bad elements
    values = np.full(len(col), np.nan)
    bad = np.zeros(len(col), dtype=bool)
    tiny_rows: list[int] = []
    for i, v in enumerate(col):
        if v is None:
            continue
        if isinstance(v, list | dict):
            _nested(name)
        if isinstance(v, bool) or not isinstance(v, int | float) or (isinstance(v, int) and abs(v) > 1e300):
            bad[i] = True
        elif 0 < abs(v) < 1e-300:
            tiny_rows.append(i)
        else:
            values[i] = float(v) + 0.0
    if bad.any():
        errors.add(
            name,
            "must be a number (not a string, boolean, list or object)",
            np.flatnonzero(bad) if len(col) == n else np.arange(n),
        )
    if tiny_rows:
        message = "must be 0 or at least 1e-300 in size (subnormal numbers are not accepted)"
        errors.add(name, message, np.array(tiny_rows) if len(col) == n else np.arange(n))
    return values if len(col) == n else np.full(n, values[0])


class Column:
    """A categorical column as integer codes: ``values[code]`` for the listed values (``None`` = not given),
    ``len(values)`` for free text outside the list (symbols only; the row's own string), ``-1`` for a bad row."""

    def __init__(self, codes: np.ndarray, values: list[str | None], raw: list[Any]):
        self.codes = codes
        self.values = values
        self.raw = raw

    @property
    def other(self) -> int:
        return len(self.values)

    def value(self, row: int) -> str | None:
        code = int(self.codes[row])
        if code == self.other:
            return self.raw[row if len(self.raw) > 1 else 0]
        return self.values[code] if code >= 0 else None


#: rows one C-level pass over a column's Python values reads (the interpreter lock passes between passes)
SLICE_ROWS = 1 << 16


def _mapped(func: Any, col: list[Any], *more: Any) -> np.ndarray:
    """``np.fromiter(map(func, col, *repeat(m) for m in more))`` as int64, ``SLICE_ROWS`` values per call, so
    a long column does not hold the interpreter lock for its whole length."""
    out = np.empty(len(col), dtype=np.int64)
    for i in range(0, len(col), SLICE_ROWS):
        part = col[i : i + SLICE_ROWS]
        out[i : i + len(part)] = np.fromiter(
            map(func, part, *(repeat(m, len(part)) for m in more)), np.int64, len(part)
        )
    return out


def _categorical(
    name: str, col: Any, n: int, allowed: tuple[str, ...], errors: RowErrors, free_text: bool = False
) -> Column:
    """Codes of a categorical column in one C-level pass (``map`` over a dict of the allowed values), however
    many distinct values the rows hold. With ``free_text`` (symbols) other strings of 1-64 characters are
    accepted as code ``len(allowed) + 1``; otherwise they are bad rows."""
    if not isinstance(col, list):
        col = [col]
    values: list[str | None] = [*allowed, None]
    lookup: dict[Any, int] = {v: i for i, v in enumerate(values)}
    try:
        codes = _mapped(lookup.get, col, -1)
    except TypeError:  # lists or objects in the column (unhashable)
        codes = np.array([lookup.get(v, -1) if v is None or isinstance(v, str) else -2 for v in col], dtype=np.int64)
    if (codes == -2).any():
        _nested(name)
    rest = np.flatnonzero(codes < 0)
    if rest.size and free_text:
        texts = [col[i] for i in rest[codes[rest] == -1].tolist()]
        if all(all(map(str.__instancecheck__, texts[i : i + SLICE_ROWS])) for i in range(0, len(texts), SLICE_ROWS)):
            lengths = _mapped(len, texts)
            ok_rows = rest[codes[rest] == -1][(lengths >= 1) & (lengths <= 64)]
        else:
            ok_rows = np.array([i for i in rest.tolist() if isinstance(col[i], str) and 0 < len(col[i]) <= 64], int)
        codes[ok_rows] = len(values)
        rest = np.flatnonzero(codes < 0)
    if rest.size:
        rule = "must be a string of 1-64 characters" if free_text else f"must be one of {', '.join(allowed)}"
        errors.add(name, rule, rest if len(col) == n else np.arange(n))
    if len(col) != n:
        codes = np.full(n, codes[0], dtype=np.int64)
    return Column(codes, values, col if free_text else [])


def parse(positions: Any, max_rows: int, max_object_rows: int | None = None) -> tuple[int, dict[str, Any], RowErrors]:
    if isinstance(positions, list):
        limit = max_rows if max_object_rows is None else min(max_rows, max_object_rows)
        if len(positions) > limit:
            more = f"; send up to {max_rows} rows as columns" if limit < max_rows else ""
            raise ApiError(
                413,
                f"a batch of position objects holds at most {limit} positions{more}",
                {"positions": [f"{len(positions)} rows; at most {limit} as a list of objects{more}"]},
            )
        cols = _rows_to_columns(positions)
        for k in REQUIRED:  # a field missing from every row is "not given" in each: reported per row below
            cols.setdefault(k, [None] * len(positions))
    elif isinstance(positions, dict):
        cols = positions
    else:
        raise ApiError(
            422,
            "positions must be a columnar object or a list of positions",
            {"positions": ["must be an object of columns or a list of positions"]},
        )
    known = set(NUMERIC) | set(CATEGORICAL) | {SIDE}
    unknown = sorted(set(cols) - known)
    if unknown:
        unsupported = {"tiers", "other_positions"} & set(unknown)
        msg = "not supported in batch requests (use /v1/liquidation-price)" if unsupported else "unknown field"
        raise ApiError(
            422,
            f"unknown or unsupported batch fields: {', '.join(unknown)}",
            {f"positions.{k}": [msg] for k in unknown},
        )
    for k in REQUIRED:
        if k not in cols:
            raise ApiError(422, f"positions.{k} is required", {f"positions.{k}": ["required"]})
    lengths = {k: len(v) for k, v in cols.items() if isinstance(v, list) and len(v) != 1}
    if len(set(lengths.values())) > 1:
        raise ApiError(
            422,
            "all columns must have the same length (or a single value)",
            {f"positions.{k}": [f"length {v}"] for k, v in lengths.items()},
        )
    n = next(iter(lengths.values()), 1)
    if n > max_rows:
        raise ApiError(
            413, f"a batch holds at most {max_rows} positions", {"positions": [f"{n} rows; at most {max_rows}"]}
        )
    if n == 0:
        raise ApiError(422, "the batch is empty", {"positions": ["must hold at least one position"]})
    errors = RowErrors(n)
    out: dict[str, Any] = {}
    # each column leaves the request's dict once converted (a million parsed floats hold ~32 MB)
    for name in NUMERIC:
        if name in cols:
            out[name] = _numeric(name, cols.pop(name), n, errors)
            budget.check("positions")  # parsing a million rows is most of a batch's time
    for name in REQUIRED[1:]:
        missing = np.isnan(out[name])
        errors.add(name, "required", np.flatnonzero(missing))
    side = _categorical(SIDE, cols.pop(SIDE), n, FIELDS[SIDE].choices, errors)
    out[SIDE] = np.array([1.0, -1.0, 0.0, 0.0])[side.codes]  # long, short, not given, bad (-1)
    errors.add(SIDE, "required", np.flatnonzero(out[SIDE] == 0))
    for name, allowed in CATEGORICAL.items():
        if name in cols and allowed is not None:
            out[name] = _categorical(name, cols.pop(name), n, allowed, errors)
    if "symbol" in cols:
        listed = sorted(set().union(*(_known_symbols(e or "binance") for e in _present(out.get("exchange")))))
        out["symbol"] = _categorical("symbol", cols["symbol"], n, tuple(listed), errors, free_text=True)
    return n, out, errors


UNKNOWN_SYMBOL = (
    "unknown to this exchange's ruleset: give maintenance_margin_rate (and contract_size for inverse "
    "contracts), or a listed symbol (GET /v1/exchanges/{exchange}/symbols)"
)


@lru_cache(maxsize=16)
def _known_symbols(exchange: str) -> frozenset[str]:
    try:
        return frozenset(symbols(exchange))
    except ValueError:  # the generic ruleset lists none
        return frozenset()


def _present(exch: Column | None) -> list[str | None]:
    """The exchanges a batch uses (``None``: not given, the default)."""
    if exch is None:
        return [None]
    used = np.unique(exch.codes[exch.codes >= 0])
    return [exch.values[i] for i in used.tolist()] or [None]


def group_rows(n: int, cols: dict[str, Any], errors: RowErrors, max_groups: int) -> list[np.ndarray]:
    """The valid rows split into groups of equal exchange, symbol, contract type, margin mode and position
    mode, each priced by one core call. Linear in the rows: every column is already integer codes, the
    codes are combined into one integer key and grouped with ``np.unique(..., return_inverse=True)`` and a
    stable argsort. Symbols a ruleset does not know behave alike once ``maintenance_margin_rate`` is given,
    so they form one group (per exchange and mode); without it their rows get a ``symbol`` error here.
    More than ``max_groups`` groups is a 422."""
    exch = cols.get("exchange")
    sym = cols.get("symbol")
    if sym is not None:
        exch_values = exch.values if exch is not None else [None]
        exch_codes = exch.codes if exch is not None else np.zeros(n, dtype=np.int64)
        known = np.zeros((len(exch_values), sym.other + 1), dtype=bool)  # [exchange, symbol code]
        for e, name in enumerate(exch_values):
            listed = _known_symbols(name or "binance")
            known[e, : sym.other] = [v is None or v in listed for v in sym.values]  # None: the default symbol
        is_known = known[np.maximum(exch_codes, 0), np.maximum(sym.codes, 0)]
        has_mmr = ~np.isnan(cols["maintenance_margin_rate"]) if "maintenance_margin_rate" in cols else np.zeros(n, bool)
        generic = np.array([v == "generic" for v in exch_values])[np.maximum(exch_codes, 0)]
        errors.add("symbol", UNKNOWN_SYMBOL, np.flatnonzero(~is_known & ~has_mmr & ~generic))
        sym_key = np.where(is_known, sym.codes, sym.other)  # every symbol the ruleset does not know: one code
    valid = np.flatnonzero(~errors.bad)
    if valid.size == 0:
        return []
    key = np.zeros(valid.size, dtype=np.int64)
    size = 1  # key < size
    for name in CATEGORICAL:
        if name == "symbol" and sym is not None:
            codes, width = sym_key[valid], sym.other + 1
        elif name in cols:
            codes, width = cols[name].codes[valid], len(cols[name].values)
        else:
            continue
        if size * width >= 2**62:  # many distinct bad values: renumber the key so far before it overflows
            key = np.unique(key, return_inverse=True)[1].astype(np.int64)
            size = int(key.max()) + 1
        key, size = key * width + codes, size * width
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    if counts.size > max_groups:
        raise ApiError(
            422,
            f"a batch holds at most {max_groups} distinct groups of exchange, symbol, contract_type, margin_mode "
            "and position_mode",
            {
                "positions.symbol": [
                    f"{counts.size} groups; at most {max_groups} (symbols the ruleset does not know count once "
                    "when maintenance_margin_rate is given)"
                ]
            },
        )
    rows = valid[np.argsort(inverse, kind="stable")]
    return np.split(rows, np.cumsum(counts)[:-1])


def price(
    positions: Any,
    max_rows: int,
    fields: list[str] | None,
    max_groups: int = 1_000,
    max_object_rows: int | None = None,
) -> dict[str, Any]:
    """The batch route's result. ``max_rows`` bounds a columnar batch, ``max_object_rows`` (default
    ``max_rows``) a list of position objects."""
    n, cols, errors = parse(positions, max_rows, max_object_rows)
    g.batch_rows = n  # for the liqrisk_batch_rows histogram and the access log
    wanted = tuple(fields) if fields else OUTPUTS
    if fields:
        unknown = sorted(set(fields) - set(OUTPUTS))
        if unknown:
            raise ApiError(
                422,
                "unknown output fields",
                {"fields": [f"unknown: {', '.join(unknown)}; allowed: {', '.join(OUTPUTS)}"]},
            )
    result = {k: np.full(n, np.nan) for k in wanted}
    for k in ("tier", "liquidation_tier", "warning_flags"):
        if k in result:
            result[k] = np.zeros(n, dtype=np.int64)
    cat_names = [c for c in CATEGORICAL if c in cols]
    tiers_used: list[dict[str, Any]] = []  # the tier table of each group, and the rows priced with a stale one
    stale_rows: list[np.ndarray] = []
    max_age = current_app.config["TIERS_MAX_AGE_DAYS"]
    for rows in group_rows(n, cols, errors, max_groups):
        budget.check("positions")
        first = int(rows[0])
        group = {c: cols[c].value(first) for c in cat_names if cols[c].value(first) is not None}
        # NaN in an optional column means "not given" for that row (core applies the default)
        kwargs = {name: cols[name][rows] for name in NUMERIC if name in cols and not np.isnan(cols[name][rows]).all()}
        try:
            res = core.liquidation_price(
                side=cols[SIDE][rows], **kwargs, **group, raise_errors=False, fields=set(wanted) | {"error_code"}
            )
        except core.InputError as exc:  # a setting of the whole group (its symbol, contract type, ...)
            errors.add(exc.field, exc.message, rows if exc.rows is None else rows[exc.rows])
            continue
        rows_ok = rows
        codes = res["error_code"]
        for err in core.describe_errors(codes):
            errors.add(err.field, err.message, rows_ok[err.rows])
        good = codes == 0
        for k in wanted:
            result[k][rows_ok[good]] = res[k][good]
        used = rows_ok[good]
        if "maintenance_margin_rate" in kwargs:
            used = used[np.isnan(cols["maintenance_margin_rate"][used])]
        if res["tiers_source"] is not None and used.size:
            exchange = group.get("exchange", "binance")
            symbol = group.get("symbol") or core.rulesets.get_ruleset(exchange).default_symbol
            tiers_used.append({"exchange": exchange, "symbol": symbol, "as_of": res["tiers_as_of"], "rows": used.size})
            if tier_store.freshness(res["tiers_as_of"], max_age):
                stale_rows.append(used)
    bad = errors.bad
    for k in wanted:
        if result[k].dtype.kind == "f":
            result[k][bad] = np.nan
    body: dict[str, Any] = {"count": n, "valid": int((~bad).sum())}
    for k in wanted:
        if k == "warning_flags":
            continue
        if k in ("tier", "liquidation_tier"):  # null where no tier applies (MMR given, bad row), as in one answer
            tiers = result[k]
            body[k] = tiers if (tiers > 0).all() else np.where(tiers > 0, tiers, None).tolist()
        else:
            body[k] = result[k]
    if "warning_flags" in wanted:
        body["warnings"] = core.describe_warnings(result["warning_flags"])
        if stale_rows:
            body["warnings"]["stale_tiers"] = np.sort(np.concatenate(stale_rows))
    body["tiers_as_of"] = tiers_used
    body["errors"] = errors.as_list()
    budget.check("positions")  # before serialising (about as long again for a million rows)
    return body
