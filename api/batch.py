"""Columnar batch validation with numpy masks and per-row errors.

Input: ``{"positions": {field: [values...] or one value}}`` (columnar) or ``{"positions": [position, ...]}``.
Numeric columns are checked in bulk (numbers, not strings or booleans, finite); a column that fails the
fast check is checked element by element only to find its bad rows. Rows are grouped by their categorical
fields (exchange, symbol, contract type, margin mode, position mode) and each group is priced with one
vectorised core call (``raise_errors=False``), so invalid rows get their own errors and valid rows their
results.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flask import g

import core
from core.liquidation import ERRORS, RESULT_FIELDS

from .errors import ApiError

NUMERIC = (
    "entry_price",
    "quantity",
    "leverage",
    "margin",
    "wallet_balance",
    "mark_price",
    "maintenance_margin_rate",
    "maintenance_amount",
    "taker_fee_rate",
    "contract_size",
)
SIDE = "side"
CATEGORICAL = {
    "exchange": ("binance", "bybit", "okx", "gate", "hyperliquid", "generic"),
    "symbol": None,
    "contract_type": ("linear", "inverse"),
    "margin_mode": ("isolated", "cross"),
    "position_mode": ("one_way", "hedge"),
}
REQUIRED = ("side", "entry_price", "quantity")
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
        if any(v is True or v is False for v in col):
            mask = np.fromiter((isinstance(v, bool) for v in col), bool, len(col))
            errors.add(name, "must be a number, not a boolean", np.flatnonzero(mask) if len(col) == n else np.arange(n))
            out = np.where(mask, np.nan, out)
        if np.any(np.abs(out) > 1e300):
            big = np.abs(out) > 1e300
            errors.add(name, "must be a finite number", np.flatnonzero(big) if len(col) == n else np.arange(n))
            out = np.where(big, np.nan, out)
        return out if len(col) == n else np.full(n, out[0])
    # slow path: find the bad elements
    values = np.full(len(col), np.nan)
    bad = np.zeros(len(col), dtype=bool)
    for i, v in enumerate(col):
        if v is None:
            continue
        if isinstance(v, list | dict):
            _nested(name)
        if isinstance(v, bool) or not isinstance(v, int | float) or (isinstance(v, int) and abs(v) > 1e300):
            bad[i] = True
        else:
            values[i] = float(v)
    if bad.any():
        errors.add(
            name,
            "must be a number (not a string, boolean, list or object)",
            np.flatnonzero(bad) if len(col) == n else np.arange(n),
        )
    return values if len(col) == n else np.full(n, values[0])


def _categorical(name: str, col: Any, n: int, allowed: tuple[str, ...] | None, errors: RowErrors) -> np.ndarray:
    if not isinstance(col, list):
        col = [col]
    arr = np.empty(len(col), dtype=object)
    arr[:] = [v if isinstance(v, str) or v is None else "" for v in col]
    is_str = np.fromiter((isinstance(v, str) and 0 < len(v) <= 64 for v in col), bool, len(col))
    given = np.fromiter((v is not None for v in col), bool, len(col))
    bad = given & ~is_str
    if allowed is not None:
        ok_value = np.isin(arr, np.array(allowed, dtype=object))
        bad |= given & is_str & ~ok_value
    if bad.any() and any(isinstance(col[i], list | dict) for i in np.flatnonzero(bad)):
        _nested(name)
    if bad.any():
        rule = f"must be one of {', '.join(allowed)}" if allowed else "must be a string of 1-64 characters"
        errors.add(name, rule, np.flatnonzero(bad) if len(col) == n else np.arange(n))
    arr = np.where(given & ~bad, arr, None)
    return arr if len(col) == n else np.full(n, arr[0], dtype=object)


def parse(positions: Any, max_rows: int) -> tuple[int, dict[str, np.ndarray], RowErrors]:
    if isinstance(positions, list):
        if len(positions) > max_rows:
            raise ApiError(
                413,
                f"a batch holds at most {max_rows} positions",
                {"positions": [f"{len(positions)} rows; at most {max_rows}"]},
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
    out: dict[str, np.ndarray] = {}
    for name in NUMERIC:
        if name in cols:
            out[name] = _numeric(name, cols[name], n, errors)
    for name in REQUIRED[1:]:
        missing = np.isnan(out[name])
        errors.add(name, "required", np.flatnonzero(missing))
    side = _categorical(SIDE, cols[SIDE], n, ("long", "short"), errors)
    errors.add(SIDE, "required", np.flatnonzero(side == None))  # noqa: E711 - elementwise
    out[SIDE] = np.where(side == "long", 1.0, np.where(side == "short", -1.0, 0.0))
    for name, allowed in CATEGORICAL.items():
        if name in cols:
            out[name] = _categorical(name, cols[name], n, allowed, errors)
    return n, out, errors


def price(positions: Any, max_rows: int, fields: list[str] | None) -> dict[str, Any]:
    n, cols, errors = parse(positions, max_rows)
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
    valid = ~errors.bad
    keys = (
        np.array(
            [
                "|".join("" if v is None else str(v) for v in combo)
                for combo in zip(*(cols[c] for c in cat_names), strict=True)
            ]
        )
        if cat_names
        else np.zeros(n, dtype="<U1")
    )
    for key in np.unique(keys[valid]) if valid.any() else []:
        rows = np.flatnonzero(valid & (keys == key))
        group = {c: cols[c][rows[0]] for c in cat_names if cols[c][rows[0]] is not None}
        # NaN in an optional column means "not given" for that row (core applies the default)
        kwargs = {name: cols[name][rows] for name in NUMERIC if name in cols and not np.isnan(cols[name][rows]).all()}
        try:
            res = core.liquidation_price(
                side=cols[SIDE][rows], **kwargs, **group, raise_errors=False, fields=set(wanted) | {"error_code"}
            )
        except ValueError as exc:
            field, _, message = str(exc).partition(": ")
            errors.add(field, message or str(exc), rows)
            continue
        rows_ok = rows
        codes = res["error_code"]
        for code in np.unique(codes[codes != 0]):
            field, message = ERRORS.get(int(code), ("body", "the position could not be computed"))
            errors.add(field, message, rows_ok[codes == code])
        good = codes == 0
        for k in wanted:
            result[k][rows_ok[good]] = res[k][good]
    bad = errors.bad
    for k in wanted:
        if result[k].dtype.kind == "f":
            result[k][bad] = np.nan
    body: dict[str, Any] = {"count": n, "valid": int((~bad).sum())}
    for k in wanted:
        if k == "warning_flags":
            continue
        if k in ("tier", "liquidation_tier"):
            body[k] = np.where(result[k] > 0, result[k], 0)
        else:
            body[k] = result[k]
    if "warning_flags" in wanted:
        flags = result["warning_flags"]
        body["warnings"] = {
            code: np.flatnonzero(flags & bit)
            for bit, (code, _) in core.liquidation.WARNINGS.items()
            if (flags & bit).any()
        }
    body["errors"] = errors.as_list()
    return body
