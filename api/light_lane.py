"""The light lane: inside one worker process, short calculator requests run one at a time, in arrival order.

A gunicorn worker serves each connection on its own thread (:mod:`api.http_worker`), and Python runs one thread
at a time: when eight single-position requests are in flight in one process they take turns on the interpreter
lock every millisecond (``sys.setswitchinterval``), and which waiting thread gets it next is up to the operating
system. Every request then finishes late, and an unlucky one very late: p99 ≈ 3 × p50 was measured at 32
connections. Served one after the other instead (first come, first served), the same requests finish in the
same total time, but each waits only for those ahead of it: p99 fell from 64-65 ms to 30-39 ms, ``/healthz``'s
from 52-58 ms to 23-24 ms, at the same throughput (``make loadtest``, 2 cores).

What takes the lane (:func:`lane_paths`): ``/healthz`` and the single-object calculator routes (liquidation
price, portfolio, PnL and the other calculators, risk and market scores), when the body is at most
``LIQRISK_LIGHT_LANE_MAX_BODY`` bytes (default 64 KiB) with a Content-Length. The body is read before the lane
is taken, so a slow upload holds only its own thread. Everything else — the heavy routes of
:data:`api.limits.HEAVY` (batch, Monte Carlo, map, cascade, jobs), larger or chunked bodies, the job and
documentation routes — runs beside the lane as before, sharing the interpreter with it, so a long request never
waits for the queue of short ones, nor they for it. The lane is off (``LIQRISK_LIGHT_LANE=0``, or
automatically when rate-limit counters live in a shared store, whose network round trip would then be taken
inside the lane).
"""

from __future__ import annotations

import io
import threading
from collections import deque
from collections.abc import Iterable

from flask import Flask

from .limits import HEAVY

#: environ key set by the fast path (:mod:`api.http_worker`) when it has taken the lane itself for a request
LANE_HELD = "liqrisk.light_lane_held"
#: blueprints whose static POST routes are single-object calculators (the lane's candidates)
CALCULATOR_BLUEPRINTS = ("liquidation", "calculators", "risk", "market")


class FifoLock:
    """A lock handed to its waiters in the order they asked (``threading.Lock`` gives no order): a releasing
    holder passes it directly to the oldest waiter.

    A thread that must not wait can leave work instead (:meth:`acquire_or_leave`); it takes its place in the same
    queue as the waiting threads. When the lock's turn comes to left work, the lock is handed to a thread of its
    own (:meth:`drain`, started with the first work left) that runs ``run_left(item)`` for each item in turn until
    the queue's head is a waiting thread (it gets the lock) or the queue is empty (the lock is free). So work and
    waiters are served first come, first served, one thread woken per run of items rather than per item, and the
    drain never waits behind anything that waits for the lock."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._queue: deque[tuple[bool, object]] = deque()  # (is a waiter, its lock or the item left)
        self._held = False
        self._wake = threading.Semaphore(0)
        self._drain_thread: threading.Thread | None = None
        #: runs an item left by :meth:`acquire_or_leave` (set by its user; what it raises is ignored)
        self.run_left = None

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait for the lock in turn (at most ``timeout`` seconds when given); True once it is ours, False when
        the time ran out first (the place in the queue is given up)."""
        with self._guard:
            if not self._held and not self._queue:
                self._held = True
                return True
            turn = threading.Lock()
            turn.acquire()
            entry = (True, turn)
            self._queue.append(entry)
        if turn.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            return True  # released by the holder before us: the lock is ours from then on
        with self._guard:
            for i, queued in enumerate(self._queue):
                if queued is entry:
                    del self._queue[i]
                    return False
        # handed over as the time ran out (the holder took the entry out and released ``turn``): ours after all
        turn.acquire()
        return True

    def acquire_or_leave(self, item) -> bool:
        """Take the lock if nobody holds it and nobody waits for it (True); else leave ``item`` in the queue, to
        be run by :meth:`drain` in its turn (False). Never waits."""
        with self._guard:
            if not self._held and not self._queue:
                self._held = True
                return True
            self._queue.append((False, item))
            if self._drain_thread is None:
                self._drain_thread = threading.Thread(target=self._drain_loop, name="liqrisk-lane-drain", daemon=True)
                self._drain_thread.start()
            return False

    def release(self) -> None:
        with self._guard:
            self._pass_on()

    def _pass_on(self) -> None:
        """With the guard held: hand the lock to the queue's head (a waiter, or the drain), or free it."""
        if not self._queue:
            self._held = False
        elif self._queue[0][0]:
            self._queue.popleft()[1].release()
        else:
            self._wake.release()  # still held, now on behalf of the drain

    def drain(self) -> None:
        """Holding the lock (handed over for left work): run the items at the queue's head, then pass it on."""
        while True:
            with self._guard:
                if not self._queue or self._queue[0][0]:
                    self._pass_on()
                    return
                item = self._queue.popleft()[1]
            try:
                self.run_left(item)
            except Exception:  # noqa: BLE001 - the lock must pass on whatever the work does
                pass

    def _drain_loop(self) -> None:
        while True:
            self._wake.acquire()
            self.drain()

    def waiting(self) -> int:
        """How many threads wait for the lock."""
        return sum(1 for is_waiter, _ in self._queue if is_waiter)

    def idle(self) -> bool:
        """Nobody holds the lock, nobody waits for it and no work is left on it."""
        return not self._held and not self._queue

    __enter__ = acquire

    def __exit__(self, *exc) -> None:
        self.release()


def lane_paths(app: Flask) -> frozenset[str]:
    """``/healthz`` and every static POST route of :data:`CALCULATOR_BLUEPRINTS` not in :data:`HEAVY`."""
    paths = {"/healthz"}
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.split(".", 1)[0]
        if blueprint in CALCULATOR_BLUEPRINTS and "POST" in rule.methods and not rule.arguments:
            if rule.endpoint not in HEAVY:
                paths.add(rule.rule)
    return frozenset(paths)


def body_size(environ: dict, paths: frozenset[str], max_body: int) -> int | None:
    """The body's length in bytes if the lane takes this request (a path of ``paths``, not chunked, a
    Content-Length of at most ``max_body`` bytes or none); None if it runs beside the lane. The one rule of what
    is light: :class:`LightLane` takes these, :class:`api.heavy_workers.HeavyProxy` passes on the others."""
    if environ.get("PATH_INFO") not in paths or environ.get("HTTP_TRANSFER_ENCODING"):
        return None
    length = environ.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > max_body:
        return None
    return int(length)


def lane_wanted(config) -> bool:
    """The lane's setting, off when rate-limit counters are kept in a shared store (a network round trip on
    every request)."""
    shared_store = config["RATE_LIMIT_ENABLED"] and not str(config["RATE_LIMIT_STORAGE"]).startswith("memory://")
    return bool(config["LIGHT_LANE"]) and not shared_store


class LightLane:
    """WSGI middleware: requests the lane takes (:func:`body_size`) read their body, then run ``app`` and collect
    its answer holding one :class:`FifoLock` of the process; all other requests go straight to ``app``."""

    def __init__(self, app, paths: frozenset[str], max_body: int) -> None:
        self.app = app
        self.paths = paths
        self.max_body = max_body
        self.lane = FifoLock()

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        if environ.get(LANE_HELD):  # the fast path holds the lane for this request, its body read
            return self.app(environ, start_response)
        size = body_size(environ, self.paths, self.max_body)
        if size is None:
            return self.app(environ, start_response)
        if size:
            try:
                body = environ["wsgi.input"].read(size)
            except OSError:  # the client went away mid-body: the app answers the short body as it would
                body = b""
            environ["wsgi.input"] = io.BytesIO(body)
        with self.lane:
            answer = self.app(environ, start_response)
            try:
                return list(answer)
            finally:
                if hasattr(answer, "close"):
                    answer.close()
