"""Production hardening: body limits per route, rate limits (per worker in memory, shared through Redis),
API keys, CORS, security headers, request ids and the JSON access log, metrics, readiness, no internals."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time

import pytest

from api import TestConfig, create_app

PNL = {"side": "long", "entry_price": 100, "exit_price": 110, "quantity": 1, "leverage": 10}
TARGET = {"side": "long", "entry_price": 100, "leverage": 10, "target_roe": 0.5}


def app_with(**settings):
    cfg = type("Cfg", (TestConfig,), settings)
    return create_app(cfg)


def test_body_limit_is_per_route():
    c = app_with(MAX_BODY_DEFAULT=1024, MAX_BODY_SERIES=64 * 1024).test_client()
    big = {**PNL, "pad": "x" * 2000}
    r = c.post("/v1/pnl", json=big)
    assert r.status_code == 413 and r.json["errors"] == {"body": [r.json["detail"]]}
    series = {"series": {k: [1.0] * 300 for k in ("close", "funding_rate", "open_interest", "long_short_ratio")}}
    assert len(json.dumps(series)) > 1024
    assert c.post("/v1/market/squeeze-score", json=series).status_code == 200  # the series routes allow more
    batch = {"positions": {"side": ["long"] * 200, "entry_price": [100.0] * 200, "quantity": [1.0] * 200,
                           "leverage": [10.0] * 200}}  # fmt: skip
    assert len(json.dumps(batch)) > 1024
    assert c.post("/v1/liquidation-price/batch", json=batch).status_code == 200  # the batch route: MAX_CONTENT_LENGTH


def test_rate_limit_429_problem_with_retry_after():
    c = app_with(RATE_LIMIT_ENABLED=True, RATE_LIMIT="3/minute", RATE_LIMIT_HEAVY="1/minute").test_client()
    codes = [c.post("/v1/target-price", json=TARGET).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = c.post("/v1/target-price", json=TARGET)
    assert r.status_code == 429 and r.content_type == "application/problem+json"
    assert int(r.headers["Retry-After"]) > 0 and r.headers["X-RateLimit-Limit"] == "3"
    assert "3 per 1 minute" in r.json["detail"] and "client" in r.json["errors"]
    for _ in range(5):  # liveness, readiness, metrics and the spec are never limited
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
    c2 = app_with(RATE_LIMIT_ENABLED=True, RATE_LIMIT="100/minute", RATE_LIMIT_HEAVY="1/minute").test_client()
    batch = {"positions": {"side": ["long"], "entry_price": [100.0], "quantity": [1.0], "leverage": [10.0]}}
    assert c2.post("/v1/liquidation-price/batch", json=batch).status_code == 200
    assert c2.post("/v1/liquidation-price/batch", json=batch).status_code == 429  # the heavy routes' own limit
    assert c2.post("/v1/pnl", json=PNL).status_code == 200


def test_a_client_is_its_valid_api_key_else_its_address():
    c = app_with(RATE_LIMIT_ENABLED=True, RATE_LIMIT="2/minute", API_KEYS=("alpha", "beta")).test_client()
    for key in ("alpha", "beta"):
        codes = [c.post("/v1/pnl", json=PNL, headers={"X-API-Key": key}).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
    # made-up keys count against the address, so rotating them does not escape the limit
    codes = [c.post("/v1/pnl", json=PNL, headers={"X-API-Key": f"guess{i}"}).status_code for i in range(3)]
    assert codes == [401, 401, 429]


def test_memory_storage_counts_per_worker():
    """Two app instances stand for two gunicorn workers: with memory:// each keeps its own counters."""
    a = app_with(RATE_LIMIT_ENABLED=True, RATE_LIMIT="2/minute").test_client()
    b = app_with(RATE_LIMIT_ENABLED=True, RATE_LIMIT="2/minute").test_client()
    assert [a.post("/v1/pnl", json=PNL).status_code for _ in range(2)] == [200, 200]
    assert [b.post("/v1/pnl", json=PNL).status_code for _ in range(2)] == [200, 200]


@pytest.fixture
def redis_url():
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (make test installs Debian's redis-server when it can)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_redis_storage_is_shared_across_workers(redis_url):
    settings = {"RATE_LIMIT_ENABLED": True, "RATE_LIMIT": "3/minute", "RATE_LIMIT_STORAGE": redis_url}
    a = app_with(**settings).test_client()
    b = app_with(**settings).test_client()
    codes = [a.post("/v1/pnl", json=PNL).status_code, b.post("/v1/pnl", json=PNL).status_code,
             a.post("/v1/pnl", json=PNL).status_code, b.post("/v1/pnl", json=PNL).status_code]  # fmt: skip
    assert codes == [200, 200, 200, 429]
    assert a.get("/readyz").json["checks"]["rate_limit_storage"] is True


def test_readyz_fails_when_the_shared_store_is_down():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = app_with(RATE_LIMIT_ENABLED=True, RATE_LIMIT_STORAGE=f"redis://127.0.0.1:{port}/0").test_client()
    r = c.get("/readyz")
    assert r.status_code == 503 and r.content_type == "application/problem+json"
    assert "rate_limit_storage" in r.json["errors"]
    assert c.get("/healthz").status_code == 200  # alive, just not ready
    assert c.post("/v1/pnl", json=PNL).status_code == 200  # requests still pass (limits fail open)


def test_api_keys():
    digest = "sha256:" + hashlib.sha256(b"second-key").hexdigest()
    c = app_with(API_KEYS=("first-key", digest)).test_client()
    r = c.post("/v1/pnl", json=PNL)
    assert r.status_code == 401 and r.json["errors"] == {"X-API-Key": ["required"]}
    assert "ApiKey" in r.headers["WWW-Authenticate"]
    assert c.post("/v1/pnl", json=PNL, headers={"X-API-Key": "nope"}).status_code == 401
    assert c.post("/v1/pnl", json=PNL, headers={"X-API-Key": "first-key"}).status_code == 200
    assert c.post("/v1/pnl", json=PNL, headers={"Authorization": "Bearer second-key"}).status_code == 200
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.yaml", "/docs/"):
        assert c.get(path).status_code == 200, path
    pre = c.options("/v1/pnl", headers={"Origin": "https://x.example", "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 200


def test_cors_allow_list_and_preflight():
    c = app_with(CORS_ORIGINS=("https://app.example",)).test_client()
    r = c.post("/v1/pnl", json=PNL, headers={"Origin": "https://app.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example" and "Origin" in r.headers["Vary"]
    assert "X-Request-ID" in r.headers["Access-Control-Expose-Headers"]
    r = c.post("/v1/pnl", json=PNL, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
    pre = c.options("/v1/pnl", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                                        "Access-Control-Request-Headers": "content-type,x-api-key"})  # fmt: skip
    assert pre.status_code == 200 and "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert "X-API-Key" in pre.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Origin" not in create_app(TestConfig).test_client().post(
        "/v1/pnl", json=PNL, headers={"Origin": "https://app.example"}).headers  # fmt: skip
    star = app_with(CORS_ORIGINS=("*",)).test_client()
    assert (
        star.get("/healthz", headers={"Origin": "https://a.b"}).headers["Access-Control-Allow-Origin"] == "https://a.b"
    )


def test_security_headers_everywhere(client):
    for resp in (client.post("/v1/pnl", json=PNL), client.post("/v1/pnl", json={}), client.get("/nope"),
                 client.get("/docs/")):  # fmt: skip
        h = resp.headers
        assert h["X-Content-Type-Options"] == "nosniff" and h["X-Frame-Options"] == "DENY"
        assert h["Referrer-Policy"] == "no-referrer" and "frame-ancestors 'none'" in h["Content-Security-Policy"]
    assert client.post("/v1/pnl", json=PNL).headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in client.get("/healthz").headers
    assert "max-age" in app_with(HSTS=True).test_client().get("/healthz").headers["Strict-Transport-Security"]


def test_no_stack_trace_or_path_in_a_500(monkeypatch):
    import core

    def boom(**kwargs):
        raise RuntimeError("secret at /work/main/core/calculators.py line 42")

    monkeypatch.setattr(core, "pnl", boom)
    app = create_app(TestConfig)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    r = app.test_client().post("/v1/pnl", json=PNL)
    assert r.status_code == 500 and r.content_type == "application/problem+json"
    text = r.get_data(as_text=True)
    assert "secret" not in text and "/work" not in text and "Traceback" not in text and ".py" not in text
    assert r.headers["X-Request-ID"]


def test_request_id_and_json_access_log(capsys):
    c = app_with(ACCESS_LOG=True).test_client()
    r = c.post("/v1/pnl", json=PNL, headers={"X-Request-ID": "abc-123.X_y"})
    assert r.headers["X-Request-ID"] == "abc-123.X_y"
    bad = c.post("/v1/pnl", json=PNL, headers={"X-Request-ID": "has spaces and \u00e9" + "x" * 200})
    assert len(bad.headers["X-Request-ID"]) == 32  # replaced by a fresh id
    cols = {"side": ["long", "short"], "entry_price": [1.0, 2.0], "quantity": [1.0, 1.0], "leverage": [2.0, 2.0]}
    c.post("/v1/liquidation-price/batch", json={"positions": cols})
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    first = lines[0]
    assert first["request_id"] == "abc-123.X_y" and first["route"] == "/v1/pnl" and first["status"] == 200
    assert {"ts", "method", "path", "duration_ms", "bytes_in", "bytes_out", "client", "pid"} <= set(first)
    assert lines[-1]["rows"] == 2


def test_metrics_count_requests_and_batches(client):
    def sample(name):
        for line in client.get("/metrics").get_data(as_text=True).splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    key = 'liqrisk_http_requests_total{method="POST",route="/v1/pnl",status="200"}'
    rows = 'liqrisk_batch_rows_sum{route="/v1/liquidation-price/batch"}'
    before, rows_before = sample(key), sample(rows)
    for _ in range(3):
        client.post("/v1/pnl", json=PNL)
    row = {"side": "long", "entry_price": 1.0, "quantity": 1.0, "leverage": 2.0}
    client.post("/v1/liquidation-price/batch", json={"positions": [row] * 5})
    assert sample(key) == before + 3
    assert sample(rows) == rows_before + 5
    assert 'liqrisk_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/v1/pnl"}' in client.get(
        "/metrics").get_data(as_text=True)  # fmt: skip
