"""Benchmarks of one small request's cost inside the app (``make bench``): ``POST /v1/liquidation-price`` and
``GET /healthz`` through the Flask test client and through ``app.wsgi_app`` with a prepared WSGI environ (what
gunicorn calls, without the test client's own cost), with the JSON access log on and rate limiting off (as
the load test runs); and the single position's schema load on the flat path against marshmallow's. No timing
is asserted; each case checks its answer. ``core.liquidation_price`` of that one position is timed on its own too,
with Python numbers (the direct one-position path) and with the same numbers as 0-d arrays (the general path).
"""

from __future__ import annotations

import io
import sys

import numpy as np
import orjson
import pytest
from werkzeug.test import EnvironBuilder

import core
from api import Config, create_app
from api.routes import liquidation
from api.schemas.flat import FlatLoader

BODY = {"exchange": "binance", "symbol": "BTCUSDT", "side": "long", "entry_price": 100000, "quantity": 0.5,
        "leverage": 20}  # fmt: skip
RAW = orjson.dumps(BODY)
#: (100,000 − 100,000/20) / (1 − 0.004): Binance tier 1 of BTCUSDT (MMR 0.4 %, no maintenance amount)
EXPECTED = 95_000 / 0.996


class BenchConfig(Config):
    RATE_LIMIT_ENABLED = False
    ACCESS_LOG = True


@pytest.fixture(scope="module")
def app():
    return create_app(BenchConfig)


@pytest.fixture
def quiet_stdout(tmp_path, monkeypatch):
    """The access log goes to a real file, as under the load test."""
    with open(tmp_path / "access.log", "w") as f:
        monkeypatch.setattr(sys, "stdout", f)
        yield


@pytest.mark.benchmark(group="one-request")
def test_single_liquidation_test_client(benchmark, app, quiet_stdout) -> None:
    client = app.test_client()

    def post():
        return client.post("/v1/liquidation-price", data=RAW, content_type="application/json")

    resp = benchmark(post)
    assert resp.status_code == 200 and resp.get_json()["liquidation_price"] == pytest.approx(EXPECTED, rel=1e-12)


@pytest.mark.benchmark(group="one-request")
def test_healthz_test_client(benchmark, app, quiet_stdout) -> None:
    client = app.test_client()
    resp = benchmark(client.get, "/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok"}


def _wsgi_call(app, path: str, method: str, data: bytes):
    builder = EnvironBuilder(path=path, method=method, data=data or None,
                             content_type="application/json" if data else None)  # fmt: skip
    environ = builder.get_environ()
    environ["REMOTE_ADDR"] = "127.0.0.1"
    status: list[str] = []

    def start_response(code, headers, exc_info=None):
        status.append(code)

    def call():
        env = dict(environ)
        env["wsgi.input"] = io.BytesIO(data)
        status.clear()
        out = app.wsgi_app(env, start_response)
        try:
            return status[0], b"".join(out)
        finally:
            getattr(out, "close", lambda: None)()

    return call


@pytest.mark.benchmark(group="one-request")
def test_single_liquidation_wsgi(benchmark, app, quiet_stdout) -> None:
    status, body = benchmark(_wsgi_call(app, "/v1/liquidation-price", "POST", RAW))
    assert status == "200 OK" and orjson.loads(body)["liquidation_price"] == pytest.approx(EXPECTED, rel=1e-12)


@pytest.mark.benchmark(group="one-request")
def test_healthz_wsgi(benchmark, app, quiet_stdout) -> None:
    status, body = benchmark(_wsgi_call(app, "/healthz", "GET", b""))
    assert status == "200 OK" and orjson.loads(body) == {"status": "ok"}


@pytest.mark.benchmark(group="position-schema-load")
def test_position_load_flat(benchmark) -> None:
    loader = FlatLoader(liquidation.position_schema)
    out = benchmark(loader.load, BODY)
    assert out == liquidation.position_schema.load(BODY)


@pytest.mark.benchmark(group="position-schema-load")
def test_position_load_marshmallow(benchmark) -> None:
    out = benchmark(liquidation.position_schema.load, BODY)
    assert out["entry_price"] == 100_000.0 and out["margin_mode"] == "isolated"


CORE_ARGS = {"exchange": "binance", "symbol": "BTCUSDT", "side": "long", "entry_price": 100_000.0, "quantity": 0.5,
             "leverage": 20.0}  # fmt: skip


@pytest.mark.benchmark(group="one-position-core")
def test_core_one_position(benchmark) -> None:
    res = benchmark(lambda: core.liquidation_price(**CORE_ARGS))
    assert res["liquidation_price"] == pytest.approx(EXPECTED, rel=1e-12) and res["warnings"] == []


@pytest.mark.benchmark(group="one-position-core")
def test_core_one_position_as_arrays(benchmark) -> None:
    args = {k: np.asarray(v) if isinstance(v, float) else v for k, v in CORE_ARGS.items()}
    res = benchmark(lambda: core.liquidation_price(**args))
    assert res == core.liquidation_price(**CORE_ARGS)  # the same dict of Python scalars on either path
