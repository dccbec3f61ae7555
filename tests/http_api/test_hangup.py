"""A client that hangs up while its heavy request waits (:mod:`api.hangup`): the hang-up is seen on the connection
without reading it (a pipelined request is not a hang-up); a heavy lane gives such a request no turn (499, counted,
the view not run); a light worker stops waiting for the heavy worker's answer and closes its connection to it; and,
with real gunicorn processes, an abandoned Monte Carlo request behind two others is never computed."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from api import hangup
from tests.http_api.test_heavy_lane import _app
from tests.http_api.test_heavy_workers import LIQ, FakeHeavy, _environ, _lines, _post, _proxy, _split_server
from tests.http_api.test_light_lane import _wait_until
from tests.http_api.test_serving import _stop, _wait


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair on 127.0.0.1: (server side, client side)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return server, client


@pytest.mark.skipif(not hangup.RDHUP, reason="no POLLRDHUP on this platform: only resets are seen")
def test_a_hang_up_is_seen_without_reading() -> None:
    server, client = _tcp_pair()
    try:
        assert not hangup.gone(server)
        client.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")  # a pipelined request: still there
        time.sleep(0.05)
        assert not hangup.gone(server)
        assert server.recv(100, socket.MSG_PEEK).startswith(b"GET")  # and nothing was read
        client.shutdown(socket.SHUT_WR)  # half-closed: nginx's 499 too
        time.sleep(0.05)
        assert hangup.gone(server)
    finally:
        server.close()
        client.close()
    a, b = socket.socketpair()
    b.close()
    assert hangup.gone(a)
    a.close()
    assert not hangup.gone(a)  # closed here: unknown
    assert not hangup.gone(None)
    assert hangup.client_socket({"gunicorn.socket": object()}) is None


def test_waiting_for_an_answer_ends_on_the_answer_the_hang_up_or_the_time() -> None:
    upstream, heavy = socket.socketpair()
    silent, silent_peer = socket.socketpair()  # a heavy worker that has not answered yet
    server, client = _tcp_pair()
    try:
        threading.Timer(0.05, lambda: heavy.sendall(b"HTTP/1.1 200 OK\r\n")).start()
        assert hangup.wait_for_answer(upstream, server, 5.0) is True
        with pytest.raises(TimeoutError):
            hangup.wait_for_answer(silent, server, 0.05)
        threading.Timer(0.05, client.close).start()
        started = time.monotonic()
        assert hangup.wait_for_answer(silent, server, 5.0) is False
        assert time.monotonic() - started < 2.0
    finally:
        for s in (upstream, heavy, silent, silent_peer, server, client):
            s.close()


def test_the_lane_gives_no_turn_to_a_request_whose_client_hung_up() -> None:
    from api.observability import CLIENT_GONE

    app, lane, rec = _app(seconds=0.0)
    counted = CLIENT_GONE.labels("/h")._value.get()
    gone_server, gone_client = _tcp_pair()
    kept_server, kept_client = _tcp_pair()
    answers: dict = {}

    def post(name: str, sock: socket.socket) -> None:
        answers[name] = app.test_client().post("/h", data=name, environ_overrides={"gunicorn.socket": sock})

    lane.lock.acquire()  # another heavy request runs
    threads = []
    for n, (name, sock) in enumerate((("gone", gone_server), ("kept", kept_server))):
        threads.append(threading.Thread(target=post, args=(name, sock)))
        threads[-1].start()
        _wait_until(lambda n=n + 1: lane.lock.waiting() == n)
    gone_client.close()  # the first in the queue hangs up
    time.sleep(0.05)
    lane.lock.release()
    for t in threads:
        t.join(10)
    try:
        gone = answers["gone"]
        assert gone.status_code == 499 and gone.mimetype == "application/problem+json"
        assert gone.get_json()["errors"] == {"body": ["not started: the client had gone"]}
        assert answers["kept"].get_data() == b"kept"
        assert rec.events == ["kept"] and lane.lock.idle() and lane.waiting == lane.waiting_bytes == 0
        assert CLIENT_GONE.labels("/h")._value.get() == counted + 1
    finally:
        for s in (gone_server, kept_server, kept_client):
            s.close()


def test_a_light_worker_stops_waiting_for_the_heavy_worker_when_its_client_hangs_up(tmp_path) -> None:
    from api import create_app
    from api.config import TestConfig

    release = threading.Event()
    heavy = FakeHeavy(tmp_path, answer=None, before_answer=lambda: release.wait(10))
    server, client = _tcp_pair()
    try:
        proxy = _proxy(create_app(TestConfig), heavy.path)
        environ = _environ("/v1/liquidation-price/batch", json.dumps({"positions": [LIQ]}).encode())
        environ["gunicorn.socket"] = server
        threading.Timer(0.2, client.close).start()
        started, got = time.monotonic(), {}

        def start_response(status, headers, exc_info=None):
            got["status"] = status

        answer = json.loads(b"".join(proxy(environ, start_response)))
        assert got["status"].startswith("499") and time.monotonic() - started < 5.0
        assert answer["status"] == 499 and answer["errors"] == {"body": ["not answered: the client had gone"]}
        _wait_until(lambda: len(heavy.requests) == 1)  # the heavy worker had the request, and finds it closed
    finally:
        release.set()
        heavy.close()
        server.close()


def test_gunicorn_an_abandoned_heavy_request_is_not_computed(tmp_path) -> None:
    """Four Monte Carlo requests (each ~0.3 s of work) hold the heavy worker's lane; a fifth, sent whole on a raw
    connection that closes 0.3 s later, is passed on by the light worker and dropped at its turn: the heavy worker
    logs it 499 and counts it, and computes only the four."""
    proc, base, log = _split_server(tmp_path, LIQRISK_RATE_LIMIT_ENABLED="0", LIQRISK_HEAVY_QUEUE_WAIT="30")
    heavy = {"side": "long", "mark_price": 100_000, "liquidation_price": 90_000, "volatility": 0.8,
             "model": "student_t", "paths": 200_000, "horizon_hours": 25, "monitoring_minutes": 60}  # fmt: skip
    path = "/v1/risk/liquidation-probability"
    answers: list[int] = []

    def one() -> None:
        try:
            answers.append(_post(base, path, heavy)[0])
        except urllib.error.HTTPError as err:
            answers.append(err.code)

    def logged() -> list[dict]:
        return [x for x in _lines(log) if x["path"] == path]

    try:
        _wait(base + "/healthz", proc)
        deadline = time.monotonic() + 30
        while "liqrisk: heavy worker" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)  # the heavy worker is up (until then the light worker would answer itself)
        holders = [threading.Thread(target=one) for _ in range(4)]
        for t in holders:
            t.start()
        time.sleep(0.3)  # all four handed on (a hand-off takes about a millisecond); the first is running
        body = json.dumps(heavy).encode()
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
            time.sleep(0.3)  # handed on and queued behind the holders
        for t in holders:
            t.join(60)
        _wait_until(lambda: len(logged()) == 5, timeout=30)
        metrics = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    finally:
        _stop(proc)
    assert answers == [200] * 4
    assert f'liqrisk_client_gone_total{{route="{path}"}} 1.0' in metrics
    assert sorted(x["status"] for x in logged()) == [200, 200, 200, 200, 499], logged()
