"""The fast path for light-lane requests (:mod:`api.http_fast`, used by :mod:`api.http_worker`).

Parsing is checked against gunicorn's own parser on the same bytes: whenever the fast path takes a request, the
WSGI environ it builds is gunicorn's, entry by entry (property test over header sets), and anything unusual is
left to gunicorn. Answers are framed as gunicorn frames them. With real gunicorn processes on loopback: the
answers with the fast path on and off are the same, a kept-alive calculator request is answered while every
pool thread is held, pipelined and split requests and a client that stops reading are all served.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
from gunicorn import http as ghttp
from gunicorn.config import Config
from gunicorn.http import wsgi
from hypothesis import given, settings
from hypothesis import strategies as st

from api import http_fast
from tests.http_api.test_serving import ROOT, _free_port, _serve, _stop, _wait

PATHS = frozenset({"/healthz", "/v1/liquidation-price"})
LIMITS = http_fast.Limits()
CLIENT, SERVER = ("127.0.0.1", 40000), ("127.0.0.1", 8000)
GUNICORN = [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "api:create_app()"]
LIQ_BODY = (
    b'{"exchange": "binance", "symbol": "BTCUSDT", "side": "long", "entry_price": 100000, "quantity": 0.5, '
    b'"leverage": 20}'
)


JSON = (("Host", "x"), ("Content-Type", "application/json"))


def _request(method="POST", target="/v1/liquidation-price", headers=JSON, body=LIQ_BODY) -> bytes:
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    lines += [f"{k}: {v}\r\n" for k, v in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}\r\n")
    return "".join(lines).encode("latin-1") + b"\r\n" + body


def _parsed_by_gunicorn(raw: bytes, **settings):
    """gunicorn's request object, environ and body for the first request in ``raw`` (with these settings)."""
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    ours, theirs = socket.socketpair()
    try:
        theirs.sendall(raw)
        theirs.shutdown(socket.SHUT_WR)
        req = next(ghttp.get_parser(cfg, ours, CLIENT))
        _, env = wsgi.create(req, ours, CLIENT, SERVER, cfg)
        return req, env, env["wsgi.input"].read()
    finally:
        ours.close()
        theirs.close()


def _gunicorn(raw: bytes, **settings) -> tuple[dict, bytes, bool]:
    """gunicorn's environ, body and keep-alive verdict for the first request in ``raw``."""
    req, env, body = _parsed_by_gunicorn(raw, **settings)
    return env, body, not req.should_close()


def _fast(raw: bytes, limits: http_fast.Limits = LIMITS) -> tuple[dict, bytes, bool] | None:
    request = http_fast.parse(raw, PATHS, limits, frozenset(k.upper() for k in Config().secure_scheme_headers))
    if request is None:
        return None
    base = {**wsgi.base_environ(Config()), "wsgi.multithread": False}
    env = http_fast.environ(request, base, None, CLIENT, SERVER)
    return env, env["wsgi.input"].read(), request.keep_alive


def _comparable(env: dict) -> dict:
    skip = {"wsgi.input", "gunicorn.socket", "wsgi.early_hints", "wsgi.errors", "wsgi.file_wrapper"}
    return {k: v for k, v in env.items() if k not in skip}


def _assert_same(raw: bytes) -> None:
    fast = _fast(raw)
    assert fast is not None, raw
    env, body, keep = _gunicorn(raw)
    assert _comparable(fast[0]) == _comparable(env)
    assert (fast[1], fast[2]) == (body, keep)
    assert callable(fast[0]["wsgi.early_hints"]) and type(fast[0]["wsgi.errors"]) is type(env["wsgi.errors"])


@pytest.mark.parametrize(
    "raw",
    [
        _request(),
        _request("GET", "/healthz", body=b""),
        _request("GET", "/healthz?verbose=1&a=b", body=b""),
        # what wrk, curl, Python's http.client and requests send
        _request(headers=(("Host", "127.0.0.1:8000"), ("Content-Type", "application/json"))),
        _request(
            headers=(
                ("Host", "localhost:8000"),
                ("User-Agent", "curl/8.5.0"),
                ("Accept", "*/*"),
                ("Content-Type", "application/json"),
            )
        ),
        _request(headers=(("Host", "h"), ("Accept-Encoding", "identity"), ("Content-Type", "application/json"))),
        _request(
            headers=(
                ("Host", "h"),
                ("User-Agent", "python-requests/2.32"),
                ("Accept-Encoding", "gzip, deflate"),
                ("Accept", "*/*"),
                ("Connection", "keep-alive"),
                ("Content-Type", "application/json"),
                ("X-API-Key", "k1"),
                ("X-Request-ID", "abc-123"),
            )
        ),
        _request(headers=(("host", "h"), ("CONNECTION", "close"), ("x-custom", "  padded value \t"))),
        _request(headers=(("Host", "h"), ("X-Empty", ""), ("X-Latin", "caf\xe9"))),
    ],
)
def test_the_fast_path_builds_gunicorns_environ(raw: bytes) -> None:
    _assert_same(raw)


_NAMES = ["Host", "Content-Type", "Accept", "User-Agent", "X-Request-ID", "X-API-Key", "Authorization", "Connection"]
_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40)


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST"]),
    path=st.sampled_from(sorted(PATHS) + ["/v1/other"]),
    query=st.one_of(st.just(""), st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20)),
    fields=st.lists(st.tuples(st.sampled_from(_NAMES), _VALUES), max_size=8),
    body=st.binary(max_size=64),
    case=st.sampled_from([str.lower, str.upper, str]),
)
def test_whatever_the_fast_path_takes_gunicorn_reads_the_same(method, path, query, fields, body, case) -> None:
    """Random header sets: a request the fast path takes gets gunicorn's environ, body and keep-alive verdict;
    a request it leaves is left whole (nothing else to check: gunicorn then parses it)."""
    if any(name == "Connection" for name, _ in fields):
        fields = [(n, "close" if "c" in v else "keep-alive") if n == "Connection" else (n, v) for n, v in fields]
    target = path + ("?" + query if query else "")
    raw = _request(method, target, [("Host", "h"), *((case(n), v) for n, v in fields)], body)
    fast = _fast(raw)
    if fast is None:
        return
    try:
        env, got_body, keep = _gunicorn(raw)
    except Exception as exc:  # gunicorn refuses what the fast path took: that is a bug
        raise AssertionError(f"the fast path took a request gunicorn refuses: {raw!r}") from exc
    assert _comparable(fast[0]) == _comparable(env)
    assert (fast[1], fast[2]) == (got_body, keep)


@pytest.mark.parametrize(
    "raw",
    [
        _request().replace(b"HTTP/1.1", b"HTTP/1.0", 1),
        _request("HEAD", "/healthz", body=b""),
        _request("PUT"),
        _request(target="/v1/liquidation-price/batch"),
        _request(target="/v1/liquidation%2Dprice"),
        _request(target="/healthz#frag", body=b""),
        _request(target="http://x/healthz", body=b""),
        _request(headers=()),  # no Host
        _request(headers=(("Host", "x"), ("Host", "y"))),
        _request(headers=(("Host", "x"), ("X-Trace", "1"), ("X-Trace", "2"))),
        _request(headers=(("Host", "x"), ("X_Forwarded_For", "1.2.3.4"))),
        _request(headers=(("Host", "x"), ("X-Forwarded-For", "1.2.3.4"))),
        _request(headers=(("Host", "x"), ("X-Forwarded-Proto", "https"))),
        _request(headers=(("Host", "x"), ("X-Forwarded-SSL", "on"))),
        _request(headers=(("Host", "x"), ("Forwarded", "for=1.2.3.4"))),
        _request(headers=(("Host", "x"), ("Expect", "100-continue"))),
        _request(headers=(("Host", "x"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAA"))),
        _request(headers=(("Host", "x"), ("Connection", "keep-alive, Upgrade"))),
        _request(headers=(("Host", "x"), ("Transfer-Encoding", "chunked")), body=b""),
        _request(headers=(("Host", "x"), ("Content-Length", "5"))),  # a second Content-Length
        _request(body=b"").replace(b"\r\n\r\n", b"\r\nContent-Length: +5\r\n\r\n+body"),
        _request(body=b"").replace(b"\r\n\r\n", b"\r\nContent-Length: \xd9\xa3\r\n\r\nabc"),
        _request(headers=(("Host", "x"), ("X-Ctl", "a\x01b"))),
        _request(headers=(("Host", "x"), ("X-Del", "a\x7fb"))),
        _request().replace(b"Host: x\r\n", b"Host: x\r\n folded\r\n"),
        _request().replace(b"Host: x", b"Host : x"),
        _request().replace(b"\r\n", b"\n"),
        _request()[:-1],  # the body is not all there
        _request()[:30],  # nor the head
        _request("GET", "/healthz", headers=[("Host", "x")] + [(f"X-F{i}", "v") for i in range(100)], body=b""),
        _request(headers=(("Host", "x"), ("X-Long", "v" * (8190 - len("X-Long: \r\n") + 1)))),
        _request(body=b"").replace(b"\r\n\r\n", b"\r\nContent-Length: " + b"0" * 5000 + b"\r\n\r\n"),
        _request(target="/healthz?" + "q" * 4100, body=b""),
        _request(body=b"{" + b" " * 65536 + b"}"),
    ],
)
def test_anything_unusual_is_left_to_gunicorn(raw: bytes) -> None:
    assert _fast(raw) is None


def test_the_limits_are_gunicorns() -> None:
    """A field line of exactly ``limit_request_field_size`` bytes with its CRLF, exactly ``limit_request_fields``
    fields and a request line of exactly ``limit_request_line`` bytes are taken and read as gunicorn reads them
    with the same settings; one byte or one field more is left to gunicorn, which refuses it."""
    settings = {"limit_request_field_size": 200, "limit_request_fields": 10, "limit_request_line": 100}
    limits = http_fast.Limits(request_line=100, fields=10, field_size=200)
    field = ("X-Long", "v" * (200 - len("X-Long: \r\n")))
    target = "/healthz?" + "q" * (100 - len("GET /healthz? HTTP/1.1"))
    fitting = [
        _request(headers=(("Host", "x"), field)),
        _request("GET", "/healthz", headers=[("Host", "x")] + [(f"X-F{i}", "v") for i in range(9)], body=b""),
        _request("GET", target, body=b""),
    ]
    over = [
        _request(headers=(("Host", "x"), (field[0], field[1] + "v"))),
        _request("GET", "/healthz", headers=[("Host", "x")] + [(f"X-F{i}", "v") for i in range(10)], body=b""),
        _request("GET", target + "q", body=b""),
    ]
    for raw in fitting:
        fast = _fast(raw, limits)
        assert fast is not None
        env, body, keep = _gunicorn(raw, **settings)
        assert _comparable(fast[0]) == _comparable(env) and (fast[1], fast[2]) == (body, keep)
    for raw in over:
        assert _fast(raw, limits) is None
        with pytest.raises(Exception, match="(?i)limit request|too large"):
            _gunicorn(raw, **settings)


def test_a_pipelined_request_is_left_in_the_buffer() -> None:
    first, second = _request(), _request("GET", "/healthz", body=b"")
    request = http_fast.parse(first + second, PATHS, LIMITS)
    assert request is not None and request.body == LIQ_BODY and (first + second)[request.end :] == second


class _Sink:
    def __init__(self) -> None:
        self.data = b""

    def sendall(self, data) -> None:
        self.data += bytes(data)


def _gunicorn_answer(status: str, headers: list[tuple[str, str]], body: bytes, raw: bytes) -> bytes:
    req = _parsed_by_gunicorn(raw)[0]
    sink = _Sink()
    resp = wsgi.Response(req, sink, Config())
    resp.start_response(status, headers)
    resp.write(body)
    resp.close()
    return sink.data


def _without_date(answer: bytes) -> bytes:
    return re.sub(rb"\r\nDate: [^\r]*", b"", answer)


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        ("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")], b"{}"),
        ("422 UNPROCESSABLE ENTITY", [("Content-Type", "application/problem+json"), ("Content-Length", "3")], b"abc"),
        ("200 OK", [("Content-Length", "2"), ("Connection", "close"), ("Keep-Alive", "5"), ("X-A", " b ")], b"ok"),
        ("200 OK", [("Content-Length", "2"), ("Server", "other"), ("Date", "then")], b"ok"),
        ("304 Not Modified", [("Content-Length", "10")], b""),
        ("204 No Content", [], b""),
    ],
)
def test_answers_are_framed_as_gunicorn_frames_them(status, headers, body) -> None:
    date = http_fast.HttpDate()()
    for keep_alive, raw in ((True, _request()), (False, _request(headers=(("Host", "x"), ("Connection", "close"))))):
        ours = http_fast.response(status, headers, body, keep_alive, date)
        assert _without_date(ours) == _without_date(_gunicorn_answer(status, headers, body, raw))
        assert f"\r\nDate: {date}\r\n".encode() in ours


def test_an_answer_without_content_length_gets_one_and_bad_fields_are_refused() -> None:
    ours = http_fast.response("200 OK", [("Content-Type", "text/plain")], b"hello", True, "d")
    assert ours.endswith(b"\r\nContent-Length: 5\r\n\r\nhello")
    assert http_fast.response("200 OK", [("Content-Length", "2")], b"hello", True, "d").endswith(b"\r\n\r\nhe")
    for status, headers in (("200 OK", [("X-A", "a\r\nSet-Cookie: x")]), ("200 OK", [("X A", "1")]), ("OK", [])):
        with pytest.raises(ValueError):
            http_fast.response(status, headers, b"", True, "d")


# --- real gunicorn processes -------------------------------------------------------------------------------------


def _read_answer(sock: socket.socket, buffer: bytearray) -> bytes:
    """One answer (head and Content-Length body) from ``sock``; what follows stays in ``buffer``."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    head_end = buffer.index(b"\r\n\r\n") + 4
    length = int(re.search(rb"\r\nContent-Length: (\d+)", bytes(buffer[:head_end])).group(1))
    while len(buffer) < head_end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    answer = bytes(buffer[: head_end + length])
    del buffer[: head_end + length]
    return answer


def _normalised(answer: bytes) -> bytes:
    """Without the fields that differ between two servers anyway (time, ids, the order of a set of methods;
    rate limiting is off, so its fields are absent)."""
    return re.sub(rb"\r\n(Date|X-Request-ID|Allow): [^\r]*", b"", answer)


REQUESTS = [
    _request("GET", "/healthz", body=b""),
    _request(headers=(("Host", "x"), ("Content-Type", "application/json"))),
    _request(headers=(("Host", "x"), ("Content-Type", "application/json")), body=b'{"side": "long"}'),
    _request(
        headers=(("Host", "x"), ("Content-Type", "application/json")), body=b'{"side": "long", "entry_price": NaN}'
    ),
    _request(headers=(("Host", "x"), ("Content-Type", "text/plain"))),
    _request(target="/v1/liquidation-price?x=1", headers=(("Host", "x"), ("Content-Type", "application/json"))),
    _request(
        target="/v1/pnl",
        headers=(("Host", "x"), ("Content-Type", "application/json")),
        body=json.dumps({"side": "short", "entry_price": 100, "exit_price": 90, "quantity": 2, "leverage": 5}).encode(),
    ),
    _request("GET", "/v1/liquidation-price", body=b""),  # 405
    _request(headers=(("Host", "x"), ("Content-Type", "application/json"), ("X-Request-ID", "given-id-1"))),
]


def _answers(base: str, requests: list[bytes]) -> list[bytes]:
    """Each request on a kept-alive connection after a first one (the first request of a connection always takes
    gunicorn's parser), its answer read before the next is sent."""
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        buffer = bytearray()
        sock.sendall(_request("GET", "/healthz", body=b""))
        _read_answer(sock, buffer)
        out = []
        for raw in requests:
            time.sleep(0.01)  # the connection is back in the poller
            sock.sendall(raw)
            out.append(_read_answer(sock, buffer))
        return out


def test_answers_are_the_same_with_the_fast_path_on_and_off() -> None:
    raw = {}
    for setting in ("1", "0"):
        env = {"LIQRISK_WORKERS": "1", "LIQRISK_FAST_PATH": setting, "LIQRISK_RATE_LIMIT_ENABLED": "0"}
        proc, base = _serve(GUNICORN, ROOT, env)
        try:
            _wait(base + "/healthz", proc)
            raw[setting] = _answers(base, REQUESTS)
        finally:
            _stop(proc)
    assert [_normalised(a) for a in raw["1"]] == [_normalised(a) for a in raw["0"]]
    statuses = [a.split(b" ", 2)[1] for a in raw["1"]]
    assert statuses == [b"200", b"200", b"422", b"422", b"415", b"200", b"200", b"405", b"200"], statuses
    assert all(b"\r\nX-Request-ID: given-id-1\r\n" in answers[-1] for answers in raw.values())


@pytest.fixture(scope="module")
def one_thread_server(tmp_path_factory):
    """One worker process with one pool thread, its log written to a file (a pipe nobody reads would fill and
    stop the server's writes)."""
    port = _free_port()
    env = {**os.environ, "LIQRISK_WORKERS": "1", "LIQRISK_THREADS": "1", "LIQRISK_KEEPALIVE": "30"}
    env["LIQRISK_RATE_LIMIT_ENABLED"] = "0"  # 2,000 requests in a second are the point here
    env["LIQRISK_BIND"] = f"127.0.0.1:{port}"
    with open(tmp_path_factory.mktemp("server") / "server.log", "w") as log:
        proc = subprocess.Popen(GUNICORN, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(f"http://127.0.0.1:{port}/healthz", proc)
        yield port
    finally:
        _stop(proc)


def test_a_kept_alive_calculator_request_is_answered_while_the_pool_thread_is_held(one_thread_server) -> None:
    """The only pool thread is held by an upload that stalls (a batch body, one byte sent): a kept-alive
    connection's liquidation request is still answered, by the main thread."""
    port = one_thread_server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as kept:
        buffer = bytearray()
        kept.sendall(_request("GET", "/healthz", body=b""))
        assert _read_answer(kept, buffer).startswith(b"HTTP/1.1 200")
        stalled = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            head = b"POST /v1/liquidation-price/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"
            stalled.sendall(head)
            time.sleep(0.3)  # the pool thread is now reading its body
            started = time.monotonic()
            kept.sendall(_request(headers=(("Host", "x"), ("Content-Type", "application/json"))))
            answer = _read_answer(kept, buffer)
            assert answer.startswith(b"HTTP/1.1 200") and b'"liquidation_price":95381.526' in answer
            assert time.monotonic() - started < 5
        finally:
            stalled.close()


def test_pipelined_split_and_closing_requests(one_thread_server) -> None:
    port = one_thread_server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        buffer = bytearray()
        sock.sendall(_request("GET", "/healthz", body=b""))
        _read_answer(sock, buffer)
        time.sleep(0.01)
        sock.sendall(_request() + _request("GET", "/healthz", body=b""))  # two in one write
        first, second = _read_answer(sock, buffer), _read_answer(sock, buffer)
        assert b"liquidation_price" in first and b'"status":"ok"' in second
        time.sleep(0.01)
        raw = _request()
        sock.sendall(raw[:40])  # the head arrives in two parts, the body later
        time.sleep(0.1)
        sock.sendall(raw[40:-10])
        time.sleep(0.1)
        sock.sendall(raw[-10:])
        assert b"liquidation_price" in _read_answer(sock, buffer)
        time.sleep(0.01)
        sock.sendall(_request(headers=(("Host", "x"), ("Connection", "close"))))
        answer = _read_answer(sock, buffer)
        assert b"\r\nConnection: close\r\n" in answer and sock.recv(10) == b""


def test_a_client_that_stops_reading_holds_no_one_else_up(one_thread_server) -> None:
    """A client pipelines 2,000 requests and reads nothing for a second (its answers wait in the only pool
    thread, or in the main thread's first send): another kept-alive connection is answered meanwhile; then
    every one of the 2,000 answers arrives, in order."""
    port = one_thread_server
    other = socket.create_connection(("127.0.0.1", port), timeout=10)
    hog = socket.create_connection(("127.0.0.1", port), timeout=30)
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 131072)
    buffer, other_buffer = bytearray(), bytearray()
    for sock, buf in ((other, other_buffer), (hog, buffer)):  # both kept alive, back in the poller
        sock.sendall(_request("GET", "/healthz", body=b""))
        _read_answer(sock, buf)
    time.sleep(0.05)
    flood = _request() * 2000
    sender = threading.Thread(target=hog.sendall, args=(flood,), daemon=True)
    sender.start()
    try:
        time.sleep(1.0)
        waiting = struct.unpack("i", fcntl.ioctl(hog, termios.FIONREAD, b"\0" * 4))[0]
        assert waiting < 2000 * 500  # the hog's answers filled its socket: the server's sender waits
        for _ in range(3):
            started = time.monotonic()
            other.sendall(_request("GET", "/healthz", body=b""))
            assert _read_answer(other, other_buffer).startswith(b"HTTP/1.1 200")
            assert time.monotonic() - started < 5
            time.sleep(0.01)
        answers = [_read_answer(hog, buffer) for _ in range(2000)]
        assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
        sender.join(10)
    finally:
        hog.close()
        other.close()


def test_max_requests_counts_fast_path_requests() -> None:
    """``max_requests`` 4. A request on the fast path that asks to close is counted: the worker's 4th request, on
    a new connection, is answered with ``Connection: close``. The next worker's 4th request arrives on the fast
    path, which answers it with ``Connection: close`` and closes."""
    env = {"LIQRISK_WORKERS": "1", "LIQRISK_MAX_REQUESTS": "4", "LIQRISK_RATE_LIMIT_ENABLED": "0"}
    proc, base = _serve(GUNICORN, ROOT, env)
    port = int(base.rsplit(":", 1)[1])

    def kept_alive(requests: list[bytes]) -> list[bytes]:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            buffer, answers = bytearray(), []
            for raw in requests:
                sock.sendall(raw)
                answers.append(_read_answer(sock, buffer))
                time.sleep(0.01)  # the connection is back in the poller: the next request takes the fast path
            assert sock.recv(10) == b""  # closed by the server
            return answers

    healthz, closing = _request("GET", "/healthz", body=b""), _request(headers=(("Host", "x"), ("Connection", "close")))
    try:
        _wait(base + "/healthz", proc)  # request 1
        assert b"\r\nConnection: close\r\n" in kept_alive([healthz, closing])[1]  # 2 and 3
        assert b"\r\nConnection: close\r\n" in kept_alive([healthz])[0]  # 4: the last of this worker
        _wait(base + "/healthz", proc)  # the next worker's request 1
        answers = kept_alive([healthz, healthz, healthz])  # its 2, 3 and 4
        assert [b"\r\nConnection: close\r\n" in a for a in answers] == [False, False, True]
    finally:
        _stop(proc)


def test_the_fast_path_is_off_without_the_lane_or_with_what_gunicorn_does_per_request() -> None:
    from types import SimpleNamespace

    from flask import Flask

    from api import create_app
    from api.config import TestConfig
    from api.http_worker import fast_path

    class Log(SimpleNamespace):
        access_log_enabled = False

    cfg = Config()
    app = create_app(TestConfig)
    on = fast_path(app, cfg, Log())
    assert on is not None and "/v1/liquidation-price" in on[0] and on[1].max_body == app.config["LIGHT_LANE_MAX_BODY"]
    assert fast_path(Flask("plain"), cfg, Log()) is None  # no lane
    assert fast_path(app, cfg, Log(access_log_enabled=True)) is None
    cfg.set("statsd_host", "127.0.0.1:8125")
    assert fast_path(app, cfg, Log()) is None
    cfg = Config()
    cfg.set("keepalive", 0)
    assert fast_path(app, cfg, Log()) is None


def test_the_main_thread_never_waits_for_the_lane() -> None:
    """The fast path takes the lane only if it is free (no holder, no one waiting), else leaves its request on
    it without waiting (run in its turn); a request it holds the lane for goes through without taking it again."""
    from api.light_lane import LANE_HELD, FifoLock, LightLane

    lock = FifoLock()
    left = []
    lock.run_left = left.append
    assert lock.acquire_or_leave("first") and not lock.idle()  # free: taken, nothing left
    waiter = threading.Thread(target=lambda: (lock.acquire(), lock.release()))
    waiter.start()
    while not lock.waiting():
        time.sleep(0.001)
    assert not lock.acquire_or_leave("second")  # held and waited for: left, without waiting
    lock.release()  # handed to the waiter, which releases it; then the drain runs what was left
    waiter.join(5)
    while not lock.idle():
        time.sleep(0.001)
    assert left == ["second"] and lock.acquire_or_leave("third") and left == ["second"]
    seen = []

    def app(environ, start_response):
        seen.append(environ["wsgi.input"].read())
        start_response("200 OK", [])
        return [b"ok"]

    lane = LightLane(app, frozenset({"/x"}), 100)
    lane.lane = lock  # held by this test, as by the fast path
    env = {"PATH_INFO": "/x", "CONTENT_LENGTH": "2", "wsgi.input": __import__("io").BytesIO(b"{}"), LANE_HELD: True}
    assert list(lane(env, lambda *a: None)) == [b"ok"] and seen == [b"{}"]
    lock.release()


def test_kept_alive_requests_mixed_with_new_connections_are_all_answered(tmp_path) -> None:
    """Kept-alive clients send back to back while other clients open a new connection per request (whose
    first request gunicorn's parser hands to a pool thread, which takes the lane): a kept-alive request that
    finds the lane held is left on it and answered in turn (FifoLock.drain); every answer is the right one,
    ``Connection: close`` ones included."""
    port = _free_port()
    env = {**os.environ, "LIQRISK_WORKERS": "1", "LIQRISK_THREADS": "8", "LIQRISK_RATE_LIMIT_ENABLED": "0"}
    env["LIQRISK_BIND"] = f"127.0.0.1:{port}"
    with open(tmp_path / "server.log", "w") as log:
        proc = subprocess.Popen(GUNICORN, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    failures: list[str] = []
    headers = (("Host", "x"), ("Content-Type", "application/json"))

    def kept_alive(n: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            buffer = bytearray()
            for i in range(n):
                close = i == n - 1
                sock.sendall(_request(headers=headers + ((("Connection", "close"),) if close else ())))
                answer = _read_answer(sock, buffer)
                if not answer.startswith(b"HTTP/1.1 200") or b'"liquidation_price":95381.526' not in answer:
                    failures.append(answer[:200].decode("latin-1"))
            if sock.recv(1) != b"":  # closed after the Connection: close answer
                failures.append("not closed")

    def fresh(n: int) -> None:
        for _ in range(n):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(_request(headers=headers + (("Connection", "close"),)))
                if not _read_answer(sock, bytearray()).startswith(b"HTTP/1.1 200"):
                    failures.append("fresh")

    try:
        _wait(f"http://127.0.0.1:{port}/healthz", proc)
        threads = [threading.Thread(target=kept_alive, args=(300,)) for _ in range(6)]
        threads += [threading.Thread(target=fresh, args=(60,)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads)
        assert failures == []
        assert _read_answer_ok(port)  # the worker still answers
    finally:
        _stop(proc)


def _read_answer_ok(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_request("GET", "/healthz", body=b""))
        return _read_answer(sock, bytearray()).startswith(b"HTTP/1.1 200")
