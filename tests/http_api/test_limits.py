"""Bounded serving: every cost limit is refused up front with a problem naming the field and the limit, a
request past its compute budget is a 503 problem (Retry-After, request id, logged and counted), and the
JSON the contract does not allow (duplicate keys, subnormal numbers, integers beyond the float range,
chunked bodies over the limit) is refused consistently; ``-0.0`` is never echoed."""

from __future__ import annotations

import io
import json

import numpy as np
import orjson
import pytest

from api import TestConfig, create_app

PROB = {"side": "long", "mark_price": 100000, "liquidation_price": 90000, "volatility": 0.6}
SINGLE = {"side": "long", "entry_price": 100000, "quantity": 0.5, "leverage": 20}


def client_with(**settings):
    return create_app(type("Cfg", (TestConfig,), settings)).test_client()


def problem(resp, status: int) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.content_type == "application/problem+json"
    return resp.get_json()


# --- cost limits -------------------------------------------------------------------------------------------


def test_monte_carlo_paths_times_steps_is_limited(client):
    body = {**PROB, "model": "student_t", "paths": 200_000, "horizon_hours": 48, "monitoring_minutes": 1}
    err = problem(client.post("/v1/risk/liquidation-probability", json=body), 422)
    for field in ("paths", "monitoring_minutes", "horizon_hours"):
        assert "at most 5,000,000" in err["errors"][field][0] and "200,000 x 2,880" in err["errors"][field][0]
    small = {**body, "paths": 1000, "horizon_hours": 24, "monitoring_minutes": 60}
    assert client.post("/v1/risk/liquidation-probability", json=small).status_code == 200
    tight = client_with(PROBABILITY_MAX_PATH_STEPS=10_000)
    assert "paths" in problem(tight.post("/v1/risk/liquidation-probability", json=small), 422)["errors"]


@pytest.mark.parametrize(
    "field, value",
    [("monitoring_minutes", 1e-300), ("monitoring_minutes", 0.001), ("monitoring_minutes", 20_000),
     ("horizon_hours", 10_000), ("horizon_hours", 0)],
)  # fmt: skip
def test_horizon_and_monitoring_ranges(client, field, value):
    for model in ("gbm", "student_t"):
        resp = client.post("/v1/risk/liquidation-probability", json={**PROB, "model": model, field: value})
        assert field in problem(resp, 422)["errors"]


def test_liquidation_map_bars_times_leverages_is_limited():
    c = client_with(MAP_MAX_LEVELS=100)
    bars = {"close": [100.0 + i for i in range(30)], "open_interest": [1e6 + i for i in range(30)]}
    err = problem(c.post("/v1/market/liquidation-map", json=bars), 422)  # 30 bars x 4 default leverages
    assert set(err["errors"]) == {"close", "leverage"} and "30 x 4 = 120; at most 100" in err["errors"]["close"][0]
    three = {**bars, "leverage": [10, 20, 50], "leverage_weights": [1, 1, 1]}  # 90 levels
    assert c.post("/v1/market/liquidation-map", json=three).status_code == 200


def test_batch_distinct_groups_are_limited_and_unknown_symbols_count_once():
    c = client_with(MAX_BATCH_GROUPS=2)
    cols = {"side": "long", "entry_price": 100.0, "quantity": 1.0, "leverage": 10.0}
    known = {**cols, "symbol": ["BTCUSDT", "ETHUSDT", "BTCUSDT"], "exchange": ["binance", "binance", "bybit"]}
    err = problem(c.post("/v1/liquidation-price/batch", json={"positions": known}), 422)
    assert "3 groups; at most 2" in err["errors"]["positions.symbol"][0]
    unknown = {**cols, "symbol": [f"X{i}USDT" for i in range(300)], "maintenance_margin_rate": 0.005}
    body = c.post("/v1/liquidation-price/batch", json={"positions": unknown}).get_json()
    assert body["valid"] == 300 and len(set(body["liquidation_price"])) == 1
    partly = {**cols, "symbol": ["BTCUSDT", "NOPEUSDT"]}  # an unknown symbol without a rate: that row only
    body = c.post("/v1/liquidation-price/batch", json={"positions": partly}).get_json()
    assert body["valid"] == 1 and body["errors"][0]["field"] == "symbol" and body["errors"][0]["rows"] == [1]


def test_batch_rows_and_body_size_are_limited():
    c = client_with(MAX_BATCH_ROWS=10, MAX_CONTENT_LENGTH=2048)
    rows = {"side": "long", "entry_price": [100.0] * 11, "quantity": 1.0, "leverage": 2.0}
    assert "positions" in problem(c.post("/v1/liquidation-price/batch", json={"positions": rows}), 413)["errors"]
    big = {"positions": {**rows, "entry_price": [100.0] * 5, "symbol": "X" * 4000}}
    assert "body" in problem(c.post("/v1/liquidation-price/batch", json=big), 413)["errors"]


def test_a_list_of_position_objects_has_its_own_lower_limit():
    c = client_with(MAX_BATCH_ROWS=10, MAX_BATCH_OBJECT_ROWS=4)
    one = {"side": "long", "entry_price": 100.0, "quantity": 1.0, "leverage": 2.0}
    err = problem(c.post("/v1/liquidation-price/batch", json={"positions": [one] * 5}), 413)
    assert err["errors"]["positions"] == ["5 rows; at most 4 as a list of objects; send up to 10 rows as columns"]
    assert c.post("/v1/liquidation-price/batch", json={"positions": [one] * 4}).get_json()["valid"] == 4
    columns = {**one, "entry_price": [100.0] * 10}  # the same positions as columns: up to MAX_BATCH_ROWS
    assert c.post("/v1/liquidation-price/batch", json={"positions": columns}).get_json()["valid"] == 10


# --- the compute budget ------------------------------------------------------------------------------------


def test_over_budget_is_a_503_problem_with_retry_after_logged_and_counted(capsys):
    c = client_with(REQUEST_BUDGET=1e-9, RETRY_AFTER=7, ACCESS_LOG=True)
    body = {**PROB, "model": "student_t", "paths": 1000}
    resp = c.post("/v1/risk/liquidation-probability", json=body, headers={"X-Request-ID": "budget-test-1"})
    err = problem(resp, 503)
    assert resp.headers["Retry-After"] == "7" and resp.headers["X-Request-ID"] == "budget-test-1"
    assert "budget-test-1" in err["detail"] and "monitoring_minutes" in err["errors"]
    log = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith('{"ts"')]
    assert any(x["request_id"] == "budget-test-1" and x["status"] == 503 for x in log)
    metrics = c.get("/metrics").get_data(as_text=True)
    assert 'liqrisk_request_budget_exceeded_total{route="/v1/risk/liquidation-probability"}' in metrics
    assert c.post("/v1/pnl", json={**SINGLE, "exit_price": 110}).status_code == 200  # no loop, no check
    cascade = {"start_price": 100, "shock_pct": -5, "cluster_price": [99.0], "cluster_notional": [1e6],
               "cluster_side": ["long"]}  # fmt: skip
    assert "max_steps" in problem(c.post("/v1/market/cascade", json=cascade), 503)["errors"]
    bars = {"close": [100.0, 101.0], "open_interest": [1e6, 2e6]}
    assert "close" in problem(c.post("/v1/market/liquidation-map", json=bars), 503)["errors"]
    batch = {"positions": {"side": "long", "entry_price": [100.0], "quantity": 1.0, "leverage": 2.0}}
    assert "positions" in problem(c.post("/v1/liquidation-price/batch", json=batch), 503)["errors"]


# --- JSON the contract does not allow ------------------------------------------------------------------------


def raw_post(client, path: str, raw: bytes):
    return client.post(path, data=raw, content_type="application/json")


def test_duplicate_keys_are_422_naming_the_key(client):
    raw = b'{"side": "long", "entry_price": 100000, "quantity": 0.5, "leverage": 20, "leverage": 100}'
    assert problem(raw_post(client, "/v1/liquidation-price", raw), 422)["errors"] == {
        "leverage": ["duplicate key: give each field once"]
    }
    nested = b'{"positions": {"side": "long", "side": "short", "entry_price": [1, 2], "quantity": 1, "leverage": 2}}'
    assert "side" in problem(raw_post(client, "/v1/liquidation-price/batch", nested), 422)["errors"]
    colons = {**SINGLE, "symbol": "A:B", "maintenance_margin_rate": 0.005}  # colons inside strings are fine
    assert client.post("/v1/liquidation-price", json=colons).status_code == 200


@pytest.mark.parametrize("tiny", ["5e-324", "1e-310", "-2.2e-308"])
def test_subnormal_numbers_are_422_naming_the_field(client, tiny):
    raw = b'{"side": "long", "entry_price": 100000, "quantity": %s, "leverage": 20}' % tiny.encode()
    assert "quantity" in problem(raw_post(client, "/v1/liquidation-price", raw), 422)["errors"]
    series = b'{"closes": [100, %s, 101], "side": "long", "mark_price": 100, "liquidation_price": 90}' % tiny.encode()
    assert "closes[1]" in problem(raw_post(client, "/v1/risk/liquidation-probability", series), 422)["errors"]
    batch = b'{"positions": {"side": "long", "entry_price": [100, 100], "quantity": [1, %s], "leverage": 2}}' % (
        tiny.encode()
    )
    body = raw_post(client, "/v1/liquidation-price/batch", batch).get_json()
    assert body["valid"] == 1 and body["errors"][0]["field"] == "quantity" and body["errors"][0]["rows"] == [1]


def test_integers_beyond_float_range_are_422_naming_the_field(client):
    huge = b"1" + b"0" * 400
    raw = b'{"side": "long", "entry_price": %s, "quantity": 0.5, "leverage": 20}' % huge
    assert "entry_price" in problem(raw_post(client, "/v1/liquidation-price", raw), 422)["errors"]
    in_range = b'{"side": "long", "entry_price": %s, "quantity": 0.5, "leverage": 20}' % (b"1" + b"0" * 305)
    assert "entry_price" in problem(raw_post(client, "/v1/liquidation-price", in_range), 422)["errors"]


def test_large_malformed_bodies_get_orjson_message_without_a_second_parse(app):
    c = app.test_client()
    closes = b",".join([b"100.5"] * 300_000)  # ~1.8 MB, over the 1 MiB re-parse bound
    nan = b'{"side": "long", "mark_price": 100, "liquidation_price": 90, "closes": [%s,NaN]}' % closes
    err = problem(raw_post(c, "/v1/risk/liquidation-probability", nan), 422)
    assert list(err["errors"]) == ["closes[300000]"] and "char" in err["detail"]
    broken = b'{"side": "long", "mark_price": 100, "closes": [%s,}' % closes
    err = problem(raw_post(c, "/v1/risk/liquidation-probability", broken), 400)
    assert err["detail"].startswith("malformed JSON: ") and "char" in err["detail"]


def test_negative_zero_is_never_echoed(client):
    bars = {"close": [100.0, 101.0, 99.0], "open_interest": [1e6, 2e6, 3e6], "long_share": -0.0}
    resp = client.post("/v1/market/liquidation-map", json=bars)
    assert resp.status_code == 200 and b"-0.0" not in resp.get_data()
    assert resp.get_json()["assumptions"]["long_share"] == 0.0
    pnl = client.post("/v1/pnl", json={**SINGLE, "exit_price": 100000, "funding_paid": -0.0})
    assert pnl.status_code == 200 and b"-0.0" not in pnl.get_data()


def test_chunked_body_over_the_limit_is_413_not_truncated():
    c = client_with(MAX_BODY_DEFAULT=1024)
    valid = orjson.dumps(SINGLE) + b" " * 900  # 1 KB of valid JSON, within the limit

    def chunked(data: bytes):
        return c.post(
            "/v1/liquidation-price",
            input_stream=io.BytesIO(data),
            content_type="application/json",
            headers={"Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},  # as gunicorn sets it for a chunked body
        )

    assert len(valid) <= 1024 and chunked(valid).status_code == 200
    over = chunked(valid + b"garbage" * 100)  # the same valid prefix: it must not be cut off and answered
    assert "body" in problem(over, 413)["errors"]


def _bars(n: int) -> dict:
    """``n`` valid columnar bars (time, OHLC), ``funding_rate`` null but on every eighth bar."""
    close = [100.0 + (i % 7) for i in range(n)]
    return {"time": [1.7e12 + i * 6e4 for i in range(n)], "open": close, "high": [c + 1 for c in close],
            "low": [c - 1 for c in close], "close": close,
            "funding_rate": [0.0001 if i % 8 == 0 else None for i in range(n)]}  # fmt: skip


def test_uploaded_bars_over_the_bar_limit_are_413_before_their_columns_are_checked() -> None:
    """``LIQRISK_BACKTEST_MAX_BARS`` (TestConfig: 20,000) is checked on every column's length before any element
    is: a column too long is refused naming it, even when its elements are not numbers."""
    c = create_app(TestConfig).test_client()
    limit = TestConfig.BACKTEST_MAX_BARS
    over = {**_bars(10), "close": ["x"] * (limit + 1)}
    err = problem(c.post("/v1/backtests", json={"bars": over}), 413)
    assert err["errors"] == {"bars.close": [f"{limit + 1} bars; at most {limit}"]}
    err = problem(c.post("/v1/sweeps", json={"bars": _bars(limit + 1), "grid": {"leverage": [2, 3]}}), 413)
    assert set(err["errors"]) == {"bars.time"}


def test_bar_columns_are_checked_in_bulk_with_the_number_rules() -> None:
    """The bar columns load with the numbers' rules (element errors by index, nulls only where allowed) into
    float64 arrays, ``null`` funding rates as NaN; a valid upload gets past them (to the job queue: none here)."""
    from api.schemas.backtests import BarsSchema

    loaded = BarsSchema().load(_bars(16))
    assert loaded["close"].dtype == np.float64 and loaded["time"][1] - loaded["time"][0] == 6e4
    assert np.isnan(loaded["funding_rate"][1:8]).all() and loaded["funding_rate"][8] == 0.0001
    c = create_app(TestConfig).test_client()
    bad = {**_bars(12), "close": [100.0] * 11 + [True], "open": [100.0] * 5 + [None] * 7}
    err = problem(c.post("/v1/backtests", json={"bars": bad}), 422)["errors"]
    assert err["bars.close[11]"] == ["must be a number (not a string or a boolean)"]
    assert set(err) == {"bars.close[11]", *(f"bars.open[{i}]" for i in range(5, 12))}
    assert err["bars.open[5]"] == ["must be a number (not null)"]
    short = problem(c.post("/v1/backtests", json={"bars": _bars(9)}), 422)["errors"]
    assert set(short) == {"bars.time", "bars.open", "bars.high", "bars.low", "bars.close", "bars.funding_rate"}
    assert short["bars.time"] == ["must hold at least 10 values (got 9)"]
    # integers beyond int64 are numbers like any other (numpy reads them as uint64 or objects)
    big = {"side": "long", "quantity": 1, "mark_prices": [2**63, 2**70], "funding_rates": [0.0001, 0]}
    assert c.post("/v1/funding", json=big).status_code == 200
    assert problem(c.post("/v1/backtests", json={"bars": _bars(12)}), 503)["errors"] == {
        "broker": ["set LIQRISK_BROKER_URL to a Redis URL and start `liqrisk worker`"]
    }
