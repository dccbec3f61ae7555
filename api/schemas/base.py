"""Base schema (unknown fields rejected) and strict field types shared by every resource schema."""

from __future__ import annotations

import math
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from core.tiers import EXCHANGES


class Base(Schema):
    """Every schema rejects unknown fields; nested schemas subclass this too, so it holds at every level
    (``unknown`` does not propagate to nested schemas by itself)."""

    class Meta:
        unknown = RAISE


class Number(fields.Field):
    """A JSON number: not a string, not a boolean, finite. Deserialises to ``float``."""

    default_error_messages = {
        "invalid": "must be a number (not a string or a boolean)",
        "finite": "must be a finite number",
        "range": "must be at most 1e300 in size",
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
        return out


def positive(**kwargs: Any) -> Number:
    """A number > 0 (a contract size, say): 0 or less is refused even where the value is not used."""
    return Number(validate=validate.Range(min=0, min_inclusive=False, error="must be a finite number > 0"), **kwargs)


class Text(fields.String):
    """A short string (1-64 characters)."""

    def __init__(self, **kwargs: Any):
        super().__init__(validate=validate.Length(min=1, max=64), **kwargs)


def one_of(*choices: str, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.OneOf(choices), **kwargs)


SIDE = ("long", "short")
CONTRACT_TYPES = ("linear", "inverse")
MARGIN_MODES = ("isolated", "cross")
POSITION_MODES = ("one_way", "hedge")


def exchange_field(**kwargs: Any) -> fields.String:
    kwargs.setdefault("load_default", "binance")
    return fields.String(validate=validate.OneOf(EXCHANGES), **kwargs)


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
