"""``liqrisk tiers refresh`` against recorded exchange answers served by a real HTTP server on 127.0.0.1, and the
API's tiers directory (loaded at start and on SIGHUP)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

import core
from api import TestConfig, cli, create_app, tier_store
from api.tier_refresh import Client, RefreshError, fetch_gate, refresh
from core.tiers import install_overlay, instrument

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tiers"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class Exchange:
    """A local HTTP server answering ``(method, path)`` with ``routes[...](query, body) -> (status, bytes)``."""

    def __init__(self):
        self.routes = {}
        self.requests: list[tuple[str, str, dict, bytes, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append((method, url.path, query, body, dict(self.headers)))
                route = outer.routes.get((method, url.path))
                status, payload = route(query, body) if route else (404, b'{"msg": "no such route"}')
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:  # noqa: N802 - http.server's names
                self._answer("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._answer("POST")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def exchange():
    ex = Exchange()
    yield ex
    ex.close()


@pytest.fixture(autouse=True)
def _no_overlay():
    yield
    install_overlay({})


def _urls(ex: Exchange) -> dict[str, str]:
    return dict.fromkeys(("binance", "binance_coinm", "bybit", "okx", "gate", "hyperliquid"), ex.url)


def _serve_bybit(ex: Exchange) -> None:
    def risk_limit(query, body):
        if query.get("category") == "inverse":
            return 200, fixture("bybit_v5_risk_limit_inverse_docs_example.json")
        if query.get("cursor") == "2%3A0":
            return 200, fixture("bybit_v5_risk_limit_linear_page2.json")
        return 200, fixture("bybit_v5_risk_limit_linear_page1.json")

    ex.routes[("GET", "/v5/market/risk-limit")] = risk_limit


def test_bybit_cursor_paging_writes_every_symbol(exchange, tmp_path) -> None:
    _serve_bybit(exchange)
    done = refresh("bybit", tiers_dir=tmp_path, symbol=None, base_urls=_urls(exchange), today="2026-12-01")
    assert done["symbols"] == ["BTCUSD", "BTCUSDT", "ETHUSDT"]
    cursors = [q.get("cursor") for m, p, q, b, h in exchange.requests if q.get("category") == "linear"]
    assert cursors == [None, "2%3A0"]
    tier_store.load(tmp_path)
    eth = instrument("bybit", "ETHUSDT").tiers
    assert list(eth.amount) == [0, 4500, 12_000] and eth.as_of == "2026-12-01" and eth.complete
    assert "fetched 2026-12-01" in eth.source


def _written(tmp_path: Path) -> bytes:
    return (tmp_path / "bybit.json").read_bytes()


@pytest.mark.parametrize(
    ("status", "payload", "message"),
    [
        (500, b'{"retCode": 10016, "retMsg": "server error"}', "HTTP 500"),
        (200, b"<html>maintenance</html>", "not JSON"),
        (200, b'{"retCode": 10001, "retMsg": "params error", "result": {}}', "retCode: 10001"),
        (200, b'{"retCode": 0, "result": {"category": "linear", "list": [], "nextPageCursor": ""}}', "empty answer"),
        (
            200,
            b'{"retCode": 0, "result": {"category": "linear", "nextPageCursor": "", "list": [{"symbol": "ETHUSDT",'
            b' "riskLimitValue": "900000", "maintenanceMargin": "half", "maxLeverage": "100"}]}}',
            "maintenanceMargin: must be a number",
        ),
    ],
)
def test_errors_leave_the_old_table(exchange, tmp_path, status, payload, message) -> None:
    _serve_bybit(exchange)
    refresh("bybit", tiers_dir=tmp_path, symbol="ETHUSDT", base_urls=_urls(exchange), today="2026-11-01")
    before = _written(tmp_path)
    exchange.routes[("GET", "/v5/market/risk-limit")] = lambda q, b: (status, payload)
    with pytest.raises(RefreshError, match=message):
        refresh("bybit", tiers_dir=tmp_path, symbol="ETHUSDT", base_urls=_urls(exchange), today="2026-12-01")
    assert _written(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == ["bybit.json"]  # no temporary file left behind


def test_unreachable_exchange_is_an_error(tmp_path) -> None:
    with pytest.raises(RefreshError, match="ConnectionError"):
        refresh("hyperliquid", tiers_dir=tmp_path, base_urls={"hyperliquid": "http://127.0.0.1:9"})
    assert not (tmp_path / "hyperliquid.json").exists()


def test_okx_instrument_then_position_tiers(exchange, tmp_path) -> None:
    exchange.routes[("GET", "/api/v5/public/instruments")] = lambda q, b: (
        200,
        fixture("okx_instruments_btc_usdt_swap.json"),
    )
    exchange.routes[("GET", "/api/v5/public/position-tiers")] = lambda q, b: (
        (200, fixture("okx_position_tiers_btc_usdt.json"))
        if q == {"instType": "SWAP", "tdMode": "isolated", "instFamily": "BTC-USDT"}
        else (400, b'{"code": "51000"}')
    )  # fmt: skip
    refresh("okx", tiers_dir=tmp_path, symbol="BTC-USDT-SWAP", base_urls=_urls(exchange), today="2026-12-01")
    tier_store.load(tmp_path)
    t = instrument("okx", "BTC-USDT-SWAP").tiers
    assert list(t.caps) == [5.0, 10.0] and t.basis == "quantity" and t.upper_inclusive
    # 6 BTC now prices (it was beyond the packaged partial table)
    res = core.liquidation_price(exchange="okx", symbol="BTC-USDT-SWAP", side="long", entry_price=50_000,
                                 quantity=6.0, leverage=10)  # fmt: skip
    assert res["tier"] == 2


def test_gate_offset_paging(exchange) -> None:
    pages = {"0": "gate_risk_limit_tiers_usdt_all_page1.json", "2": "gate_risk_limit_tiers_usdt_all_page2.json"}

    def tiers(query, body):
        return 200, fixture(pages[query["offset"]]) if query["offset"] in pages else b"[]"

    exchange.routes[("GET", "/api/v4/futures/usdt/risk_limit_tiers")] = tiers
    exchange.routes[("GET", "/api/v4/futures/btc/risk_limit_tiers")] = lambda q, b: (
        200,
        b'[{"tier": 1, "risk_limit": "100", "initial_rate": "0.01", "maintenance_rate": "0.005",'
        b' "leverage_max": "100", "contract": "BTC_USD", "deduction": "0"}]',
    )
    out = fetch_gate(Client(_urls(exchange)), None, "2026-12-01", limit=2)
    assert sorted(out) == ["BTC_USD", "ETH_USDT"]
    assert list(out["ETH_USDT"].tiers.amount) == [0, 1250, 3750]
    assert out["BTC_USD"].contract_type == "inverse"
    offsets = [q["offset"] for m, p, q, b, h in exchange.requests if p.endswith("usdt/risk_limit_tiers")]
    assert offsets == ["0", "2"]


def test_hyperliquid_post_info_meta(exchange, tmp_path) -> None:
    exchange.routes[("POST", "/info")] = lambda q, b: (
        (200, fixture("hyperliquid_info_meta.json")) if json.loads(b) == {"type": "meta"} else (422, b"{}")
    )
    done = refresh("hyperliquid", tiers_dir=tmp_path, base_urls=_urls(exchange), today="2026-12-01")
    assert done["symbols"] == ["BTC", "ETH", "SOL", "XYZ"]


def test_binance_signed_request(exchange, tmp_path, monkeypatch) -> None:
    answer = json.loads(fixture("binance_fapi_v1_leverageBracket.json"))
    eth = next(x for x in answer if x["symbol"] == "ETHUSDT")
    exchange.routes[("GET", "/fapi/v1/leverageBracket")] = lambda q, b: (200, json.dumps(eth).encode())
    with pytest.raises(RefreshError, match="--from-file"):
        refresh("binance", tiers_dir=tmp_path, symbol="ETHUSDT", base_urls=_urls(exchange))
    monkeypatch.setenv("LIQRISK_BINANCE_API_KEY", "test-key")
    monkeypatch.setenv("LIQRISK_BINANCE_API_SECRET", "test-secret")
    refresh("binance", tiers_dir=tmp_path, symbol="ETHUSDT", base_urls=_urls(exchange), today="2026-12-01")
    method, path, query, body, headers = exchange.requests[-1]
    assert headers["X-MBX-APIKEY"] == "test-key"
    signed = f"symbol=ETHUSDT&timestamp={query['timestamp']}"
    assert query["signature"] == hmac.new(b"test-secret", signed.encode(), hashlib.sha256).hexdigest()


def test_cli_from_file_then_api_loads_dir_and_sighup(tmp_path, capsys) -> None:
    saved = FIXTURES / "binance_fapi_v1_leverageBracket.json"
    assert (
        cli.main(["tiers", "refresh", "--exchange", "binance", "--from-file", str(saved), "--dir", str(tmp_path)]) == 0
    )
    out = json.loads(capsys.readouterr().out.splitlines()[0])
    assert out["count"] == 9
    # an empty saved answer: exit 1, the file stays
    before = (tmp_path / "binance.json").read_bytes()
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert (
        cli.main(["tiers", "refresh", "--exchange", "binance", "--from-file", str(empty), "--dir", str(tmp_path)]) == 1
    )
    assert "empty answer" in capsys.readouterr().err
    assert (tmp_path / "binance.json").read_bytes() == before

    class Config(TestConfig):
        TIERS_DIR = str(tmp_path)

    client = create_app(Config).test_client()
    listed = {r["symbol"]: r for r in client.get("/v1/exchanges/binance/symbols").get_json()["symbols"]}
    assert listed["ETHUSDT"]["loaded"] and listed["ETHUSDT"]["as_of"] == out["as_of"]
    assert not listed["XRPUSDT"]["loaded"] and listed["XRPUSDT"]["as_of"] == "2026-09-29"

    # SIGHUP reloads the directory (here: a newer Hyperliquid table appears)
    (tmp_path / "hyperliquid.json").write_text(
        json.dumps(
            core.tiers.document(
                core.tier_parsers.hyperliquid(json.loads(fixture("hyperliquid_info_meta.json")), as_of="2026-11-30"),
                "hyperliquid",
            )
        )  # fmt: skip
    )
    os.kill(os.getpid(), signal.SIGHUP)
    for _ in range(100):
        if instrument("hyperliquid", "BTC").tiers.as_of == "2026-11-30":
            break
        time.sleep(0.01)
    assert instrument("hyperliquid", "BTC").tiers.as_of == "2026-11-30"
    position = {"exchange": "hyperliquid", "symbol": "BTC", "side": "long", "entry_price": 100_000, "quantity": 1}
    body = client.post("/v1/liquidation-price", json=position | {"leverage": 10})
    assert body.get_json()["tiers_as_of"] == "2026-11-30"


def test_bad_tiers_file_keeps_previous_tables(tmp_path) -> None:
    saved = FIXTURES / "binance_fapi_v1_leverageBracket.json"
    refresh("binance", tiers_dir=tmp_path, from_file=saved, today="2026-12-01")
    tier_store.load(tmp_path)
    assert instrument("binance", "ETHUSDT").tiers.as_of == "2026-12-01"
    (tmp_path / "binance.json").write_text('{"symbols": {"ETHUSDT": {"tiers": "oops"}}}')
    result = tier_store.load(tmp_path)
    assert result["errors"] and instrument("binance", "ETHUSDT").tiers.as_of == "2026-12-01"
