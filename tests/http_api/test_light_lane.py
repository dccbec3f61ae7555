"""The light lane (:mod:`api.light_lane`): its lock is handed over in arrival order; short calculator requests
wait for it while heavy, large and chunked ones do not; answers are the same with the lane and without; it is
off when rate-limit counters live in a shared store."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest

from api import TestConfig, create_app, light_lane

LIQ = {"side": "long", "entry_price": 100000, "quantity": 0.5, "leverage": 20}


def _wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_the_lock_is_handed_over_in_arrival_order() -> None:
    lock = light_lane.FifoLock()
    order: list[int] = []
    lock.acquire()
    threads = []
    for i in range(8):
        t = threading.Thread(target=lambda i=i: (lock.acquire(), order.append(i), lock.release()))
        t.start()
        _wait_until(lambda n=i + 1: lock.waiting() == n)  # each asks after the one before it
        threads.append(t)
    lock.release()
    for t in threads:
        t.join(10)
    assert order == list(range(8))
    with lock:  # free again
        assert lock.waiting() == 0


def test_work_left_and_waiters_are_served_first_come_first_served() -> None:
    lock = light_lane.FifoLock()
    order: list[str] = []
    ran = threading.Event()

    def run_left(item: str) -> None:
        if item == "boom":
            raise RuntimeError("the lock passes on anyway")
        order.append(item)
        if item == "d":
            ran.set()

    lock.run_left = run_left
    assert lock.acquire_or_leave("never")  # free: taken, nothing left
    assert not lock.acquire_or_leave("a") and not lock.acquire_or_leave("boom")  # held: left, never waits
    first = threading.Thread(target=lambda: (lock.acquire(), order.append("waiter 1"), lock.release()))
    first.start()
    _wait_until(lambda: lock.waiting() == 1)
    assert not lock.acquire_or_leave("b")
    second = threading.Thread(target=lambda: (lock.acquire(), order.append("waiter 2"), lock.release()))
    second.start()
    _wait_until(lambda: lock.waiting() == 2)
    assert not lock.acquire_or_leave("c") and not lock.acquire_or_leave("d")
    lock.release()
    for t in (first, second):
        t.join(10)
    assert ran.wait(10)
    _wait_until(lock.idle)  # free again once the drain has passed it on
    assert order == ["a", "waiter 1", "b", "waiter 2", "c", "d"]


@pytest.fixture
def lane_app():
    app = create_app(TestConfig)
    assert isinstance(app.wsgi_app, light_lane.LightLane)
    return app


def _call(app, path: str, body: bytes | None, headers: dict | None = None) -> tuple[str, bytes]:
    environ = {
        "REQUEST_METHOD": "POST" if body is not None else "GET",
        "PATH_INFO": path,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body or b""),
        "wsgi.errors": io.StringIO(),
        "CONTENT_TYPE": "application/json",
        **(headers or {}),
    }
    if body is not None and "CONTENT_LENGTH" not in environ:
        environ["CONTENT_LENGTH"] = str(len(body))
    status = []
    out = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
    return status[0], out


def _runs_while_the_lane_is_held(app, path: str, body: bytes | None, headers: dict | None = None) -> bool:
    """Whether the request finishes while the test holds the lane (then it does not take the lane)."""
    done = threading.Event()
    app.wsgi_app.lane.acquire()
    try:
        t = threading.Thread(target=lambda: (_call(app, path, body, headers), done.set()))
        t.start()
        finished = done.wait(5.0)
    finally:
        app.wsgi_app.lane.release()
    t.join(30)
    assert done.is_set()
    return finished


def test_short_requests_take_the_lane_and_the_others_do_not(lane_app) -> None:
    liq = json.dumps(LIQ).encode()
    assert not _runs_while_the_lane_is_held(lane_app, "/v1/liquidation-price", liq)
    assert not _runs_while_the_lane_is_held(lane_app, "/healthz", None)
    # heavy route, body over the lane's limit, chunked body, other routes: beside the lane
    batch = json.dumps({"positions": {k: [v] for k, v in LIQ.items()}}).encode()
    assert _runs_while_the_lane_is_held(lane_app, "/v1/liquidation-price/batch", batch)
    big = json.dumps({**LIQ, "pad": " " * (lane_app.config["LIGHT_LANE_MAX_BODY"] + 1)}).encode()
    assert _runs_while_the_lane_is_held(lane_app, "/v1/liquidation-price", big)
    assert _runs_while_the_lane_is_held(lane_app, "/v1/liquidation-price", liq, {"HTTP_TRANSFER_ENCODING": "chunked"})
    assert _runs_while_the_lane_is_held(lane_app, "/v1/exchanges", None)


def test_answers_are_the_same_with_and_without_the_lane(lane_app, monkeypatch) -> None:
    monkeypatch.setattr(TestConfig, "LIGHT_LANE", False)
    plain = create_app(TestConfig)
    assert not isinstance(plain.wsgi_app, light_lane.LightLane)
    liq = json.dumps(LIQ).encode()
    cases = [
        ("/v1/liquidation-price", liq, None),
        ("/v1/liquidation-price", json.dumps({**LIQ, "leverage": 1e9}).encode(), None),
        ("/v1/liquidation-price", b'{"side": "long", "entry_', None),
        ("/v1/liquidation-price", liq[:20], {"CONTENT_LENGTH": str(len(liq))}),  # the client went away mid-body
        ("/v1/pnl", json.dumps({"side": "long", "entry_price": 100, "exit_price": 110, "quantity": 1}).encode(), None),
        ("/healthz", None, None),
    ]
    for path, body, headers in cases:
        with_lane, without = _call(lane_app, path, body, headers), _call(plain, path, body, headers)
        assert with_lane[0] == without[0], path
        assert json.loads(with_lane[1]) == json.loads(without[1]), path


def test_the_lane_is_off_with_a_shared_rate_limit_store() -> None:
    config = {"LIGHT_LANE": True, "RATE_LIMIT_ENABLED": True, "RATE_LIMIT_STORAGE": "memory://"}
    assert light_lane.lane_wanted(config)
    assert not light_lane.lane_wanted({**config, "RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379/0"})
    assert light_lane.lane_wanted({**config, "RATE_LIMIT_ENABLED": False, "RATE_LIMIT_STORAGE": "redis://x"})
    assert not light_lane.lane_wanted({**config, "LIGHT_LANE": False})
