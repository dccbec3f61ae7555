"""Base schema (unknown fields rejected) and strict field types shared by every resource schema."""

from __future__ import annotations

import math
from itertools import repeat
from operator import is_
from typing import Any

import numpy as np
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from core.fields import FIELDS


class Base(Schema):
    """Every schema rejects unknown fields; nested schemas subclass this too, so it holds at every level
    (``unknown`` does not propagate to nested schemas by itself)."""

    class Meta:
        unknown = RAISE


class Number(fields.Field):
    """A JSON number: not a string, not a boolean, finite, at most 1e300 and 0 or at least 1e-300 in size.
    Deserialises to ``float`` (``-0.0`` to ``0.0``)."""

    default_error_messages = {
        "invalid": "must be a number (not a string or a boolean)",
        "finite": "must be a finite number",
        "range": "must be at most 1e300 in size",
        "tiny": "must be 0 or at least 1e-300 in size (subnormal numbers are not accepted)",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        if isinstance(value, int) and abs(value) > 1e300:
            raise self.make_error("range")
        out = float(value)
        if not math.isfinite(out):
            raise self.make_error("finite")
        if abs(out) > 1e300:  # the contract's bound for every number: products of such values overflow
            raise self.make_error("range")
        if 0 < abs(out) < 1e-300:  # and its lower bound: quotients of such values overflow
            raise self.make_error("tiny")
        return out + 0.0  # -0.0 becomes 0.0


class Text(fields.String):
    """A short string (1-64 characters)."""

    def __init__(self, **kwargs: Any):
        super().__init__(validate=validate.Length(min=1, max=64), **kwargs)


def one_of(*choices: str, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.OneOf(choices), **kwargs)


def exchange_field(**kwargs: Any) -> fields.String:
    """The exchange as the field spec declares it (:mod:`core.fields`), for schemas with a default of their own."""
    kwargs.setdefault("load_default", FIELDS["exchange"].default)
    return fields.String(validate=validate.OneOf(FIELDS["exchange"].choices), **kwargs)


class TierSchema(Base):
    notional_floor = Number(required=True)
    notional_cap = Number(required=True)
    max_leverage = Number(required=True)
    maintenance_margin_rate = Number(required=True)
    maintenance_amount = Number()


def tiers_field() -> fields.List:
    return fields.List(fields.Nested(TierSchema), validate=validate.Length(min=1, max=100))


def drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def require_one(data: dict[str, Any], *names: str) -> None:
    if not any(data.get(n) is not None for n in names):
        raise ValidationError(f"give one of {', '.join(names)}", names[0])


class StrictBoolean(fields.Boolean):
    """A JSON true/false only (marshmallow's Boolean also takes "yes", 1, "on"...)."""

    default_error_messages = {"invalid": "must be true or false"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class NumberList(fields.Field):
    """A JSON array of numbers checked in bulk with numpy (not one marshmallow field per element): each
    element a number, not a boolean, finite, at most 1e300 and 0 or at least 1e-300 in size (or ``null``, with
    ``allow_none_items``: NaN). Deserialises to a float64 array. Errors name the first bad elements by index, as
    ``fields.List(Number())`` does. 250,000 elements load in about 10 ms, against 0.32 s for the list field
    (``tests/bench/test_bench_upload.py``)."""

    default_error_messages = {"type": "must be an array of numbers", "length": "must hold {min} to {max} values"}

    def __init__(
        self, *, min_length: int = 1, max_length: int | None, allow_none_items: bool = False, **kwargs: Any
    ) -> None:
        """``max_length`` None: no bound here (the route has its own, as the backtests' bar limit)."""
        super().__init__(**kwargs)
        self.min_length, self.max_length, self.allow_none_items = min_length, max_length, allow_none_items
        if max_length is not None:
            self.metadata.setdefault("maxItems", max_length)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> np.ndarray:
        if not isinstance(value, list):
            raise self.make_error("type")
        n = len(value)
        if self.max_length is None and n < self.min_length:
            raise ValidationError(f"must hold at least {self.min_length} values (got {n:,})")
        if self.max_length is not None and not self.min_length <= n <= self.max_length:
            raise ValidationError(f"must hold {self.min_length} to {self.max_length:,} values (got {n:,})")
        if self.allow_none_items and None in value:
            nones = np.fromiter(map(is_, value, repeat(None)), bool, len(value))
            out = self._deserialize([0.0 if v is None else v for v in value], attr, data, **kwargs)
            out[nones] = np.nan
            return out
        try:
            arr = np.array(value, dtype=None if value else np.float64)
        except (ValueError, TypeError):  # ragged nested arrays
            arr = np.array([], dtype=object)
        if arr.dtype.kind in "fiu" and arr.ndim == 1 and arr.size == len(value):  # u: integers from 2**63
            out = arr.astype(np.float64)
            bools = ((out == 0) | (out == 1)).any() and (
                any(map(is_, value, repeat(True))) or any(map(is_, value, repeat(False)))
            )
            size = np.abs(out)
            with np.errstate(invalid="ignore"):
                bad = ~(size <= 1e300) | ((size > 0) & (size < 1e-300))
            if not bools and not bad.any():
                return out + 0.0  # -0.0 becomes 0.0
        bad_items: dict[int, list[str]] = {}
        for i, v in enumerate(value):
            if v is None:
                bad_items[i] = ["must be a number (not null)"]
            elif isinstance(v, bool) or not isinstance(v, int | float):
                bad_items[i] = [Number.default_error_messages["invalid"]]
            elif (isinstance(v, int) and abs(v) > 1e300) or not math.isfinite(v) or abs(v) > 1e300:
                bad_items[i] = [Number.default_error_messages["range"]]
            elif 0 < abs(v) < 1e-300:
                bad_items[i] = [Number.default_error_messages["tiny"]]
            if len(bad_items) >= 20:
                break
        if not bad_items:  # every element a valid number after all (integers beyond int64, say)
            return np.array([float(v) for v in value]) + 0.0
        raise ValidationError(bad_items)


class TextList(fields.Field):
    """A JSON array of short strings (1-64 characters), or of one of ``choices``, checked with one pass
    of C-level ``map`` calls rather than one marshmallow field per element. Deserialises to a list."""

    def __init__(self, *, choices: tuple[str, ...] | None = None, min_length: int = 1, max_length: int, **kwargs):
        super().__init__(**kwargs)
        self.choices, self.min_length, self.max_length = choices, min_length, max_length

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        if not isinstance(value, list):
            raise ValidationError("must be an array of strings")
        if not self.min_length <= len(value) <= self.max_length:
            raise ValidationError(f"must hold {self.min_length} to {self.max_length:,} values (got {len(value):,})")
        if all(map(str.__instancecheck__, value)):
            if self.choices is not None:
                try:
                    if set(value) <= set(self.choices):
                        return value
                except TypeError:
                    pass
            elif value and min(map(len, value)) >= 1 and max(map(len, value)) <= 64:
                return value
            elif not value:
                return value
        rule = f"must be one of: {', '.join(self.choices)}" if self.choices else "must be a string of 1-64 characters"
        bad_items: dict[int, list[str]] = {}
        for i, v in enumerate(value):
            if not isinstance(v, str) or (v not in self.choices if self.choices else not 0 < len(v) <= 64):
                bad_items[i] = [rule]
                if len(bad_items) >= 20:
                    break
        raise ValidationError(bad_items)
