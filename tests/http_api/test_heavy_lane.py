"""The heavy lane (:mod:`api.heavy_lane`): heavy requests take turns in arrival order, each read whole before it
asks for one; a full queue or no turn in time is a 503 problem, counted, with no work done; what refuses a
request before its work (body limit, rate limit) comes first; light requests and small job submissions never wait
for it (a job submission that uploads bars holds a turn until its job is queued); a request that waited gets its
whole time budget; the turn is given back whatever the view does; and ``FifoLock.acquire`` with a timeout,
including a hand-over as the time runs out."""

from __future__ import annotations

import io
import json
import threading
import time

from flask import Flask, request
from werkzeug.test import EnvironBuilder

from api import TestConfig, create_app, heavy_lane, light_lane
from api.heavy_workers import HANDED_OFF, HeavyRule
from core import budget
from tests.http_api.test_light_lane import LIQ, _wait_until

BATCH = {"positions": {"side": ["long", "short"], "entry_price": [100000, 50000], "quantity": [1, 2],
                       "leverage": [10, 20]}}  # fmt: skip


class Recorder:
    """A view that notes each body it serves and how many run at once (optionally raising, or noting the time
    budget left when it starts)."""

    def __init__(self, seconds: float = 0.02) -> None:
        self.seconds = seconds
        self.events: list[str] = []
        self.running = self.most = 0
        self.guard = threading.Lock()
        self.budget_left: list[float] = []

    def view(self):
        body = request.get_data(as_text=True)
        if body == "raise":
            raise RuntimeError("the view failed")
        deadline = budget._deadline.get()
        if deadline is not None:
            self.budget_left.append(deadline[0] - time.monotonic())
        with self.guard:
            self.running += 1
            self.most = max(self.most, self.running)
            self.events.append(body)
        time.sleep(self.seconds)
        with self.guard:
            self.running -= 1
        return body


def _app(wait: float | None = 10.0, max_bytes: int = 1 << 20, seconds: float = 0.02, budget_s: float | None = None):
    """A small app whose ``/h`` runs in a heavy lane (body limit 1,000 bytes) and ``/light`` does not."""
    app = Flask(__name__)
    rec = Recorder(seconds)
    lane = heavy_lane.HeavyLane(HeavyRule(frozenset({"/h"}), frozenset(), 100, {"/h": 1000}), wait, max_bytes, "3")
    app.add_url_rule("/h", "h", lane.wrap(rec.view), methods=["GET", "POST"])
    app.add_url_rule("/light", "light", lane.wrap(rec.view), methods=["POST"])
    if budget_s is not None:
        app.before_request(lambda: budget.start(budget_s) and None)
    return app, lane, rec


def _post(app, body: str, out: list | None = None, **kwargs):
    resp = app.test_client().post("/h", data=body, **kwargs)
    if out is not None:
        out.append(resp)
    return resp


def test_heavy_requests_take_turns_in_arrival_order() -> None:
    app, lane, rec = _app()
    lane.lock.acquire()  # held, so that the requests queue in the order they are started
    threads = []
    for i in range(4):
        t = threading.Thread(target=_post, args=(app, str(i)))
        t.start()
        threads.append(t)
        _wait_until(lambda n=i + 1: lane.lock.waiting() == n)
    lane.lock.release()
    for t in threads:
        t.join(10)
    assert rec.events == ["0", "1", "2", "3"] and rec.most == 1 and lane.lock.idle()


def test_a_slow_upload_does_not_hold_the_lane() -> None:
    app, lane, rec = _app(seconds=0.0)
    arrived, reading = threading.Event(), threading.Event()

    environ = EnvironBuilder(path="/h", method="POST").get_environ()
    environ.update({"wsgi.input": HeldBody(b"{}", reading, arrived), "CONTENT_LENGTH": "2"})
    slow = threading.Thread(target=lambda: list(app(environ, lambda *a: None)))
    slow.start()
    assert reading.wait(10)  # the slow request is reading its body
    assert _post(app, "quick").get_data() == b"quick"  # not queued behind the upload
    assert lane.lock.idle()
    arrived.set()
    slow.join(10)
    assert rec.events == ["quick", "{}"]


def test_only_heavy_requests_take_the_lane() -> None:
    app, lane, rec = _app(wait=0.05)
    client = app.test_client()
    lane.lock.acquire()  # another heavy request runs
    try:
        assert client.get("/h").status_code == 200  # not a POST
        assert client.post("/light", data="small").get_data() == b"small"  # not a heavy path
        assert _post(app, "x" * 2000).status_code == 200  # over the route's limit: the view refuses it at once
        assert rec.events == ["", "small", "x" * 2000]
    finally:
        lane.lock.release()


def test_a_full_queue_or_no_turn_in_time_is_a_503_with_no_work_done() -> None:
    app, lane, rec = _app(wait=2.0, max_bytes=600)
    lane.lock.acquire()  # another heavy request runs
    try:
        waiting: list = []
        threads = [threading.Thread(target=_post, args=(app, body, waiting)) for body in ("a" * 500, "b" * 100)]
        for i, t in enumerate(threads):
            t.start()
            _wait_until(lambda n=i + 1: lane.lock.waiting() == n)
        assert lane.waiting_bytes == 600
        full = _post(app, "c")  # one byte more than the queue holds: shed at once
        unread = EnvironBuilder(path="/h", method="POST").get_environ()
        unread.update({"wsgi.input": Unreadable(), "CONTENT_LENGTH": "50"})
        answer: list = []
        body = b"".join(app(unread, lambda status, headers: answer.append(status)))
        assert answer == ["503 SERVICE UNAVAILABLE"] and b"the queue of them is full" in body  # shed unread
        assert _post(app, "x" * 2000).status_code == 200  # over the route's limit: the view's to refuse, not shed
        for t in threads:
            t.join(10)  # and the waiting ones' time ran out
    finally:
        lane.lock.release()
    for resp, why in ((full, "the queue of them is full"), *((r, "for its turn") for r in waiting)):
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "3"
        assert why in resp.get_json()["detail"]
    assert rec.events == ["x" * 2000] and lane.lock.idle() and lane.waiting_bytes == 0  # no other was started


class HeldBody(io.RawIOBase):
    """A request body whose bytes (``data``) come only once ``arrived`` is set; ``reading`` is set when they are
    first asked for (a slow client's upload, or a handed-on body caught mid-read)."""

    def __init__(self, data: bytes, reading: threading.Event, arrived: threading.Event) -> None:
        self.data, self.reading, self.arrived = data, reading, arrived

    def readable(self):
        return True

    def readinto(self, buffer):
        self.reading.set()
        self.arrived.wait(10)  # the bytes have not come yet
        buffer[: len(self.data)] = self.data
        return len(self.data)


class Unreadable(io.RawIOBase):
    """A request body that must not be read."""

    def readable(self):
        return True

    def readinto(self, buffer):
        raise AssertionError("the body was read")


def test_a_handed_on_body_counts_among_the_waiting_ones_while_it_is_read() -> None:
    """A body a light worker handed on holds its room in the queue from before it is read (it arrives at once);
    a client's own upload only once read (test_a_slow_upload_does_not_hold_the_lane); one that does not fit is
    shed unread."""
    app, lane, rec = _app(max_bytes=600, seconds=0.0)
    reading, arrived = threading.Event(), threading.Event()

    def handed_on(stream, length: int) -> dict:
        environ = EnvironBuilder(path="/h", method="POST").get_environ()
        environ.update({"wsgi.input": stream, "CONTENT_LENGTH": str(length), HANDED_OFF: True})
        return environ

    # the lane free and nobody waiting: the first is to run next, so it holds no room while it is read, and the
    # one request that may always wait (max_bytes 0) is still admitted
    idle_app, idle_lane, idle_rec = _app(max_bytes=0, seconds=0.0)
    statuses: list = []

    def noted(status, headers):
        statuses.append(status)

    early = threading.Thread(
        target=lambda: list(idle_app(handed_on(HeldBody(b"a" * 500, reading, arrived), 500), noted))
    )
    early.start()
    assert reading.wait(10)
    assert idle_lane.waiting == idle_lane.waiting_bytes == 0 and idle_lane.lock.idle()
    idle_lane.lock.acquire()  # another request takes the free lane meanwhile
    try:
        waiter = threading.Thread(target=lambda: list(idle_app(handed_on(io.BytesIO(b"b" * 100), 100), noted)))
        waiter.start()
        _wait_until(lambda: idle_lane.lock.waiting() == 1)  # it may wait: nobody else does
        arrived.set()
        early.join(10)  # the first, read, finds the lane taken and the one place in the queue too: shed
        assert statuses == ["503 SERVICE UNAVAILABLE"]
    finally:
        idle_lane.lock.release()
    waiter.join(10)
    assert statuses[1:] == ["200 OK"] and idle_rec.events == ["b" * 100] and idle_lane.waiting_bytes == 0
    assert not idle_lane._next_reading and idle_lane.lock.idle()
    reading.clear()
    arrived.clear()

    lane.lock.acquire()  # another heavy request runs
    try:
        first = threading.Thread(
            target=lambda: list(app(handed_on(HeldBody(b"a" * 500, reading, arrived), 500), lambda *a: None))
        )
        first.start()
        assert reading.wait(10)
        assert lane.waiting_bytes == 500 and lane.lock.waiting() == 0  # counted while it is still being read
        answer: list = []
        body = b"".join(app(handed_on(Unreadable(), 200), lambda status, headers: answer.append(status)))
        assert answer == ["503 SERVICE UNAVAILABLE"] and b"the queue of them is full" in body
        second: list = []
        client = threading.Thread(target=_post, args=(app, "b" * 100, second))  # fits: 600 bytes in all
        client.start()
        _wait_until(lambda: lane.lock.waiting() == 1)
        arrived.set()
        _wait_until(lambda: lane.lock.waiting() == 2)
        assert lane.waiting_bytes == 600
    finally:
        arrived.set()
        lane.lock.release()
    first.join(10)
    client.join(10)
    assert sorted(rec.events) == ["a" * 500, "b" * 100] and second[0].status_code == 200
    assert lane.waiting_bytes == 0 and lane.lock.idle()


def test_one_request_may_wait_whatever_its_size() -> None:
    app, lane, rec = _app(max_bytes=10, seconds=0.0)
    lane.lock.acquire()
    t = threading.Thread(target=_post, args=(app, "x" * 900))
    t.start()
    _wait_until(lambda: lane.lock.waiting() == 1)
    assert lane.waiting_bytes == 900  # over max_bytes, but nobody else waited
    lane.lock.release()
    t.join(10)
    assert rec.events == ["x" * 900] and lane.waiting_bytes == 0


def test_a_request_that_waited_gets_its_whole_budget() -> None:
    app, lane, rec = _app(budget_s=100.0, seconds=0.0)
    lane.lock.acquire()
    t = threading.Thread(target=_post, args=(app, "late"))
    t.start()
    _wait_until(lambda: lane.lock.waiting() == 1)
    time.sleep(0.5)  # half a second of the budget spent waiting
    lane.lock.release()
    t.join(10)
    assert rec.events == ["late"] and rec.budget_left[0] > 99.8  # restarted when its turn came


def test_the_turn_is_given_back_when_the_view_raises() -> None:
    app, lane, rec = _app()
    assert _post(app, "raise").status_code == 500
    assert lane.lock.idle() and _post(app, "after").get_data() == b"after"


def test_a_client_over_its_rate_limit_gets_its_429_at_once() -> None:
    settings = {"HEAVY_QUEUE_WAIT": 0.05, "RATE_LIMIT_ENABLED": True, "RATE_LIMIT_HEAVY": "1/hour"}
    app = create_app(type("Cfg", (TestConfig,), settings))
    client = app.test_client()
    lane = app.extensions["liqrisk_heavy_lane"]
    assert client.post("/v1/liquidation-price/batch", json=BATCH).get_json()["count"] == 2  # the hour's one
    lane.lock.acquire()  # another heavy request is running
    try:
        assert client.post("/v1/liquidation-price/batch", json=BATCH).status_code == 429  # not a 503 after the wait
    finally:
        lane.lock.release()


def test_the_app_answers_a_503_problem_and_does_not_hold_back_what_it_refuses_anyway() -> None:
    settings = {"HEAVY_QUEUE_WAIT": 0.05, "RETRY_AFTER": 3, "MAX_CONTENT_LENGTH": 1 << 20}
    app = create_app(type("Cfg", (TestConfig,), settings))
    client = app.test_client()
    lane = app.extensions["liqrisk_heavy_lane"]
    prob = {"side": "long", "mark_price": 100, "liquidation_price": 90, "volatility": 0.5, "horizon_hours": 1}
    lane.lock.acquire()  # another heavy request is running
    try:
        resp = client.post("/v1/risk/liquidation-probability", json=prob, headers={"X-Request-ID": "busy-1"})
        assert resp.status_code == 503 and resp.content_type == "application/problem+json"
        problem = resp.get_json()
        assert resp.headers["Retry-After"] == "3" and "busy-1" in problem["detail"]
        assert problem["errors"] == {"body": ["not started: the server is busy with other large requests"]}
        # light requests, and heavy ones over MAX_CONTENT_LENGTH (below the route's own limit), do not wait
        assert client.post("/v1/liquidation-price", json=LIQ).status_code == 200
        big = client.post("/v1/market/liquidation-summary", data=b" " * (2 << 20), content_type="application/json")
        assert big.status_code == 413
    finally:
        lane.lock.release()
    assert client.post("/v1/risk/liquidation-probability", json=prob).status_code == 200
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'liqrisk_heavy_lane_busy_total{route="/v1/risk/liquidation-probability"}' in metrics


def test_small_job_submissions_and_light_requests_are_not_in_the_lane() -> None:
    app = create_app(TestConfig)
    rule = app.extensions["liqrisk_heavy_lane"].rule
    body = json.dumps(LIQ).encode()
    upload = body + b" " * app.config["LIGHT_LANE_MAX_BODY"]

    def environ(path: str, data: bytes = body, **more: str) -> dict:
        return {"REQUEST_METHOD": "POST", "PATH_INFO": path, "CONTENT_LENGTH": str(len(data)), **more}

    assert not rule.is_heavy(environ("/v1/backtests"))  # a named dataset: the job workers do the work
    assert not rule.is_heavy(environ("/v1/sweeps"))
    assert rule.is_heavy(environ("/v1/backtests", upload))  # uploaded bars: checked and stored in a turn
    assert rule.is_heavy(environ("/v1/sweeps", HTTP_TRANSFER_ENCODING="chunked"))
    assert not rule.is_heavy(environ("/v1/liquidation-price"))  # the light lane's
    assert rule.is_heavy(environ("/v1/liquidation-price/batch"))
    assert rule.is_heavy(environ("/v1/market/cascade"))
    assert rule.is_heavy(environ("/v1/liquidation-price", upload))

    # one rule for the app: the lane's is the hand-off's (app.extensions, api.http_worker.heavy_proxy), with the
    # same body limits and key check, the job routes heavy only when large
    app_rule = app.extensions["liqrisk_heavy_rule"]
    assert rule.paths == app_rule.paths and rule.admits is app_rule.admits
    assert rule.light_paths == app_rule.light_paths | {"/v1/backtests", "/v1/sweeps"}
    assert rule.body_limits == {path: app_rule.body_limits[path] for path in rule.paths}
    assert app_rule.is_heavy(environ("/v1/backtests")) and not app_rule.is_heavy(environ("/v1/liquidation-price"))


def _lanes_of(view) -> list:
    """The heavy lanes in ``view``'s chain of decorators."""
    lanes = []
    while view is not None:
        if hasattr(view, "liqrisk_heavy_lane"):
            lanes.append(view.liqrisk_heavy_lane)
        view = getattr(view, "__wrapped__", None)
    return lanes


def test_off_when_the_setting_is() -> None:
    on = create_app(TestConfig)
    assert on.extensions["liqrisk_heavy_lane"] in _lanes_of(on.view_functions["liquidation.liquidation_price_batch"])
    assert on.extensions["liqrisk_heavy_lane"] in _lanes_of(on.view_functions["backtests.backtests"])
    off = create_app(type("Cfg", (TestConfig,), {"HEAVY_LANE": False}))
    assert "liqrisk_heavy_lane" not in off.extensions
    assert _lanes_of(off.view_functions["liquidation.liquidation_price_batch"]) == []


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


def test_a_hand_over_as_the_time_runs_out_keeps_the_lock(monkeypatch) -> None:
    """The holder passes the lock on just as the waiter's time runs out: the waiter has it, and says so."""
    lock = light_lane.FifoLock()
    lock.acquire()
    real_lock = threading.Lock

    class Racing:
        """The waiter's turn: its timed wait ends (False) just after the holder has released the lock to it."""

        def __init__(self) -> None:
            self.inner = real_lock()

        def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
            if timeout >= 0:
                lock.release()  # the holder passes it on (takes the waiter's entry, releases this turn) ...
                return False  # ... as the waiter's time runs out
            return self.inner.acquire(blocking, timeout)

        def release(self) -> None:
            self.inner.release()

    monkeypatch.setattr(light_lane.threading, "Lock", Racing)
    assert lock.acquire(timeout=1.0) and lock.waiting() == 0 and not lock.idle()  # ours
    monkeypatch.setattr(light_lane.threading, "Lock", real_lock)
    lock.release()
    assert lock.idle()
