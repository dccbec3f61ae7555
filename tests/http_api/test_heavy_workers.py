"""Heavy workers (api/heavy_workers.py): which requests a light worker passes on, what it sends, what the client
gets when the heavy worker answers, fails or cannot be reached; the roles gunicorn's master gives its workers;
and, with real gunicorn processes, that heavy requests are answered by the heavy worker (with the client's
address), light ones by the light worker, through a heavy worker's crash and a reload."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from types import SimpleNamespace

import pytest

from api import create_app, heavy_workers, http_worker
from api.config import TestConfig
from tests.http_api.test_http_fast import GUNICORN, LIQ_BODY
from tests.http_api.test_serving import ROOT, _free_port, _stop, _wait

LIQ = json.loads(LIQ_BODY)  # a Binance BTCUSDT long, 0.5 BTC at 20x
BATCH = {
    "positions": {"side": ["long", "short"], "entry_price": [100000, 50000], "quantity": [1, 2], "leverage": [10, 20]}
}


@pytest.fixture(scope="module")
def app():
    return create_app(TestConfig)


def _proxy(app, path: str) -> heavy_workers.HeavyProxy:
    cfg = SimpleNamespace(
        is_ssl=False, proxy_protocol=False, timeout=30, secure_scheme_headers={"X-FORWARDED-PROTO": "https"}
    )
    saved = heavy_workers._listener
    heavy_workers._listener = SimpleNamespace(getsockname=lambda: path)
    try:
        proxy = http_worker.heavy_proxy(app, cfg)
    finally:
        heavy_workers._listener = saved
    assert proxy is not None and proxy.available is http_worker.heavy_alive
    proxy.available = lambda: True  # no gunicorn here: no heavy worker in the table
    return proxy


def _environ(path: str, body: bytes, chunked: bool = False, method: str = "POST", **headers) -> dict:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "RAW_URI": path + "?fields=liquidation_price" * ("batch" in path),
        "QUERY_STRING": "fields=liquidation_price" * ("batch" in path),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.0.2.7",
        "REMOTE_PORT": "50123",
        "HTTP_HOST": "127.0.0.1:8000",
        "CONTENT_TYPE": "application/json",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if chunked:
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    else:
        environ["CONTENT_LENGTH"] = str(len(body))
    environ.update({"HTTP_" + k.upper(): v for k, v in headers.items()})
    return environ


def _call(wsgi_app, environ: dict) -> tuple[str, dict[str, str], bytes]:
    started = {}

    def start_response(status, headers, exc_info=None):
        started["status"], started["headers"] = status, dict(headers)

    out = b"".join(wsgi_app(environ, start_response))
    return started["status"], started["headers"], out


class FakeHeavy:
    """A Unix socket server standing in for a heavy worker: it records each request it reads and writes
    ``answer`` (or closes without answering when ``answer`` is None); with ``read_body=False`` it answers after
    the head and closes without reading the body, as gunicorn does after an early answer such as a 429;
    ``before_answer`` runs just before it answers."""

    def __init__(self, tmp_path, answer: bytes | None, read_body: bool = True, before_answer=None):
        self.path = str(tmp_path / "heavy.sock")
        self.answer = answer
        self.read_body = read_body
        self.before_answer = before_answer
        self.requests: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, rest = data.partition(b"\r\n\r\n")
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                )
                while self.read_body and len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest)
                if self.before_answer is not None:
                    self.before_answer()
                if self.answer is not None:
                    conn.sendall(self.answer)

    def close(self):
        self.sock.close()


def test_which_requests_are_heavy(app) -> None:
    proxy = _proxy(app, "/nonexistent")
    small = json.dumps(LIQ).encode()
    assert not proxy.rule.is_heavy(_environ("/v1/liquidation-price", small))  # the light lane's
    assert proxy.rule.is_heavy(_environ("/v1/liquidation-price", b" " * (app.config["LIGHT_LANE_MAX_BODY"] + 1)))
    assert proxy.rule.is_heavy(_environ("/v1/liquidation-price", small, chunked=True))
    assert proxy.rule.is_heavy(_environ("/v1/liquidation-price/batch", b"{}"))
    assert proxy.rule.is_heavy(_environ("/v1/risk/liquidation-probability", b"{}"))
    assert proxy.rule.is_heavy(_environ("/v1/backtests", b"{}"))
    assert not proxy.rule.is_heavy(_environ("/v1/liquidation-price/batch", b"", method="GET"))
    assert not proxy.rule.is_heavy(_environ("/healthz", b"", method="GET"))
    assert not proxy.rule.is_heavy(_environ("/nowhere", b"{}"))


def test_without_a_heavy_worker_the_light_worker_answers(app, tmp_path) -> None:
    proxy = _proxy(app, str(tmp_path / "missing.sock"))
    body = json.dumps(BATCH).encode()
    here = _call(proxy, _environ("/v1/liquidation-price/batch", body))
    direct = _call(app, _environ("/v1/liquidation-price/batch", body))
    assert here[0] == direct[0] == "200 OK"
    assert json.loads(here[2]) == json.loads(direct[2])


def test_while_no_heavy_worker_is_alive_the_light_worker_answers(app, tmp_path) -> None:
    fake = FakeHeavy(tmp_path, b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
    try:
        proxy = _proxy(app, fake.path)
        proxy.available = lambda: False  # gunicorn stopped every heavy worker (TTOU)
        status, _, out = _call(proxy, _environ("/v1/liquidation-price/batch", json.dumps(BATCH).encode()))
    finally:
        fake.close()
    assert status == "200 OK" and json.loads(out)["count"] == 2 and fake.requests == []


def test_what_is_sent_and_what_comes_back(app, tmp_path) -> None:
    answer = (
        b"HTTP/1.1 422 Unprocessable Content\r\nServer: gunicorn\r\nDate: x\r\nConnection: close\r\n"
        b'Content-Type: application/problem+json\r\nContent-Length: 11\r\nX-Request-ID: r-1\r\n\r\n{"a": 1.0}\n'
    )
    fake = FakeHeavy(tmp_path, answer)
    try:
        proxy = _proxy(app, fake.path)
        body = json.dumps(BATCH).encode()
        environ = _environ(
            "/v1/liquidation-price/batch", body, chunked=True, x_liqrisk_peer="6.6.6.6 1", x_request_id="r-1",
            x_forwarded_proto="https", upgrade="h2c", te="trailers",
        )  # fmt: skip
        status, headers, out = _call(proxy, environ)
    finally:
        fake.close()
    assert status == "422 Unprocessable Content" and out == b'{"a": 1.0}\n'
    assert headers == {"Content-Type": "application/problem+json", "Content-Length": "11", "X-Request-ID": "r-1"}
    (sent,) = fake.requests
    head, _, sent_body = sent.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/liquidation-price/batch?fields=liquidation_price HTTP/1.1"
    fields = [line.lower() for line in lines[1:]]
    assert sent_body == body
    assert f"content-length: {len(body)}" in fields and "connection: close" in fields
    assert not any(f.startswith("transfer-encoding") for f in fields)
    assert [f for f in fields if f.startswith("x-liqrisk-peer")] == ["x-liqrisk-peer: 192.0.2.7 50123"]
    assert "x-request-id: r-1" in fields and "content-type: application/json" in fields
    # the client's scheme claim, upgrade and TE are not passed on: a heavy worker trusts its Unix-socket peer
    assert not any(f.startswith(("x-forwarded-proto", "upgrade", "te:")) for f in fields)


def test_an_https_request_is_passed_on_as_https(app, tmp_path) -> None:
    fake = FakeHeavy(tmp_path, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    try:
        environ = _environ("/v1/liquidation-price/batch", b"{}")
        environ["wsgi.url_scheme"] = "https"
        assert _call(_proxy(app, fake.path), environ)[2] == b"{}"
    finally:
        fake.close()
    assert b"\r\nX-Forwarded-Proto: https\r\n" in fake.requests[0]


def test_a_chunked_answer_or_a_cut_short_body_is_not_passed_on(app, tmp_path) -> None:
    fake = FakeHeavy(tmp_path, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    try:
        proxy = _proxy(app, fake.path)
        assert _call(proxy, _environ("/v1/liquidation-price/batch", b"{}"))[0].startswith("503")
        short = _environ("/v1/liquidation-price/batch", b"{}")
        short["CONTENT_LENGTH"] = "10"  # the client sent 2 of 10 bytes, then went away
        assert _call(proxy, short)[0].startswith("400")
    finally:
        fake.close()
    assert len(fake.requests) == 1  # the cut-short body was answered by the light worker itself


def test_a_heavy_worker_that_stops_mid_request_is_a_503_problem(app, tmp_path) -> None:
    fake = FakeHeavy(tmp_path, None)
    try:
        status, headers, out = _call(_proxy(app, fake.path), _environ("/v1/liquidation-price/batch", b"{}"))
    finally:
        fake.close()
    assert status.startswith("503")
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Retry-After"] == str(app.config["RETRY_AFTER"])
    problem = json.loads(out)
    assert problem["status"] == 503 and f"request id {headers['X-Request-ID']}" in problem["detail"]


def test_bodies_over_the_limit_are_refused_by_the_light_worker(app, tmp_path) -> None:
    fake = FakeHeavy(tmp_path, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    try:
        proxy = _proxy(app, fake.path)
        limit = app.config["MAX_CONTENT_LENGTH"]
        environ = _environ("/v1/liquidation-price/batch", b"")
        environ["CONTENT_LENGTH"] = str(limit + 1)  # refused before the body is read
        assert _call(proxy, environ)[0].startswith("413")
        chunked = _environ("/v1/liquidation-price/batch", b"[" * (limit + 10), chunked=True)
        assert _call(proxy, chunked)[0].startswith("413")
    finally:
        fake.close()
    assert fake.requests == []


def test_without_a_valid_api_key_the_light_worker_answers_401_before_reading_the_body(tmp_path) -> None:
    class Keyed(TestConfig):
        API_KEYS = ("k-1",)

    fake = FakeHeavy(tmp_path, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    try:
        proxy = _proxy(create_app(Keyed), fake.path)
        body = json.dumps(BATCH).encode()
        for headers in ({}, {"x_api_key": "wrong"}, {"authorization": "Bearer wrong"}):
            environ = _environ("/v1/liquidation-price/batch", body, **headers)
            status, out_headers, _ = _call(proxy, environ)
            assert status.startswith("401") and "WWW-Authenticate" in out_headers
            assert environ["wsgi.input"].tell() == 0  # the body was never read
        assert fake.requests == []
        for headers in ({"x_api_key": "k-1"}, {"authorization": "Bearer k-1"}):
            assert _call(proxy, _environ("/v1/liquidation-price/batch", body, **headers))[2] == b"{}"
    finally:
        fake.close()
    assert len(fake.requests) == 2 and all(b"k-1" in sent for sent in fake.requests)


def test_the_light_worker_lets_go_of_a_body_once_sent(app, tmp_path) -> None:
    environ = _environ("/v1/liquidation-price/batch", json.dumps(BATCH).encode())
    emptied = []

    def check() -> None:  # in the heavy worker, before it answers: the light worker no longer holds the body
        deadline = time.monotonic() + 10
        while environ["wsgi.input"].getvalue() and time.monotonic() < deadline:
            time.sleep(0.001)
        emptied.append(environ["wsgi.input"].getvalue() == b"")

    fake = FakeHeavy(tmp_path, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", before_answer=check)
    try:
        assert _call(_proxy(app, fake.path), environ)[2] == b"{}"
    finally:
        fake.close()
    assert emptied == [True]


def test_an_early_answer_before_the_body_is_read_is_passed_on(app, tmp_path) -> None:
    """The heavy worker answers on the head alone (a rate limit's 429) and closes with the body unread: the light
    worker's send fails, and it passes the answer on, not a 503."""
    answer = (b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/problem+json\r\nContent-Length: 2\r\n"
              b"Retry-After: 60\r\nConnection: close\r\n\r\n{}")  # fmt: skip
    fake = FakeHeavy(tmp_path, answer, read_body=False)
    try:
        big = json.dumps(BATCH).encode() + b" " * (3 << 20)  # far more than the socket's buffers hold
        status, headers, out = _call(_proxy(app, fake.path), _environ("/v1/liquidation-price/batch", big))
    finally:
        fake.close()
    assert status == "429 Too Many Requests" and headers["Retry-After"] == "60" and out == b"{}"


def test_the_peer_field_becomes_the_client_address() -> None:
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        return []

    environ = {"REMOTE_ADDR": "", "HTTP_X_LIQRISK_PEER": "2001:db8::1 443"}
    heavy_workers.TrustPeer(app)(environ, None)
    assert seen["REMOTE_ADDR"] == "2001:db8::1" and seen["REMOTE_PORT"] == "443" and "HTTP_X_LIQRISK_PEER" not in seen


def test_roles_through_start_crash_and_reload(monkeypatch) -> None:
    monkeypatch.setattr(heavy_workers, "_listener", object())
    monkeypatch.setattr(heavy_workers, "light_workers", 2)
    workers: dict[int, SimpleNamespace] = {}
    age = 0

    def spawn() -> int:
        nonlocal age
        age += 1
        role = http_worker.assign_role(workers, 4)
        workers[age] = SimpleNamespace(age=age, liqrisk_role=role)
        return role

    light, heavy = http_worker.LIGHT, http_worker.HEAVY
    assert [spawn() for _ in range(4)] == [light, light, heavy, heavy]
    del workers[1]  # a light worker dies: its replacement is light
    assert spawn() == light
    del workers[3]  # a heavy one: heavy
    assert spawn() == heavy
    # a reload starts a new generation of four beside the old one, then gunicorn stops the four oldest
    new = [spawn() for _ in range(4)]
    assert sorted(new) == [light, light, heavy, heavy]
    # fewer workers (TTOU): gunicorn stops the oldest, and the heavy ones are made the oldest
    for old in sorted(workers, key=lambda pid: workers[pid].age)[:-4]:
        del workers[old]  # gunicorn stopped the old generation
    http_worker.shed_heavy_first(workers)
    oldest = sorted(workers.values(), key=lambda w: w.age)
    assert [w.liqrisk_role for w in oldest] == [heavy, heavy, light, light]
    monkeypatch.setattr(heavy_workers, "_listener", None)
    assert http_worker.assign_role(workers, 4) == light  # no heavy socket: every worker is light


def _post(base: str, path: str, payload: dict) -> tuple[int, dict]:
    req = urllib.request.Request(
        base + path, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, json.loads(resp.read())


def _lines(log) -> list[dict]:
    return [json.loads(x) for x in log.read_text(errors="replace").splitlines() if x.startswith('{"ts"')]


def _split_server(tmp_path, **settings: str) -> tuple[subprocess.Popen, str, object]:
    """gunicorn with one light and one heavy worker and ``settings`` (``LIQRISK_*``) on a free loopback port:
    (process, base URL, its log file)."""
    log = tmp_path / "server.log"
    port = _free_port()
    env = {**os.environ, "LIQRISK_BIND": f"127.0.0.1:{port}", "LIQRISK_WORKERS": "1", "LIQRISK_HEAVY_WORKERS": "1",
           **settings}  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(GUNICORN, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}", log


def test_gunicorn_splits_the_work(tmp_path) -> None:
    proc, base, log = _split_server(tmp_path, LIQRISK_RATE_LIMIT_ENABLED="0")
    try:
        _wait(base + "/healthz", proc)

        def pids() -> tuple[int, int]:
            before = len(_lines(log))
            assert _post(base, "/v1/liquidation-price", LIQ)[0] == 200
            status, answer = _post(base, "/v1/liquidation-price/batch", BATCH)
            assert status == 200 and answer["count"] == 2 and answer["errors"] == []
            time.sleep(0.2)
            single, batch = _lines(log)[before:][-2:]
            assert single["path"] == "/v1/liquidation-price" and batch["path"] == "/v1/liquidation-price/batch"
            assert batch["client"] == "127.0.0.1"  # the client's address, not the light worker's socket
            return single["pid"], batch["pid"]

        def split_pids() -> tuple[int, int]:
            """The light and the heavy worker's pids, once a heavy worker is up again (until then the light
            worker answers heavy requests itself)."""
            deadline = time.monotonic() + 30
            while True:
                light, heavy = pids()
                if light != heavy or time.monotonic() > deadline:
                    assert light != heavy
                    return light, heavy
                time.sleep(0.2)

        light, heavy = split_pids()
        assert "liqrisk: 1 light and 1 heavy workers" in log.read_text()
        os.kill(heavy, signal.SIGKILL)  # gunicorn starts another heavy worker
        deadline = time.monotonic() + 20
        while log.read_text().count("Booting worker") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        light2, heavy2 = split_pids()
        assert light2 == light and heavy2 not in (light, heavy)
        os.kill(proc.pid, signal.SIGHUP)  # a reload: a new light and a new heavy worker replace both
        deadline = time.monotonic() + 30
        while log.read_text().count("Booting worker") < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3.0)
        light3, heavy3 = split_pids()
        assert {light3, heavy3}.isdisjoint({light, heavy2})
    finally:
        _stop(proc)


def test_gunicorn_heavy_worker_sheds_what_waits_too_long_for_its_turn(tmp_path) -> None:
    """Four Monte Carlo requests at once (each ~0.3 s of work) to one heavy worker whose lane waits at most
    0.1 s: some are answered and the ones that waited for their turn are shed with the lane's 503 problem, which
    the light worker passes on as it came (no heavy-worker failure). That they ran one at a time is
    test_heavy_lane.py's."""
    proc, base, log = _split_server(tmp_path, LIQRISK_RATE_LIMIT_ENABLED="0", LIQRISK_HEAVY_QUEUE_WAIT="0.1")
    heavy = {"side": "long", "mark_price": 100_000, "liquidation_price": 90_000, "volatility": 0.8,
             "model": "student_t", "paths": 200_000, "horizon_hours": 25, "monitoring_minutes": 60}  # fmt: skip
    answers: list[tuple[int, dict]] = []

    def one() -> None:
        try:
            answers.append(_post(base, "/v1/risk/liquidation-probability", heavy))
        except urllib.error.HTTPError as err:
            answers.append((err.code, json.loads(err.read())))

    try:
        _wait(base + "/healthz", proc)
        deadline = time.monotonic() + 30
        while "liqrisk: heavy worker" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)  # the heavy worker is up (until then the light worker would answer itself)
        assert _post(base, "/v1/liquidation-price", LIQ)[0] == 200
        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        metrics = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    finally:
        _stop(proc)
    statuses = sorted(status for status, _ in answers)
    assert statuses[0] == 200 and statuses[-1] == 503, statuses
    for status, answer in answers:
        if status == 503:
            assert "for its turn" in answer["detail"] and answer["errors"] == {
                "body": ["not started: the server is busy with other large requests"]
            }
    assert "liqrisk_heavy_worker_failures_total{" not in metrics
    light = {x["pid"] for x in _lines(log) if x["path"] == "/v1/liquidation-price"}
    heavy_pids = {x["pid"] for x in _lines(log) if x["path"] == "/v1/risk/liquidation-probability"}
    assert len(heavy_pids) == 1 and heavy_pids.isdisjoint(light)  # all four answered by the heavy worker


def test_gunicorn_a_large_heavy_request_over_its_rate_limit_gets_its_429(tmp_path) -> None:
    """The heavy worker refuses a client over its heavy-route limit on the head alone and closes with the body
    unread: the light worker, still sending, passes that 429 on (not a heavy-worker 503)."""
    proc, base, log = _split_server(tmp_path, LIQRISK_RATE_LIMIT_ENABLED="1", LIQRISK_RATE_LIMIT_HEAVY="1/minute")
    body = json.dumps(BATCH).encode() + b" " * (4 << 20)
    statuses = []
    try:
        _wait(base + "/healthz", proc)
        deadline = time.monotonic() + 30
        while "liqrisk: heavy worker" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        for _ in range(2):
            req = urllib.request.Request(base + "/v1/liquidation-price/batch", data=body,
                                         headers={"Content-Type": "application/json"})  # fmt: skip
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    statuses.append(resp.status)
            except urllib.error.HTTPError as err:
                statuses.append(err.code)
        metrics = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    finally:
        _stop(proc)
    assert statuses == [200, 429]
    assert "liqrisk_heavy_worker_failures_total{" not in metrics
