"""A fast path for ``schema.load`` on flat bodies: every given field a number or a string.

A single-position request is a flat object of a few numbers and strings, and marshmallow spends most of its
time on the machinery around them (a getter, an error store and a validator call per declared field). A
:class:`FlatLoader` is built once from a schema's own declared fields and does only the checks those fields
do — :class:`~.base.Number` (a JSON number, finite, at most 1e300, 0 or at least 1e-300 in size) with its
``Range``, ``String`` with ``OneOf`` or ``Length`` — and fills in their defaults, giving the very dict
``schema.load`` gives. Anything else is left to marshmallow itself: a body with an unknown key, a nested or
list field, ``null``, a value that fails any check, or a schema with hooks (``pre_load``, ``validates``,
``validates_schema``...). So an invalid body gets exactly marshmallow's errors, and a schema the loader does
not understand is always loaded by marshmallow.
"""

from __future__ import annotations

import math
from typing import Any

from marshmallow import RAISE, Schema, fields, missing, validate

from .base import Number

#: how one field is checked: (name, kind, validators, load_default, allow_none); kind is "number", "string"
#: or "other" (only marshmallow loads it)
_Plan = tuple[str, str, tuple, Any, bool]
_NUMBER, _STRING, _OTHER = 0, 1, 2
_KINDS = {"number": _NUMBER, "string": _STRING, "other": _OTHER}


class FlatLoader:
    """``loader.load(data)`` returns ``schema.load(data)`` (the same dict) for a flat body of valid numbers
    and strings, and calls ``schema.load(data)`` itself for anything else."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.plan: tuple[_Plan, ...] | None = self._plan(schema)
        self.known = frozenset(schema.load_fields) if self.plan is not None else frozenset()
        self.required = frozenset(name for name, f in schema.load_fields.items() if f.required)
        self._steps = None if self.plan is None else tuple(self._step(p) for p in self.plan)

    @staticmethod
    def _plan(schema: Schema) -> tuple[_Plan, ...] | None:
        if any(schema._hooks.values()) or schema.many or schema.partial or schema.unknown != RAISE:
            return None
        plan = []
        for name, f in schema.load_fields.items():
            if f.data_key not in (None, name) or f.attribute not in (None, name) or f.pre_load or f.post_load:
                return None
            kind = "other"
            if type(f)._deserialize is Number._deserialize and all(type(v) is validate.Range for v in f.validators):
                kind = "number"
            elif type(f)._deserialize is fields.String._deserialize and all(
                type(v) in (validate.OneOf, validate.Length) for v in f.validators
            ):
                kind = "string"
            plan.append((name, kind, tuple(f.validators), f.load_default, f.allow_none))
        return tuple(plan)

    def _step(self, plan: _Plan) -> tuple:
        """One field's plan with its checks read out of the validator objects once: ``(name, kind, checks,
        default, allow_none, required)``; ``checks`` is ``(min, min_inclusive, max, max_inclusive)`` per
        ``Range`` of a number, or ``(choices, None)`` per ``OneOf`` and ``(None, (equal, min, max))`` per
        ``Length`` of a string."""
        name, kind, validators, default, allow_none = plan
        if kind == "number":
            checks = tuple((v.min, v.min_inclusive, v.max, v.max_inclusive) for v in validators)
        elif kind == "string":
            checks = tuple(
                (frozenset(v.choices), None) if type(v) is validate.OneOf else (None, (v.equal, v.min, v.max))
                for v in validators
            )
        else:
            checks = ()
        return name, _KINDS[kind], checks, default, allow_none, name in self.required

    def load(self, data: Any) -> dict[str, Any]:
        if self.plan is None or type(data) is not dict or not self.known.issuperset(data):
            return self.schema.load(data)
        out = self._flat(data)
        return self.schema.load(data) if out is None else out

    def _flat(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """The loaded dict, or None when a field needs marshmallow (to load it or to word its error)."""
        out: dict[str, Any] = {}
        get = data.get
        for name, kind, checks, default, allow_none, required in self._steps:  # type: ignore[union-attr]
            value = get(name, missing)
            if value is missing:
                if required:
                    return None
                if default is not missing:
                    value = default() if callable(default) else default
                    if value is not missing:
                        out[name] = value
                continue
            if value is None:
                if not allow_none:
                    return None
                out[name] = None
                continue
            if kind == _NUMBER:
                t = type(value)
                if t is not float and t is not int:  # not a bool, a string or a container
                    return None
                if t is int and abs(value) > 1e300:
                    return None
                value = float(value)
                size = abs(value)
                if not math.isfinite(value) or size > 1e300 or 0 < size < 1e-300:
                    return None
                value += 0.0  # -0.0 becomes 0.0
                for lo, lo_inclusive, hi, hi_inclusive in checks:  # Range
                    if lo is not None and (value < lo if lo_inclusive else value <= lo):
                        return None
                    if hi is not None and (value > hi if hi_inclusive else value >= hi):
                        return None
            elif kind == _STRING:
                if type(value) is not str:
                    return None
                for choices, length in checks:
                    if choices is not None:  # OneOf
                        if value not in choices:
                            return None
                    elif length[0] is not None:  # Length(equal=)
                        if len(value) != length[0]:
                            return None
                    elif (length[1] is not None and len(value) < length[1]) or (
                        length[2] is not None and len(value) > length[2]
                    ):
                        return None
            else:
                return None
            out[name] = value
        return out


_loaders: dict[int, FlatLoader] = {}


def loader(schema: Schema) -> FlatLoader:
    """The loader of ``schema`` (an instance created once at import, as every route's schema is)."""
    found = _loaders.get(id(schema))
    if found is None or found.schema is not schema:
        found = _loaders[id(schema)] = FlatLoader(schema)
    return found
