"""The flat loader (:mod:`api.schemas.flat`) gives exactly what marshmallow gives: the same dict (keys, order,
values, the sign of zeros) for every body it loads itself, and marshmallow's own errors for every other body,
over generated bodies of every route schema (valid values, edge numbers, wrong types, unknown keys, nulls)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError, fields, validate

from api.routes import calculators, liquidation, market, risk
from api.schemas.base import Number
from api.schemas.flat import FlatLoader, loader

SCHEMAS = {
    f"{mod.__name__.rsplit('.', 1)[-1]}.{name}": obj
    for mod in (calculators, liquidation, market, risk)
    for name, obj in vars(mod).items()
    if name.endswith("_schema")
}

EDGE_NUMBERS = st.sampled_from(
    [0, 0.0, -0.0, 1, -1, 0.5, 20, 1e300, -1e300, 1e301, 1e-300, 1e-301, 5e-324, 10**300, 10**301, 10**400]
)
ANY_VALUE = st.one_of(
    EDGE_NUMBERS,
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(),
    st.integers(),
    st.booleans(),
    st.none(),
    st.text(max_size=70),
    st.sampled_from(["", "x" * 64, "x" * 65, "BTCUSDT", "long", "short", "binance", "cross", "inverse"]),
    st.lists(st.floats(allow_nan=False), max_size=3),
    st.just({}),
)


def _valid_value(f: fields.Field):
    """Values the field accepts (so that the fast path is taken often, not only the fallback)."""
    if isinstance(f, Number):
        ranges = [v for v in f.validators if isinstance(v, validate.Range)]
        lo = max([v.min for v in ranges if v.min is not None] or [-1e6])
        return st.floats(min_value=lo, max_value=1e6, exclude_min=True, allow_nan=False) | st.just(-0.0)
    if isinstance(f, fields.String):
        choices = [v.choices for v in f.validators if isinstance(v, validate.OneOf)]
        return st.sampled_from(list(choices[0])) if choices else st.text(min_size=1, max_size=64)
    return ANY_VALUE


def bodies(schema):
    names = list(schema.load_fields)
    per_field = {n: st.one_of(_valid_value(schema.load_fields[n]), _valid_value(schema.load_fields[n]), ANY_VALUE)
                 for n in names}  # fmt: skip
    keys = st.lists(st.sampled_from([*names, "not_a_field"]), unique=True, max_size=len(names) + 1)
    required = [n for n in names if schema.load_fields[n].required]
    keys = st.one_of(keys, keys.map(lambda ks: list(dict.fromkeys([*required, *ks]))))
    return keys.flatmap(lambda ks: st.fixed_dictionaries({k: per_field.get(k, ANY_VALUE) for k in ks}))


def _outcome(load, body):
    try:
        return "ok", load(body)
    except ValidationError as exc:
        return "error", exc.messages


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b if not hasattr(a, "shape") else (a == b).all()


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_flat_loader_gives_what_marshmallow_gives(name):
    schema = SCHEMAS[name]
    fast = FlatLoader(schema)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(bodies(schema))
    def check(body):
        expected = _outcome(schema.load, body)
        got = _outcome(fast.load, body)
        assert got[0] == expected[0] and _same(got[1], expected[1]), (body, got, expected)

    check()


def test_the_single_position_is_loaded_on_the_fast_path(monkeypatch):
    schema = liquidation.position_schema
    fast = FlatLoader(schema)
    body = {"exchange": "binance", "symbol": "BTCUSDT", "side": "long", "entry_price": 100000, "quantity": 0.5,
            "leverage": 20}  # fmt: skip
    expected = schema.load(body)

    def fail(*args, **kwargs):
        raise AssertionError("marshmallow was called")

    monkeypatch.setattr(schema, "load", fail)
    out = fast.load(body)
    assert out == expected and list(out) == list(expected) and type(out["entry_price"]) is float


def test_a_schema_with_hooks_is_always_loaded_by_marshmallow():
    from api.schemas.position import OtherPositionSchema

    assert FlatLoader(OtherPositionSchema()).plan is None


def test_one_loader_per_schema_instance():
    schema = liquidation.position_schema
    assert loader(schema) is loader(schema) and loader(schema).schema is schema
