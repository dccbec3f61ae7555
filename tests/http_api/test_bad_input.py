"""The bad-input catalogue: for every POST route, each kind of bad input gets a 4xx problem+json that names
the field, never a 5xx. (Value errors inside a batch are per-row: a 200 whose ``errors`` name the field and
the rows; the batch's structure errors are 4xx like everywhere else.)"""

from __future__ import annotations

import copy
import json

import pytest

SERIES = [100.0 + i for i in range(40)]
# route -> (a valid body, a positive number to spoil, an enum field to spoil, a required field to drop)
ROUTES = {
    "/v1/liquidation-price": (
        {"exchange": "binance", "symbol": "BTCUSDT", "side": "long", "entry_price": 100000, "quantity": 0.5,
         "leverage": 20},
        ("quantity",), ("side",), "entry_price"),
    "/v1/liquidation-price/batch": (
        {"positions": {"side": ["long", "short"], "entry_price": [100000, 3500], "quantity": [0.5, 10],
                       "leverage": [20, 10], "symbol": ["BTCUSDT", "ETHUSDT"]}},
        ("positions", "quantity", 0), ("positions", "side", 0), "positions"),
    "/v1/portfolio/liquidation": (
        {"wallet_balance": 10000, "positions": [{"symbol": "BTCUSDT", "side": "long", "quantity": 1,
                                                 "entry_price": 30000, "mark_price": 30000}]},
        ("positions", 0, "quantity"), ("positions", 0, "side"), "wallet_balance"),
    "/v1/pnl": (
        {"side": "long", "entry_price": 36000, "exit_price": 40000, "quantity": 2, "leverage": 10},
        ("quantity",), ("side",), "entry_price"),
    "/v1/target-price": (
        {"side": "long", "entry_price": 7000, "leverage": 5, "target_roe": 0.2},
        ("entry_price",), ("side",), "target_roe"),
    "/v1/max-open": (
        {"exchange": "binance", "symbol": "BTCUSDT", "side": "long", "entry_price": 100000, "leverage": 10,
         "available_balance": 10000},
        ("entry_price",), ("side",), "available_balance"),
    "/v1/average-entry": (
        {"fills": [{"price": 7000, "quantity": 1}, {"price": 7500, "quantity": 0.2}]},
        ("fills", 0, "price"), ("contract_type",), "fills"),
    "/v1/break-even": (
        {"side": "long", "entry_price": 100000, "open_fee_rate": 0.0005, "close_fee_rate": 0.0005},
        ("entry_price",), ("side",), "entry_price"),
    "/v1/funding": (
        {"side": "long", "quantity": 1, "mark_prices": [100000, 101000], "funding_rates": [0.0001, -5e-05]},
        ("quantity",), ("side",), "mark_prices"),
    "/v1/risk/liquidation-probability": (
        {"side": "long", "mark_price": 100000, "liquidation_price": 90452.26, "volatility": 0.6,
         "horizon_hours": 168},
        ("volatility",), ("model",), "mark_price"),
    "/v1/risk/position-size": (
        {"equity": 10000, "risk_fraction": 0.01, "side": "long", "entry_price": 100000, "stop_price": 98000},
        ("equity",), ("side",), "equity"),
    "/v1/market/squeeze-score": (
        {"series": {"close": SERIES, "funding_rate": [0.0001] * 40, "open_interest": [1e9] * 40,
                    "long_short_ratio": [1.0] * 40}},
        ("series", "close", 0), ("series", "bogus_enum"), "series"),
    "/v1/market/liquidation-summary": (
        {"long_liquidations": [10.0, 5.0], "short_liquidations": [1.0, 2.0], "assets": ["BTC", "ETH"]},
        ("long_liquidations", 0), ("window",), "short_liquidations"),
    "/v1/market/liquidation-map": (
        {"close": SERIES, "open_interest": [1e9 + 1e6 * i for i in range(40)]},
        ("close", 0), ("exchange",), "close"),
    "/v1/market/cascade": (
        {"start_price": 100000, "shock_pct": 2, "cluster_price": [102000], "cluster_notional": [1e8],
         "cluster_side": ["short"], "depth_per_pct": 1e8},
        ("start_price",), ("impact_model",), "shock_pct"),
    "/v1/backtests": (
        {"dataset": {"name": "synthetic", "bars": 500}, "strategy": {"leverage": 3}},
        ("strategy", "leverage"), ("strategy", "side"), "dataset"),
}  # fmt: skip


def _name(path: tuple) -> str:
    return str(next(p for p in reversed(path) if isinstance(p, str)))


def _set(body: dict, path: tuple, value) -> dict:
    out = copy.deepcopy(body)
    node = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return out


def _check(resp, field: str, route: str) -> None:
    assert resp.status_code < 500, (route, resp.status_code, resp.get_data(as_text=True)[:300])
    body = resp.get_json(silent=True) or {}
    if route.endswith("/batch") and resp.status_code == 200:  # per-row errors
        named = " ".join(e["field"] for e in body.get("errors", []))
        assert field in named, (route, body.get("errors"))
        return
    assert 400 <= resp.status_code < 500, (route, resp.status_code)
    assert resp.content_type == "application/problem+json"
    keys = " ".join(body["errors"])
    assert field in keys, (route, field, body)


BAD_NUMBERS = {
    "NaN": "NaN",
    "Infinity": "Infinity",
    "1e308": "1e308",
    "negative": "-1",
    "zero": "0",
    "string": '"100"',
    "boolean": "true",
}


# zero liquidations on a day is a real value, not bad input
ZERO_IS_VALID = {"/v1/market/liquidation-summary"}


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("kind", list(BAD_NUMBERS))
def test_bad_numbers(client, route, kind):
    body, number, _, _ = ROUTES[route]
    marker = "__BAD__"
    raw = json.dumps(_set(body, number, marker)).replace(f'"{marker}"', BAD_NUMBERS[kind])
    resp = client.post(route, data=raw, content_type="application/json")
    if kind == "zero" and route in ZERO_IS_VALID:
        assert resp.status_code == 200
        return
    _check(resp, _name(number), route)


@pytest.mark.parametrize("route", list(ROUTES))
def test_unknown_enum_value(client, route):
    body, _, enum, _ = ROUTES[route]
    _check(client.post(route, json=_set(body, enum, "sideways")), _name(enum), route)


@pytest.mark.parametrize("route", list(ROUTES))
def test_missing_required_field(client, route):
    body, _, _, required = ROUTES[route]
    spoiled = {k: v for k, v in body.items() if k != required}
    _check(client.post(route, json=spoiled), required, route)


@pytest.mark.parametrize("route", list(ROUTES))
def test_unknown_field(client, route):
    body = ROUTES[route][0]
    _check(client.post(route, json={**body, "bogus_field": 1}), "bogus_field", route)


@pytest.mark.parametrize("route", list(ROUTES))
def test_empty_body_wrong_type_and_huge_body(client, route):
    _check(client.post(route, data="", content_type="application/json"), "body", route)
    _check(client.post(route, data=json.dumps(ROUTES[route][0]), content_type="text/plain"), "Content-Type", route)
    huge = json.dumps({**ROUTES[route][0], "pad": "x" * (10 * 1024 * 1024)})
    resp = client.post(route, data=huge, content_type="application/json")
    assert resp.status_code == 413
    _check(resp, "body", route)


@pytest.mark.parametrize("route", list(ROUTES))
def test_deeply_nested_json(client, route):
    deep = "[" * 100_000 + "]" * 100_000
    _check(client.post(route, data='{"a": ' + deep + "}", content_type="application/json"), "body", route)


def test_batch_over_the_row_limit(client):
    limit = client.application.config["MAX_BATCH_ROWS"]
    n = limit + 1
    cols = {"side": ["long"] * n, "entry_price": [1.0] * n, "quantity": [1.0] * n, "leverage": [2.0] * n}
    resp = client.post("/v1/liquidation-price/batch", json={"positions": cols})
    assert resp.status_code == 413
    _check(resp, "positions", "/v1/liquidation-price/batch")


@pytest.mark.parametrize("bad", ["NaN", "-5", "x", "true", "1e308", "inf"])
def test_bad_query_parameter(client, bad):
    resp = client.get(f"/v1/exchanges/binance/tiers/BTCUSDT?notional={bad}")
    assert 400 <= resp.status_code < 500 and resp.content_type == "application/problem+json"
    assert "notional" in " ".join(resp.get_json()["errors"])
