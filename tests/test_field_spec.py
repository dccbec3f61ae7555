"""The field spec (``core.fields``) and everything built from or written next to it agree: ``openapi.yaml``'s
request schemas (type, bounds, enum, lengths, default and required-ness of every spec field they hold), the
marshmallow schemas that serve them, the batch columns and the ``liqrisk calc`` options.

Each mismatch is reported by schema path and field, so one run lists everything to fix."""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from marshmallow import Schema, fields, missing, validate

import core
from api import batch, calc_cli
from api.schemas import calculators, market, position, risk
from core.fields import BATCH_FIELDS, FIELDS, MAX_NUMBER, POSITION_FIELDS, Field
from core.tiers import EXCHANGES

SPEC = yaml.safe_load((Path(__file__).parents[1] / "openapi.yaml").read_text())

#: each operation whose request holds spec fields → the marshmallow schema its route loads it with
OPERATIONS: dict[str, type[Schema]] = {
    "/v1/liquidation-price": position.PositionSchema,
    "/v1/portfolio/liquidation": position.PortfolioSchema,
    "/v1/pnl": calculators.PnlSchema,
    "/v1/target-price": calculators.TargetPriceSchema,
    "/v1/max-open": calculators.MaxOpenSchema,
    "/v1/average-entry": calculators.AverageEntrySchema,
    "/v1/break-even": calculators.BreakEvenSchema,
    "/v1/funding": calculators.FundingSchema,
    "/v1/risk/liquidation-probability": risk.LiquidationProbabilitySchema,
    "/v1/risk/position-size": risk.PositionSizeSchema,
    "/v1/market/squeeze-score": market.SqueezeScoreSchema,
    "/v1/market/liquidation-summary": market.LiquidationSummarySchema,
    "/v1/market/liquidation-map": market.LiquidationMapSchema,
    "/v1/market/cascade": market.CascadeSchema,
}
#: operations checked elsewhere: the batch's columns (below, against ``BATCH_FIELDS``), and the backtests and
#: sweeps, whose strategy fields (a leverage of at most 125, say) are ``backtest.params``'s, not the position's
OTHER_OPERATIONS = ("/v1/liquidation-price/batch", "/v1/backtests", "/v1/sweeps")
#: the bounds of a number property and the spec's attribute giving each
BOUNDS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "minLength", "maxLength")


def deref(node: dict[str, Any]) -> dict[str, Any]:
    """A property with its ``$ref`` followed (keywords beside the ``$ref`` win, as in OpenAPI 3.1)."""
    while "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def compare(where: str, prop: dict[str, Any], spec: Field) -> list[str]:
    """Where a YAML property says otherwise than the spec: type, bounds, enum and default."""
    want, problems = spec.json_schema(), []
    if prop.get("type") != want["type"]:
        problems.append(f"{where}: type {prop.get('type')!r} in the YAML, {want['type']!r} in the spec")
    if prop.get("enum") != want.get("enum"):
        problems.append(f"{where}: enum {prop.get('enum')} in the YAML, {want.get('enum')} in the spec")
    for key in BOUNDS:
        if prop.get(key) != want.get(key):
            problems.append(f"{where}: {key} {prop.get(key)} in the YAML, {want.get(key)} in the spec")
    if "default" in prop and prop["default"] != spec.default:
        problems.append(f"{where}: default {prop['default']!r} in the YAML, {spec.default!r} in the spec")
    return problems


def nested_schema(field: fields.Field | None) -> type[Schema] | Schema | None:
    if isinstance(field, fields.List):
        field = field.inner
    if isinstance(field, fields.Nested):
        return field.nested
    return None


def walk(where: str, node: dict[str, Any], schema: type[Schema] | Schema | None) -> list[str]:
    """Mismatches in one object schema of the YAML and the marshmallow schema serving it, and in the objects
    nested in it (arrays of objects included)."""
    node = deref(node)
    if node.get("type") == "array":
        return walk(where + "[]", node.get("items", {}), schema)
    if node.get("type") != "object":
        return []
    served = schema() if isinstance(schema, type) else schema
    served_fields = served.fields if served is not None else {}
    required = set(node.get("required", []))
    problems: list[str] = []
    for name, raw in node.get("properties", {}).items():
        prop = deref(raw)
        here = f"{where}.{name}"
        field = served_fields.get(name)
        if name in FIELDS and prop.get("type") == "array":  # a series of the field: its elements' words
            items = deref(prop.get("items", {}))
            if FIELDS[name].choices is not None and items.get("enum") != list(FIELDS[name].choices):
                problems.append(f"{here}[]: enum {items.get('enum')} in the YAML, {FIELDS[name].choices} in the spec")
        elif name in FIELDS:
            problems += compare(here, prop, FIELDS[name])
            if served is None:
                continue
            if field is None:
                problems.append(f"{here}: in the YAML, not in {type(served).__name__}")
                continue
            if (name in required) != field.required:
                problems.append(f"{here}: required {name in required} in the YAML, {field.required} in the schema")
            loaded = field.load_default
            if loaded not in (missing, None) and prop.get("default") != loaded:
                problems.append(
                    f"{here}: the schema fills in {loaded!r}, the YAML says default {prop.get('default')!r}"
                )
            problems += served_agrees(here, field, FIELDS[name])
        problems += walk(here, prop, nested_schema(field))
    for name in sorted(set(served_fields) & set(FIELDS) - set(node.get("properties", {}))):
        problems.append(f"{where}.{name}: in {type(served).__name__}, not in the YAML")
    return problems


def served_agrees(where: str, field: fields.Field, spec: Field) -> list[str]:
    """The marshmallow field takes the spec's words (enums) or lengths (free strings)."""
    one_of = [v for v in field.validators if isinstance(v, validate.OneOf)]
    if spec.choices is not None and (not one_of or tuple(one_of[0].choices) != spec.choices):
        return [f"{where}: the schema allows {one_of[0].choices if one_of else 'any value'}, the spec {spec.choices}"]
    length = [v for v in field.validators if isinstance(v, validate.Length)]
    if spec.max_length is not None and (
        not length or (length[0].min, length[0].max) != (spec.min_length, spec.max_length)
    ):
        return [f"{where}: the schema's length differs from the spec's {spec.min_length}-{spec.max_length}"]
    return []


def request_body(path: str) -> dict[str, Any]:
    return SPEC["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]


def test_yaml_requests_agree_with_the_spec_and_the_schemas() -> None:
    problems: list[str] = []
    for path, schema in OPERATIONS.items():
        problems += walk(path, request_body(path), schema)
    assert not problems, "openapi.yaml, core.fields and the schemas disagree:\n" + "\n".join(problems)


def test_every_request_is_checked() -> None:
    posted = {p for p, ops in SPEC["paths"].items() if "post" in ops}
    assert posted == set(OPERATIONS) | set(OTHER_OPERATIONS)


def test_batch_columns_are_the_spec_fields() -> None:
    columnar, rows = deref(request_body("/v1/liquidation-price/batch"))["properties"]["positions"]["oneOf"]
    assert list(columnar["properties"]) == list(BATCH_FIELDS)
    assert set(columnar["required"]) == set(batch.REQUIRED)
    assert list(deref(rows["items"])["properties"]) == list(BATCH_FIELDS)
    assert {*batch.NUMERIC, *batch.CATEGORICAL, batch.SIDE} == set(BATCH_FIELDS)
    assert sorted(BATCH_FIELDS) == sorted(POSITION_FIELDS)  # the position's fields, in the batch's parsing order
    assert batch.CATEGORICAL["exchange"] == EXCHANGES


def calc_options(name: str) -> dict[str, argparse.Action]:
    parser = argparse.ArgumentParser()
    calc_cli.register(parser.add_subparsers())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    calc = next(a for a in sub.choices["calc"]._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in calc.choices[name]._actions if a.dest in FIELDS}


@pytest.mark.parametrize("name", sorted(calc_cli.CALCULATORS))
def test_calc_options_agree_with_the_spec(name: str) -> None:
    method, path = calc_cli.CALCULATORS[name]
    props = calc_cli._fields(method, path)[0]
    problems = []
    for dest, action in calc_options(name).items():
        spec = FIELDS[dest]
        if deref(props[dest]).get("type") == "array":  # a series or list named like the field (JSON)
            continue
        if dest in calc_cli._fields(method, path)[2]:  # a part of the URL: any name, 404 when unknown
            continue
        if spec.choices is not None and tuple(action.choices or ()) != spec.choices:
            problems.append(f"--{dest}: choices {action.choices}, the spec {spec.choices}")
        if spec.type == "number":
            if action.type is not calc_cli._number:
                problems.append(f"--{dest}: not read as a number")
            for bound in (b for b in calc_cli._range(spec.json_schema()).split(", ") if b):
                if bound not in action.help.replace("%%", "%"):
                    problems.append(f"--{dest}: help {action.help!r} does not say {bound!r}")
    assert not problems, "\n".join(problems)


def test_spec_fields_are_well_formed() -> None:
    for name, spec in FIELDS.items():
        assert spec.name == name and spec.description
        if spec.type == "number":
            assert spec.minimum is not None and spec.maximum is not None, name  # every number is bounded
            assert -MAX_NUMBER <= spec.minimum < spec.maximum <= MAX_NUMBER, name
        if spec.default is not None and spec.choices is not None:
            assert spec.default in spec.choices, name


def test_a_disagreement_is_reported_by_name(monkeypatch) -> None:
    changed = copy.deepcopy(SPEC)
    position_yaml = changed["components"]["schemas"]["Position"]
    position_yaml["properties"]["entry_price"] = {"type": "number", "minimum": 0, "maximum": MAX_NUMBER}
    position_yaml["properties"]["margin_mode"] = {
        "type": "string",
        "enum": ["cross", "isolated"],
        "default": "isolated",
    }
    position_yaml["required"].remove("quantity")
    del position_yaml["properties"]["taker_fee_rate"]
    monkeypatch.setattr(sys.modules[__name__], "SPEC", changed)
    assert walk("Position", {"$ref": "#/components/schemas/Position"}, position.PositionSchema) == [
        "Position.margin_mode: enum ['cross', 'isolated'] in the YAML, ['isolated', 'cross'] in the spec",
        "Position.entry_price: minimum 0 in the YAML, None in the spec",
        "Position.entry_price: exclusiveMinimum None in the YAML, 0 in the spec",
        "Position.quantity: required False in the YAML, True in the schema",
        "Position.taker_fee_rate: in PositionSchema, not in the YAML",
    ]


#: what a single position needs besides the field under test for the engine to read it
CONTEXT = {
    "wallet_balance": {"margin_mode": "cross"},
    "contract_size": {"symbol": "BTCUSD_PERP", "contract_type": "inverse"},
    "contract_type": {"contract_size": 100.0, "maintenance_margin_rate": 0.005},
    "exchange": {"maintenance_margin_rate": 0.005},
    "margin_mode": {"wallet_balance": 1_000.0},
}
POSITION = {"side": "long", "entry_price": 100.0, "quantity": 1.0, "leverage": 10.0}
BOUNDED = [
    (n, bound, exclusive)
    for n in BATCH_FIELDS
    if FIELDS[n].type == "number"
    for bound, exclusive in (
        (FIELDS[n].minimum, FIELDS[n].exclusive_minimum),
        (FIELDS[n].maximum, FIELDS[n].exclusive_maximum),
    )
    if abs(bound) < MAX_NUMBER
]


@pytest.mark.parametrize(("name", "bound", "exclusive"), BOUNDED)
def test_the_engine_refuses_what_the_spec_refuses(name: str, bound: float, exclusive: bool) -> None:
    """At a bound the engine takes the value when the spec includes it and refuses it, with the spec's rule,
    when the spec excludes it; one step beyond the bound is refused."""
    spec = FIELDS[name]
    outside = bound - 1e-6 if bound == spec.minimum else bound + 1e-6
    position = {**POSITION, **CONTEXT.get(name, {})}
    for value, refused in ((bound, exclusive), (outside, True)):
        if refused:
            with pytest.raises(ValueError, match=f"^{name}: {re.escape(spec.rule())}"):
                core.liquidation_price(**{**position, name: value})
        else:
            core.liquidation_price(**{**position, name: value})


@pytest.mark.parametrize("name", [n for n in BATCH_FIELDS if FIELDS[n].choices is not None])
def test_the_engine_takes_exactly_the_spec_choices(name: str) -> None:
    position = {**POSITION, **CONTEXT.get(name, {})}
    if name == "contract_type":
        position["exchange"] = "generic"  # a generic symbol is either kind
    for choice in FIELDS[name].choices:
        core.liquidation_price(**{**position, name: choice})
    with pytest.raises(ValueError, match=f"^{name}: "):
        core.liquidation_price(**{**position, name: "other"})
