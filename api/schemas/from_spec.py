"""marshmallow fields built from the field spec (:mod:`core.fields`), so that every request schema taking a
position field takes it with the same type, allowed values and default."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from marshmallow import fields, validate

from core.fields import FIELDS, MAX_NUMBER, Field

from .base import Number, Text


def spec_field(spec: Field, *, required: bool, load_default: bool, none_default: bool = False) -> fields.Field:
    """The marshmallow field of one spec field. Numbers are :class:`~.base.Number` (finite, not a string or a
    boolean); their range is checked here only where the spec says the schema checks it (else the engine
    does, naming the field). Enums are ``OneOf`` their choices, free strings :class:`~.base.Text`.
    ``none_default``: not given loads as ``None`` (and an explicit ``null`` is taken too)."""
    kwargs: dict[str, Any] = {"required": required}
    if none_default:
        kwargs["load_default"] = None
    elif load_default and spec.default is not None and not required:
        kwargs["load_default"] = spec.default
    if spec.type == "number":
        if spec.range_in_schema:
            # the +-1e300 bounds are Number's own, checked before the range with their own message
            kwargs["validate"] = validate.Range(
                min=spec.minimum if spec.minimum is not None and spec.minimum > -MAX_NUMBER else None,
                max=spec.maximum if spec.maximum is not None and spec.maximum < MAX_NUMBER else None,
                min_inclusive=not spec.exclusive_minimum,
                max_inclusive=not spec.exclusive_maximum,
                error=spec.rule(),
            )
        return Number(**kwargs)
    if spec.type == "string" and spec.choices is not None:
        return fields.String(validate=validate.OneOf(spec.choices), **kwargs)
    if spec.type == "string" and (spec.min_length, spec.max_length) == (1, 64):
        return Text(**kwargs)
    raise ValueError(f"{spec.name}: no marshmallow field for a {spec.type} field of this shape")


def fields_from_spec(
    *names: str, required: Iterable[str] | None = None, load_defaults: bool = True, none_default: Iterable[str] = ()
) -> dict[str, fields.Field]:
    """``{name: marshmallow field}`` for the spec fields ``names``, in that order.

    ``required``: the fields this request requires (default: the spec's, i.e. the single position's).
    ``load_defaults``: fill in the spec's default when a field is not given (off where "not given" means
    something of its own, e.g. no position in a liquidation-probability request). ``none_default``: fields
    that load as ``None`` when not given (and take an explicit ``null``).
    """
    required = {n for n in names if FIELDS[n].required} if required is None else set(required)
    unknown = required - set(names)
    if unknown:
        raise ValueError(f"required fields not among the names: {', '.join(sorted(unknown))}")
    none_default = set(none_default)
    return {
        n: spec_field(FIELDS[n], required=n in required, load_default=load_defaults, none_default=n in none_default)
        for n in names
    }
