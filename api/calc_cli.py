"""``liqrisk calc <calculator> --<field> <value> ...``: the HTTP API's calculators from a shell.

Each calculator's options are built from its request schema in openapi.yaml (type, allowed values, range,
default and description; where the schema has none, the field spec's description from :mod:`core.fields`,
which ``tests/test_field_spec.py`` keeps in step with the YAML) and the request goes through the same Flask
app as HTTP (in process, no server), so the command line accepts and refuses exactly what ``POST /v1/...``
does and prints the same JSON, or the same problem's field errors on stderr (exit 1). Lists and objects are
given as JSON (``--fills '[{"price": 100, "quantity": 1}]'``); ``--entry-price`` and ``--entry_price`` are the
same option.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from functools import cache
from typing import Any

import yaml

from core.fields import FIELDS

#: calculator name → (method, path) of the HTTP operation it runs
CALCULATORS = {
    "liquidation-price": ("post", "/v1/liquidation-price"),
    "liquidation-price-batch": ("post", "/v1/liquidation-price/batch"),
    "portfolio-liquidation": ("post", "/v1/portfolio/liquidation"),
    "pnl": ("post", "/v1/pnl"),
    "target-price": ("post", "/v1/target-price"),
    "max-open": ("post", "/v1/max-open"),
    "average-entry": ("post", "/v1/average-entry"),
    "break-even": ("post", "/v1/break-even"),
    "funding": ("post", "/v1/funding"),
    "liquidation-probability": ("post", "/v1/risk/liquidation-probability"),
    "position-size": ("post", "/v1/risk/position-size"),
    "squeeze-score": ("post", "/v1/market/squeeze-score"),
    "liquidation-summary": ("post", "/v1/market/liquidation-summary"),
    "liquidation-map": ("post", "/v1/market/liquidation-map"),
    "cascade": ("post", "/v1/market/cascade"),
    "tiers": ("get", "/v1/exchanges/{exchange}/tiers/{symbol}"),
}

#: what a field means, for --help where the schema has no description of its own: the field spec's
#: description for the position and trade fields, these for the others
MEANING = {
    **{name: spec.description for name, spec in FIELDS.items()},
    "equity": "account equity, margin currency",
    "tiers": "a tier table of your own, JSON list of tiers",
    "other_positions": "other positions in the cross wallet, JSON list",
    "positions": "the positions, JSON",
    "fills": 'fills, JSON list of {"price", "quantity"}',
    "mark_prices": "mark price at each funding time, JSON list",
    "funding_rates": "funding rate of each interval, decimal, JSON list",
    "horizon_hours": "horizon, hours",
    "risk_fraction": "share of equity to lose at the stop, decimal",
    "liquidation_buffer": "distance kept between stop and liquidation, decimal of price",
    "liquidation_price": "liquidation price (instead of the position's fields)",
    "notional": "position notional: the tier it falls in (default: the whole table)",
    "fields": "outputs to compute, JSON list",
    "series": "aligned series, JSON object of lists (oldest first)",
}


@cache
def _spec() -> dict[str, Any]:
    from .routes.meta import spec_text

    return yaml.safe_load(spec_text())


def _deref(node: Any) -> Any:
    """Follow ``$ref`` (``#/components/schemas/X``) until a schema."""
    spec = _spec()
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _fields(method: str, path: str) -> tuple[dict[str, dict[str, Any]], set[str], set[str]]:
    """(field → schema, required fields, path parameters) of an operation."""
    op = _spec()["paths"][path][method]
    props: dict[str, dict[str, Any]] = {}
    required: set[str] = set()
    in_path: set[str] = set()
    for param in op.get("parameters", []):
        props[param["name"]] = {**_deref(param["schema"]), "description": param.get("description")}
        if param.get("required"):
            required.add(param["name"])
        if param["in"] == "path":
            in_path.add(param["name"])
    if "requestBody" in op:
        body = _deref(op["requestBody"]["content"]["application/json"]["schema"])
        required |= set(body.get("required", []))
        for name, schema in body.get("properties", {}).items():
            own = schema.get("description")
            schema = _deref(schema)
            props[name] = {**schema, "description": own or schema.get("description")}
    return props, required, in_path


def _kind(schema: dict[str, Any]) -> str:
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if "enum" in schema:
        return "enum"
    if "number" in types:
        return "number"
    if "integer" in types:
        return "integer"
    if "string" in types:
        return "string"
    return "json"  # arrays, objects and unions


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"must be JSON (a list, an object or a number), not {text!r}") from None


def _range(schema: dict[str, Any]) -> str:
    parts = []
    for key, sign in (("exclusiveMinimum", ">"), ("minimum", ">="), ("exclusiveMaximum", "<"), ("maximum", "<=")):
        if key in schema and abs(schema[key]) < 1e300:
            parts.append(f"{sign} {schema[key]:g}")
    return ", ".join(parts)


def _help(name: str, schema: dict[str, Any], required: bool) -> str:
    text = (schema.get("description") or MEANING.get(name) or name.replace("_", " ")).rstrip(".")
    bounds = _range(schema)
    if bounds:
        text += f"; {bounds}"
    if required:
        text = re.sub(r" \(default: [^)]*\)", "", text) + " (required)"
    elif "default" in schema:
        text += f" (default: {schema['default']})"
    elif "default" not in text:
        text += " (default: not given)"
    return text.replace("%", "%%")


def _build(p: argparse.ArgumentParser, method: str, path: str) -> None:
    props, required, in_path = _fields(method, path)
    for name, schema in props.items():
        kind = _kind(schema)
        flags = [f"--{name.replace('_', '-')}"] + ([f"--{name}"] if "_" in name else [])
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": _help(name, schema, name in required)}
        if name in in_path:
            kwargs["required"] = True  # a part of the URL: argparse says it is missing
        if kind == "enum":
            kwargs["choices"] = schema["enum"]
        elif kind == "number":
            kwargs["type"], kwargs["metavar"] = _number, "NUMBER"
        elif kind == "integer":
            kwargs["type"], kwargs["metavar"] = _integer, "INTEGER"
        elif kind == "json":
            kwargs["type"], kwargs["metavar"] = _json, "JSON"
        p.add_argument(*flags, **kwargs)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``calc`` and one sub-command per calculator to a ``liqrisk`` argument parser."""
    p_calc = sub.add_parser(
        "calc",
        help="run a calculator of the HTTP API and print its result as JSON",
        description="Run a calculator of the HTTP API in process and print its JSON result; "
        "`liqrisk calc <calculator> --help` lists its options.",
    )
    calcs = p_calc.add_subparsers(dest="calculator", required=True, metavar="CALCULATOR")
    for name, (method, path) in CALCULATORS.items():
        op = _spec()["paths"][path][method]
        p = calcs.add_parser(
            name,
            help=op["summary"],
            description=f"{op['summary']} ({method.upper()} {path}).",
        )
        _build(p, method, path)
        p.set_defaults(func=lambda args, m=method, pa=path: run(m, pa, args))


def run(method: str, path: str, args: argparse.Namespace) -> int:
    """Send the options given as the operation's request to the app; print the JSON or the problem."""
    from . import TestConfig, create_app

    props, _, in_path = _fields(method, path)
    given = {k: getattr(args, k) for k in props if getattr(args, k, None) is not None}

    class CliConfig(TestConfig):
        MAX_BATCH_ROWS = 1_000_000  # in-process: no request budget to keep
        MAX_BATCH_OBJECT_ROWS = 1_000_000
        MAX_CONTENT_LENGTH = 128 * 1024 * 1024

    client = create_app(CliConfig).test_client()
    if method == "get":
        url = path.format(**{k: given.pop(k, "") for k in in_path})
        resp = client.get(url, query_string=given)
    else:
        resp = client.post(path, json=given)
    body = resp.get_json()
    if resp.status_code == 200:
        print(json.dumps(body, indent=2))
        return 0
    errors = body.get("errors") or {}
    lines = [f"liqrisk calc: {body.get('detail') or body.get('title')}"]
    lines += [f"  --{field.replace('_', '-')}: {'; '.join(msgs)}" for field, msgs in errors.items()]
    print("\n".join(lines), file=sys.stderr)
    return 1
