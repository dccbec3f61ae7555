"""The heavy lane (:mod:`api.heavy_lane`): heavy requests take turns in arrival order, each read whole before it
asks for one; one that gets no turn in time is a 503 problem, counted, with no work done; requests refused on
their headers, light requests and job submissions never wait for it; ``FifoLock.acquire`` with a timeout."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest

from api import TestConfig, create_app, heavy_lane, light_lane
from api.heavy_workers import HeavyRule

BATCH = {"positions": {"side": ["long", "short"], "entry_price": [100000, 50000], "quantity": [1, 2],
                       "leverage": [10, 20]}}  # fmt: skip
LIQ = {"side": "long", "entry_price": 100000, "quantity": 0.5, "leverage": 20}


def _wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _lane(app) -> heavy_lane.HeavyLane:
    """The app's heavy lane, inside its light lane."""
    wsgi = app.wsgi_app
    while not isinstance(wsgi, heavy_lane.HeavyLane):
        wsgi = wsgi.app
    return wsgi


def _environ(path: str = "/h", body: bytes = b"{}", stream=None) -> dict:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": stream if stream is not None else io.BytesIO(body),
    }


class Recorder:
    """A WSGI app that notes when each request starts and ends, and how many run at once."""

    def __init__(self, seconds: float = 0.02) -> None:
        self.seconds = seconds
        self.events: list[str] = []
        self.running = self.most = 0
        self.guard = threading.Lock()

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read()
        with self.guard:
            self.running += 1
            self.most = max(self.most, self.running)
            self.events.append("start " + body.decode())
        time.sleep(self.seconds)
        with self.guard:
            self.running -= 1
        start_response("200 OK", [])
        return [body]


def _heavy(app, wait: float = 10.0) -> heavy_lane.HeavyLane:
    return heavy_lane.HeavyLane(app, HeavyRule(frozenset({"/h"}), frozenset(), 100, {"/h": 1000}), wait)


def test_heavy_requests_take_turns_in_arrival_order() -> None:
    inner = Recorder()
    lane = _heavy(inner)
    lane.lane.acquire()  # held, so that the requests queue in the order they are started
    threads = []
    for i in range(4):
        t = threading.Thread(target=lambda i=i: list(lane(_environ(body=b"%d" % i), lambda *a: None)))
        t.start()
        threads.append(t)
        _wait_until(lambda n=i + 1: lane.lane.waiting() == n)
    lane.lane.release()
    for t in threads:
        t.join(10)
    assert inner.events == ["start 0", "start 1", "start 2", "start 3"] and inner.most == 1


def test_a_slow_upload_does_not_hold_the_lane() -> None:
    inner = Recorder(0.0)
    lane = _heavy(inner)
    arrived = threading.Event()

    class Trickle(io.RawIOBase):
        def read(self, n=-1):
            arrived.wait(10)  # the client's bytes have not come yet
            return b"{}"

    slow = threading.Thread(target=lambda: list(lane(_environ(stream=Trickle()), lambda *a: None)))
    slow.start()
    time.sleep(0.05)
    assert list(lane(_environ(body=b"quick"), lambda *a: None)) == [b"quick"]  # not queued behind the upload
    assert lane.lane.idle()
    arrived.set()
    slow.join(10)
    assert inner.events == ["start quick", "start {}"]


def test_only_heavy_requests_take_the_lane() -> None:
    inner = Recorder(0.0)
    lane = _heavy(inner, wait=0.05)
    lane.lane.acquire()
    try:
        get = _environ()
        get["REQUEST_METHOD"] = "GET"
        assert list(lane(get, lambda *a: None)) == [b"{}"]  # not a POST
        assert list(lane(_environ("/elsewhere"), lambda *a: None)) == [b"{}"]  # not a heavy path
        over = _environ(body=b"x" * 2000)  # over the route's limit: the app refuses it as it stands
        assert list(lane(over, lambda *a: None)) == [b"x" * 2000] and heavy_lane.BUSY not in over
    finally:
        lane.lane.release()


def test_no_turn_in_time_is_a_503_problem_with_no_work_done() -> None:
    app = create_app(type("Cfg", (TestConfig,), {"HEAVY_QUEUE_WAIT": 0.05, "RETRY_AFTER": 3}))
    client = app.test_client()
    lane = _lane(app).lane
    lane.acquire()  # another heavy request is running
    try:
        resp = client.post("/v1/liquidation-price/batch", json=BATCH, headers={"X-Request-ID": "busy-1"})
        assert resp.status_code == 503 and resp.content_type == "application/problem+json"
        problem = resp.get_json()
        assert resp.headers["Retry-After"] == "3" and "busy-1" in problem["detail"]
        assert problem["errors"] == {"body": ["not started: the server is busy with other large requests"]}
        # light requests, and heavy ones refused on their headers, do not wait for the lane
        assert client.post("/v1/liquidation-price", json=LIQ).status_code == 200
        big = client.post("/v1/liquidation-price/batch", data=b" " * (app.config["MAX_CONTENT_LENGTH"] + 1),
                          content_type="application/json")  # fmt: skip
        assert big.status_code == 413
    finally:
        lane.release()
    assert client.post("/v1/liquidation-price/batch", json=BATCH).get_json()["count"] == 2
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'liqrisk_heavy_lane_busy_total{route="/v1/liquidation-price/batch"}' in metrics


def test_job_submissions_and_light_requests_are_not_heavy_lane_requests() -> None:
    app = create_app(TestConfig)
    rule = _lane(app).rule
    body = json.dumps(LIQ).encode()
    assert not rule.is_heavy({**_environ("/v1/backtests", body)})  # the job workers do that work
    assert not rule.is_heavy({**_environ("/v1/sweeps", body)})
    assert not rule.is_heavy({**_environ("/v1/liquidation-price", body)})  # the light lane's
    assert rule.is_heavy({**_environ("/v1/liquidation-price/batch", body)})
    assert rule.is_heavy({**_environ("/v1/market/cascade", body)})
    assert rule.is_heavy({**_environ("/v1/liquidation-price", body + b" " * app.config["LIGHT_LANE_MAX_BODY"])})


def test_off_when_the_setting_is() -> None:
    app = create_app(type("Cfg", (TestConfig,), {"HEAVY_LANE": False}))
    with pytest.raises(AttributeError):
        _lane(app)


def test_a_waiter_that_times_out_gives_up_its_place() -> None:
    lock = light_lane.FifoLock()
    lock.acquire()
    order: list[str] = []
    assert not lock.acquire(timeout=0.01) and lock.waiting() == 0  # gave up its place
    late = threading.Thread(target=lambda: (lock.acquire(), order.append("late"), lock.release()))
    late.start()
    _wait_until(lambda: lock.waiting() == 1)
    gives_up = threading.Thread(target=lambda: order.append(str(lock.acquire(timeout=0.05))))
    gives_up.start()
    gives_up.join(10)
    assert order == ["False"] and lock.waiting() == 1
    lock.release()  # to the one still waiting
    late.join(10)
    assert order == ["False", "late"] and lock.idle()
    assert lock.acquire(timeout=0) and not lock.idle()
    lock.release()
