"""Every worked example through HTTP gives the same numbers as core; route behaviour and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from werkzeug import exceptions as wz

import core
from worked_examples import CASES, Case

ROUTES = {
    "liquidation_price": "/v1/liquidation-price",
    "pnl": "/v1/pnl",
    "target_price": "/v1/target-price",
    "average_entry": "/v1/average-entry",
}


def _close(a, b) -> bool:
    return (a is None and (b is None or math.isnan(b))) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_worked_example_over_http_equals_core(client, case: Case) -> None:
    resp = client.post(ROUTES[case.function], json=case.kwargs)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    direct = getattr(core, case.function)(**case.kwargs)
    for name, expected in case.expected.items():
        assert _close(body[name], direct[name]), (name, body[name], direct[name])
        tol = case.abs_tol if case.abs_tol is not None else case.rel_tol * abs(expected)
        assert abs(body[name] - expected) <= tol + 1e-12, (case.id, name)


def test_liquidation_fields_and_null_when_none(client) -> None:
    resp = client.post(
        "/v1/liquidation-price",
        json={
            "exchange": "generic",
            "side": "long",
            "entry_price": 100,
            "quantity": 1,
            "margin": 100,
            "maintenance_margin_rate": 0,
        },
    )
    body = resp.get_json()
    assert resp.status_code == 200 and body["liquidation_price"] is None
    assert body["warnings"][0]["code"] == "no_liquidation" and body["tier"] is None


def test_tier_changed_warning_over_http(client) -> None:
    body = client.post(
        "/v1/liquidation-price", json={"side": "long", "entry_price": 100000, "quantity": 100, "leverage": 1.01}
    ).get_json()
    assert body["tier"] == 4 and body["liquidation_tier"] == 1
    assert [w["code"] for w in body["warnings"] if w["code"] != "stale_tiers"] == ["tier_changed"]


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"side": "long", "entry_price": "100", "quantity": 1, "leverage": 2}, 422, "entry_price"),
        ({"side": "long", "entry_price": True, "quantity": 1, "leverage": 2}, 422, "entry_price"),
        ({"side": "long", "entry_price": -1, "quantity": 1, "leverage": 2}, 422, "entry_price"),
        ({"side": "long", "entry_price": 1e308, "quantity": 1e308, "leverage": 2}, 422, "quantity"),
        ({"side": "long", "entry_price": 100, "quantity": 0, "leverage": 2}, 422, "quantity"),
        ({"side": "sideways", "entry_price": 100, "quantity": 1, "leverage": 2}, 422, "side"),
        ({"entry_price": 100, "quantity": 1, "leverage": 2}, 422, "side"),
        ({"side": "long", "entry_price": 100, "quantity": 1, "leverage": 2, "colour": "red"}, 422, "colour"),
        ({"side": "long", "entry_price": 100, "quantity": 1, "leverage": 500}, 422, "leverage"),
        ({"side": "long", "entry_price": 100, "quantity": 1}, 422, "leverage"),
        ({"side": "long", "entry_price": 100, "quantity": 1, "margin_mode": "cross"}, 422, "wallet_balance"),
        ({"side": "long", "entry_price": 100, "quantity": 1, "leverage": 2, "exchange": "ftx"}, 422, "exchange"),
        ({"side": "long", "entry_price": 100, "quantity": 1, "leverage": 2, "symbol": "NOSUCHUSDT"}, 404, "symbol"),
        (
            {"side": "long", "entry_price": 100, "quantity": 1, "leverage": 2, "tiers": [{"notional_floor": 0}]},
            422,
            "tiers[0].notional_cap",
        ),
    ],
)
def test_bad_position_names_the_field(client, payload, status, field) -> None:
    resp = client.post("/v1/liquidation-price", json=payload)
    assert resp.status_code == status, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert field in body["errors"], body
    assert set(body) == {"type", "title", "status", "detail", "errors"} and body["status"] == status


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ('{"side": "long", "entry_price": NaN, "quantity": 1, "leverage": 2}', "application/json", 422),
        ('{"side": "long", "entry_price": Infinity, "quantity": 1, "leverage": 2}', "application/json", 422),
        ("{not json", "application/json", 400),
        ("", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ('{"side": "long"}', "text/plain", 415),
        ("[" * 5000 + "]" * 5000, "application/json", 400),
        ('{"a":' * 40 + "1" + "}" * 40, "application/json", 400),
    ],
)
def test_malformed_bodies(client, data, content_type, status) -> None:
    resp = client.post("/v1/liquidation-price", data=data, content_type=content_type)
    assert resp.status_code == status and resp.mimetype == "application/problem+json"


def test_body_too_large_is_413(client, app) -> None:
    big = b'{"side": "long", "pad": "' + b"x" * (app.config["MAX_CONTENT_LENGTH"] + 10) + b'"}'
    resp = client.post("/v1/liquidation-price", data=big, content_type="application/json")
    assert resp.status_code == 413 and resp.get_json()["errors"]


def test_method_not_allowed_keeps_allow_header(client) -> None:
    resp = client.get("/v1/pnl")
    assert resp.status_code == 405 and "POST" in resp.headers["Allow"]
    assert resp.mimetype == "application/problem+json"


def test_unknown_route_is_problem_404(client) -> None:
    resp = client.get("/v1/nope")
    assert resp.status_code == 404 and resp.get_json()["status"] == 404


WERKZEUG_ERRORS = [
    cls
    for cls in vars(wz).values()
    if isinstance(cls, type) and issubclass(cls, wz.HTTPException) and cls.code and cls.code >= 400
]


@pytest.mark.parametrize("exc", WERKZEUG_ERRORS, ids=lambda c: f"{c.code}-{c.__name__}")
def test_every_werkzeug_exception_is_problem_json(exc) -> None:
    from api import TestConfig, create_app

    app = create_app(TestConfig)

    @app.get("/boom")
    def boom():
        if exc is wz.MethodNotAllowed:
            raise exc(valid_methods=["POST"])
        if exc is wz.TooManyRequests:
            raise exc(retry_after=7)
        raise exc()

    resp = app.test_client().get("/boom")
    assert resp.status_code == exc.code
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["status"] == exc.code and body["title"] and isinstance(body["errors"], dict)
    if exc is wz.MethodNotAllowed:
        assert resp.headers["Allow"] == "POST"
    if exc is wz.TooManyRequests:
        assert resp.headers["Retry-After"] == "7"


def test_unexpected_exception_is_500_without_internals() -> None:
    from api import TestConfig, create_app

    app = create_app(TestConfig)

    @app.get("/crash")
    def crash():
        raise RuntimeError("secret /etc/path detail")

    resp = app.test_client().get("/crash")
    assert resp.status_code == 500
    text = resp.get_data(as_text=True)
    assert "secret" not in text and "Traceback" not in text and "/etc" not in text


def test_batch_columnar_per_row_errors(client) -> None:
    resp = client.post(
        "/v1/liquidation-price/batch",
        json={
            "positions": {
                "side": ["long", "short", "up", "long"],
                "entry_price": [100000, 100000, 100000, -5],
                "quantity": [0.5, "x", 1, 1],
                "leverage": 10,
                "symbol": ["BTCUSDT", "BTCUSDT", "BTCUSDT", "ETHUSDT"],
            }
        },
    )
    body = resp.get_json()
    assert resp.status_code == 200 and body["count"] == 4 and body["valid"] == 1
    assert body["liquidation_price"][0] == pytest.approx(
        core.liquidation_price(side="long", entry_price=100000, quantity=0.5, leverage=10)["liquidation_price"]
    )
    assert body["liquidation_price"][1:] == [None, None, None]
    errors = {e["field"]: e["rows"] for e in body["errors"]}
    assert errors == {"quantity": [1], "side": [2], "entry_price": [3]}


def test_batch_tier_is_null_where_no_tier_applies_as_in_one_answer(client) -> None:
    position = {"side": "long", "entry_price": 100000, "quantity": 1, "leverage": 10}
    columns = {**position, "entry_price": [100000, 100000, -1], "maintenance_margin_rate": [None, 0.01, None]}
    body = client.post("/v1/liquidation-price/batch", json={"positions": columns}).get_json()
    given_mmr = client.post("/v1/liquidation-price", json={**position, "maintenance_margin_rate": 0.01}).get_json()
    from_table = client.post("/v1/liquidation-price", json=position).get_json()
    assert given_mmr["tier"] is None and from_table["tier"] >= 1
    # row 0 priced from the tier table, row 1 with its own MMR, row 2 invalid
    assert body["tier"] == [from_table["tier"], None, None]
    assert body["liquidation_tier"] == [from_table["liquidation_tier"], None, None]
    priced = client.post("/v1/liquidation-price/batch", json={"positions": {**position, "entry_price": [1e5, 9e4]}})
    assert priced.get_json()["tier"] == [from_table["tier"]] * 2


def test_batch_matches_core_and_row_form(client) -> None:
    rng = np.random.default_rng(1)
    n = 200
    cols = {
        "side": list(np.where(rng.random(n) < 0.5, "long", "short")),
        "entry_price": list(rng.uniform(1000, 100000, n)),
        "quantity": list(rng.uniform(0.01, 5, n)),
        "leverage": list(rng.uniform(1, 50, n)),
        "symbol": ["BTCUSDT"] * (n // 2) + ["ETHUSDT"] * (n - n // 2),
    }
    body = client.post("/v1/liquidation-price/batch", json={"positions": cols}).get_json()
    rows = [dict(zip(cols, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]
    body_rows = client.post("/v1/liquidation-price/batch", json={"positions": rows}).get_json()
    assert body == body_rows
    for i in (0, n - 1):
        direct = core.liquidation_price(**{k: v[i] for k, v in cols.items()})
        assert body["liquidation_price"][i] == pytest.approx(direct["liquidation_price"], rel=1e-12)


def test_batch_fields_selection_and_limits(client, app) -> None:
    body = client.post(
        "/v1/liquidation-price/batch",
        json={
            "positions": {"side": "long", "entry_price": [100, 200], "quantity": 1, "leverage": 2},
            "fields": ["liquidation_price"],
        },
    ).get_json()
    assert set(body) == {"count", "valid", "liquidation_price", "errors", "tiers_as_of"}
    too_many = app.config["MAX_BATCH_ROWS"] + 1
    resp = client.post(
        "/v1/liquidation-price/batch",
        json={"positions": {"side": "long", "entry_price": [100.0] * too_many, "quantity": 1, "leverage": 2}},
    )
    assert resp.status_code == 413 and "positions" in resp.get_json()["errors"]
    resp = client.post(
        "/v1/liquidation-price/batch",
        json={"positions": {"side": "long", "entry_price": [1, 2], "quantity": [1, 2, 3], "leverage": 2}},
    )
    assert resp.status_code == 422


def test_portfolio_hedge_and_errors(client) -> None:
    body = client.post(
        "/v1/portfolio/liquidation",
        json={
            "wallet_balance": 2000,
            "position_mode": "hedge",
            "positions": [
                {"symbol": "BTCUSDT", "side": "long", "entry_price": 100000, "quantity": 0.3},
                {"symbol": "BTCUSDT", "side": "short", "entry_price": 101000, "quantity": 0.1},
            ],
        },
    ).get_json()
    assert body["positions"][0]["liquidation_price"] == body["positions"][1]["liquidation_price"]
    resp = client.post(
        "/v1/portfolio/liquidation",
        json={
            "wallet_balance": 10,
            "positions": [{"symbol": "BTCUSDT", "side": "long", "entry_price": 1, "quantity": -1}],
        },
    )
    assert resp.status_code == 422 and "positions[0].quantity" in resp.get_json()["errors"]


def test_calculators_over_http(client) -> None:
    assert (
        client.post(
            "/v1/max-open", json={"side": "long", "entry_price": 100000, "leverage": 100, "available_balance": 1e9}
        ).get_json()["limited_by"]
        == "tier"
    )
    be = client.post(
        "/v1/break-even", json={"side": "long", "entry_price": 100, "open_fee_rate": 0.001, "close_fee_rate": 0.001}
    ).get_json()["break_even_price"]
    assert be == pytest.approx(100 * 1.001 / 0.999)
    f = client.post(
        "/v1/funding",
        json={"side": "short", "quantity": 2, "mark_prices": [100, 100], "funding_rates": [0.0001, -0.0003]},
    ).get_json()
    assert f["total"] == pytest.approx(0.04)
    resp = client.post(
        "/v1/funding", json={"side": "short", "quantity": 2, "mark_prices": [100], "funding_rates": [0.0001, -0.0003]}
    )
    assert resp.status_code == 422 and "funding_rates" in resp.get_json()["errors"]


def test_exchanges_and_tiers(client) -> None:
    body = client.get("/v1/exchanges").get_json()
    assert {e["exchange"] for e in body["exchanges"]} == {"binance", "bybit", "okx", "gate", "hyperliquid", "generic"}
    table = client.get("/v1/exchanges/binance/tiers/BTCUSDT").get_json()
    assert table["as_of"] == "2026-09-29" and len(table["tiers"]) == 12
    tier = client.get("/v1/exchanges/binance/tiers/BTCUSDT?notional=300000").get_json()
    assert tier["tier"] == 2
    assert client.get("/v1/exchanges/binance/tiers/NOPE").status_code == 404
    assert client.get("/v1/exchanges/binance/tiers/BTCUSDT?notional=abc").status_code == 422


def test_docs_are_served_offline(client) -> None:
    page = client.get("/docs/")
    assert page.status_code == 200 and b"swagger" in page.data.lower()
    assert b"cdn" not in page.data.lower() and b"unpkg" not in page.data.lower()
    assert client.get("/docs/swagger-ui-bundle.js").status_code == 200
