"""The heavy lane: inside one worker process, the engine's heavy requests run one at a time, in arrival order.

A heavy request (:class:`api.heavy_workers.HeavyRule`: the batch, Monte Carlo, liquidation map and cascade
routes, and any other calculator request over the light lane's size or sent chunked) is CPU work that holds the
interpreter: two of them in one process take no less time than one after the other, but each holds its parsed
input and intermediate arrays at the same time. Side by side, eight of the most expensive accepted batches
(27 MB each) sent at once to a server of two heavy workers took 4.8-5.4 s each, five of them ran past the request
budget (503) and a heavy worker peaked at 1.19 GB. Taking turns, all eight were answered (2.2-6.9 s) and each
ran alone (≤ 2 s, ≤ 512 MB: the cost model of :mod:`api.config`) while the others waited.

The turn is taken by the route's view function, after everything that refuses a request before its work: the
request id, the body limit, the API key and both rate limits (a client over its limit gets its 429 at once, and
a request shed here still counts against it). Then:

* the body is read whole before the turn is asked for (:meth:`~api.heavy_workers.HeavyRule.read_body`), so a
  slow upload holds only its own thread; a body over the route's limit or cut short is answered (413/400) at
  once, without a turn. Parsing it (and a 400/422 for bad JSON or fields) is work, done in the turn;
* the bodies of the requests waiting add up to at most ``LIQRISK_HEAVY_QUEUE_BYTES`` (default 64 MiB: two of the 27 MB
  most expensive batches, so that a flood of them keeps a heavy worker within 512 MB; one request may always wait when
  nobody else does; 0 = one waits at most), so a flood of large bodies holds a bounded amount of memory while a queue
  of small requests is never cut short (a body a light worker handed on is counted from before it is read, as it
  arrives at once, unless it is to run next; a client's own upload to a worker answering by itself is counted once
  read, so a slow one holds no room).
  One that would go past it (known from its ``Content-Length`` before its body is read, when it has one), or that
  has not had its turn within ``LIQRISK_HEAVY_QUEUE_WAIT`` seconds (default 5;
  0 = no limit, but a light worker waits at most twice gunicorn's timeout for a heavy worker's answer), is
  answered 503 problem+json with ``Retry-After`` and its request id, without any work (counted in
  ``liqrisk_heavy_lane_busy_total``): a flood of heavy requests is shed, quickly and cheaply, instead of running
  every one of them late;
* a request that waited and whose client hung up meanwhile (:mod:`api.hangup`; for a handed-on request, the light
  worker closes its connection when its client hangs up) is not started at its turn: status 499, counted in
  ``liqrisk_client_gone_total``, so abandoned requests do not take the turns of those still waited for;
* a request that had its turn gets its whole time budget from then (:func:`core.budget.restart`).

With heavy workers (:mod:`api.heavy_workers`) the lane runs in each heavy worker; a light worker's own lane serves
only the heavy requests it answers itself (no heavy worker alive, or none took the connection in time). A backtest
or sweep submission (whose work runs on the job workers) takes a turn only when it uploads bars (a body over the
light lane's size, or chunked: checking and storing 250,000 bars of 16 columns is about 1 s and 270 MB), and only
until its job is queued (:func:`end_turn`): waiting for the job (``?wait``) is no work for this process. Four such
uploads at once took a heavy worker to 1.01 GB beside the lane; in it, 379 MB (two answered, two shed). Not in the
lane: everything the light lane takes. ``LIQRISK_HEAVY_LANE=0`` turns it off.
"""

from __future__ import annotations

import functools
import threading
import time

from flask import Flask, g, request

from core import budget

from . import hangup
from .errors import problem
from .heavy_workers import HANDED_OFF, HeavyRule
from .light_lane import FifoLock


class HeavyLane:
    """The turn of the heavy requests (``rule``) of one process: a :class:`~api.light_lane.FifoLock`, waited
    for at most ``wait`` seconds (None: no limit) by requests whose bodies add up to at most ``max_bytes`` (one
    request may always wait when nobody else does)."""

    def __init__(self, rule: HeavyRule, wait: float | None, max_bytes: int, retry_after: str) -> None:
        self.rule = rule
        self.wait = wait
        self.max_bytes = max_bytes
        self.retry_after = retry_after
        self.lock = FifoLock()
        self._count = threading.Lock()
        #: how many requests wait for their turn, and the bytes of their bodies
        self.waiting = self.waiting_bytes = 0
        #: a handed-on request being read that found the lane free and nobody waiting: it is to run next, so its
        #: body is not counted among the waiting ones (at most one at a time)
        self._next_reading = False

    def _room(self, size: int) -> bool:
        """A body of ``size`` bytes fits among the waiting ones (one may always wait); the caller holds
        ``_count``."""
        return not self.waiting or self.waiting_bytes + size <= self.max_bytes

    def _queue(self, size: int) -> bool:
        """Count a body of ``size`` bytes among the waiting ones, if it fits (False: the queue is full)."""
        with self._count:
            if not self._room(size):
                return False
            self.waiting += 1
            self.waiting_bytes += size
            return True

    def _reserve(self, size: int) -> int | None:
        """For a handed-on body of ``size`` bytes about to be read: None when it does not fit among the waiting
        ones (to be shed unread); else the bytes it now counts there, 0 when it found the lane free and nobody
        waiting or reading before it (it is to run next, as a request that took the free lane after its read)."""
        with self._count:
            if not self._next_reading and not self.waiting and self.lock.idle():
                self._next_reading = True
                return 0
            if not self._room(size):
                return None
            self.waiting += 1
            self.waiting_bytes += size
            return size

    def _fits(self, size: int) -> bool:
        """A body of ``size`` bytes would fit among the waiting ones now (what :meth:`_queue` will check)."""
        with self._count:
            return self._room(size)

    def _unqueue(self, size: int) -> None:
        with self._count:
            self.waiting -= 1
            self.waiting_bytes -= size

    def wrap(self, view):
        """``view`` run in turn for heavy requests (as it is for the others)."""

        @functools.wraps(view)
        def in_turn(*args, **kwargs):
            environ = request.environ
            if not self.rule.is_heavy(environ):
                return view(*args, **kwargs)  # light
            turn = self._turn(environ)
            if turn is None:
                return view(*args, **kwargs)  # refused (400/401/413) from what was read, without a turn
            if turn is not True:
                return turn  # not started: the 503 (or the 499 of a client that hung up while it waited)
            held = [True]

            def end() -> None:
                if held[0]:
                    held[0] = False
                    self.lock.release()

            try:
                g.liqrisk_heavy_turn = end  # for end_turn()
                budget.restart()
                return view(*args, **kwargs)
            finally:
                end()

        in_turn.liqrisk_heavy_lane = self  # type: ignore[attr-defined]
        return in_turn

    def _turn(self, environ: dict):
        """Read the heavy request's body and take the turn (True: held, to be released), or None (the app answers
        the request as it stands: 400/401/413), or the 503 response. Its body counts among the waiting ones
        until its turn: from before it is read when a light worker handed it on (``HANDED_OFF``: the sender
        holds it all, so it arrives at once) unless it is to run next (:meth:`_reserve`), else once it has been
        read (a client's own upload might trickle, and holding room in the queue for it would let slow uploads
        shut the others out). A body whose ``Content-Length`` would not fit among the waiting ones as they stand
        is shed at once, unread."""
        length = environ.get("CONTENT_LENGTH") or ""
        queued = 0  # bytes of this request among the waiting ones
        next_reading = False
        if length.isdigit():
            if self.rule.refuses(environ):
                return None  # the app answers it: 400/401/413
            if environ.get(HANDED_OFF):
                reserved = self._reserve(int(length))
                if reserved is None:
                    return self.busy(None)
                queued, next_reading = reserved, reserved == 0
            elif not self._fits(int(length)):
                return self.busy(None)
        try:
            body = self.rule.read_body(environ, checked=bool(length.isdigit()))
            if body is None:
                return None
            size = len(body)
            del body  # the app's wsgi.input holds it
            if self.lock.acquire(timeout=0):
                return True
            if not queued:  # not free: wait in the queue, if there is room in it
                if not self._queue(size):
                    return self.busy(None)
                queued = size
            started = time.monotonic()
            if self.lock.acquire(timeout=self.wait):
                try:
                    gone = hangup.gone(hangup.client_socket(environ))  # it hung up while it waited?
                except BaseException:
                    self.lock.release()
                    raise
                if gone:  # nobody would read the answer
                    self.lock.release()
                    return self.client_gone()
                return True
            return self.busy(time.monotonic() - started)
        finally:
            if queued:
                self._unqueue(queued)
            if next_reading:
                with self._count:
                    self._next_reading = False

    def client_gone(self):
        """The answer of a heavy request whose client hung up while it waited for its turn (:mod:`api.hangup`): not
        started, counted in ``liqrisk_client_gone_total`` and logged with status 499; nobody reads it."""
        from .observability import CLIENT_GONE

        CLIENT_GONE.labels(request.url_rule.rule).inc()
        rid = g.get("request_id", "")
        detail = f"the client closed the connection before this request's turn came (request id {rid})"
        return problem(hangup.STATUS, detail, {"body": ["not started: the client had gone"]},
                       title="Client Closed Request")  # fmt: skip

    def busy(self, waited: float | None):
        """The 503 problem of a heavy request not started: it waited ``waited`` seconds (None: the queue was
        full)."""
        from .observability import HEAVY_LANE_BUSY

        HEAVY_LANE_BUSY.labels(request.url_rule.rule).inc()
        why = "the queue of them is full" if waited is None else f"it waited {waited:.1f} s for its turn"
        detail = (
            f"this server is busy with other large requests: yours was not started, as {why} (request id "
            f"{g.get('request_id', '')}); retry after Retry-After seconds"
        )
        return problem(503, detail, {"body": ["not started: the server is busy with other large requests"]},
                       headers={"Retry-After": self.retry_after})  # fmt: skip


def end_turn() -> None:
    """Give the heavy lane's turn back before the view returns (nothing when the request holds none): a job
    submission does so once its job is queued, before it waits for the job (``?wait``), which is no work here."""
    end = g.pop("liqrisk_heavy_turn", None)
    if end is not None:
        end()


def install(app: Flask, rule: HeavyRule) -> HeavyLane | None:
    """The heavy lane of ``app`` (unless ``HEAVY_LANE`` is off): the view of every route of ``rule`` (the app's
    :class:`~api.heavy_workers.HeavyRule`) runs in turn for the requests that the rule finds heavy, except that a
    backtest or sweep submission takes a turn only when it uploads bars (a body over the light lane's size, or
    chunked), and only until its job is queued (:func:`end_turn`). Called before the rate limits decorate the
    views (:func:`api.limits.install`), so that they are checked first."""
    if not app.config["HEAVY_LANE"]:
        return None
    endpoints = {}
    for url_rule in app.url_map.iter_rules():
        if url_rule.rule in rule.paths:
            endpoints[url_rule.rule] = url_rule.endpoint
    jobs = frozenset(path for path, endpoint in endpoints.items() if endpoint.startswith("backtests."))
    wait = app.config["HEAVY_QUEUE_WAIT"] or None
    lane = HeavyLane(rule.only(frozenset(endpoints), small_light=jobs), wait, app.config["HEAVY_QUEUE_BYTES"],
                     str(app.config["RETRY_AFTER"]))  # fmt: skip
    for endpoint in endpoints.values():
        app.view_functions[endpoint] = lane.wrap(app.view_functions[endpoint])
    app.extensions["liqrisk_heavy_lane"] = lane
    return lane
