"""Benchmarks of one single-position request's HTTP handling (``make bench``): parsing its bytes into the WSGI
environ and framing the answer, by the fast path (:mod:`api.http_fast`) and by gunicorn's own parser and
``Response`` (the path every other request takes). No timing is asserted; each case checks its result. The
served figures (answers per second, latency) come from ``make loadtest``.
"""

from __future__ import annotations

import socket

import pytest
from gunicorn import http as ghttp
from gunicorn.config import Config
from gunicorn.http import wsgi

from api import http_fast

PATHS = frozenset({"/v1/liquidation-price"})
BODY = (
    b'{"exchange": "binance", "symbol": "BTCUSDT", "side": "long", "entry_price": 100000, "quantity": 0.5, '
    b'"leverage": 20}'
)
RAW = (
    b"POST /v1/liquidation-price HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY)
) + BODY
HEADERS = [("Content-Type", "application/json"), ("Content-Length", "516"), ("X-Request-ID", "a" * 32)]
ANSWER = b"x" * 516


class _Sink:
    def __init__(self) -> None:
        self.data = []

    def sendall(self, data) -> None:
        self.data.append(data)


@pytest.fixture
def socket_pair():
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def test_fast_path_request_and_answer(benchmark) -> None:
    limits, base, date = http_fast.Limits(), wsgi.base_environ(Config()), http_fast.HttpDate()

    def one() -> bytes:
        request = http_fast.parse(RAW, PATHS, limits)
        env = http_fast.environ(request, base, None, ("127.0.0.1", 5000), ("127.0.0.1", 8000))
        assert env["wsgi.input"].read() == BODY
        return http_fast.response("200 OK", HEADERS, ANSWER, request.keep_alive, date())

    assert benchmark(one).endswith(ANSWER)


def test_gunicorn_request_and_answer(benchmark, socket_pair) -> None:
    cfg = Config()
    ours, theirs = socket_pair

    def one() -> bytes:
        theirs.sendall(RAW)
        req = next(ghttp.get_parser(cfg, ours, ("127.0.0.1", 5000)))
        sink = _Sink()
        resp, env = wsgi.create(req, sink, ("127.0.0.1", 5000), ("127.0.0.1", 8000), cfg)
        assert env["wsgi.input"].read() == BODY
        resp.start_response("200 OK", HEADERS)
        resp.write(ANSWER)
        resp.close()
        return b"".join(sink.data)

    assert benchmark(one).endswith(ANSWER)
