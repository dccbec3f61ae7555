"""The heavy lane: inside one worker process, the engine's heavy requests run one at a time, in arrival order.

A heavy request (:class:`api.heavy_workers.HeavyRule`: the batch, Monte Carlo, liquidation map and cascade
routes, and any calculator request over the light lane's size or sent chunked) is CPU work that holds the
interpreter: two of them in one process take no less time than one after the other, but each holds its parsed
input and intermediate arrays at the same time. Run side by side, eight of the most expensive accepted batches
(27 MB each) sent at once to a server of two heavy workers took 4.8-5.4 s each; five of them ran past the
request budget (503) and a heavy worker peaked at 1.19 GB. Taking turns, each runs alone (≤ 2 s, ≤ 512 MB: the
cost model of :mod:`api.config`) while the others wait, holding only their bodies.

* The body is read before the turn is asked for (:meth:`~api.heavy_workers.HeavyRule.read_body`), so a slow
  upload holds only its own thread; a request refused on its headers (a ``Content-Length`` over the route's
  limit, no valid API key) or whose body is over the limit or cut short is answered at once, without a turn.
* A request waits at most ``LIQRISK_HEAVY_QUEUE_WAIT`` seconds (default 5) for its turn. One that does not get
  it in time is answered 503 problem+json with ``Retry-After`` and its request id, before any work is done
  (counted in ``liqrisk_heavy_lane_busy_total``): a flood of heavy requests is shed, quickly and cheaply,
  instead of running every one of them late.
* Not in the lane: the backtest and sweep routes (their work runs on the job workers; a request that waits for
  its job with ``?wait`` does no work in this process), and everything the light lane takes.

With heavy workers (:mod:`api.heavy_workers`) the lane runs in each heavy worker; a light worker's lane serves
only the heavy requests it answers itself (no heavy worker alive). ``LIQRISK_HEAVY_LANE=0`` turns it off.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, g, request

from .errors import problem
from .heavy_workers import HeavyRule, heavy_paths
from .light_lane import FifoLock

#: environ key set when a heavy request did not get its turn in time (the app answers it 503)
BUSY = "liqrisk.heavy_lane_busy"


class HeavyLane:
    """WSGI middleware: heavy requests (``rule``) read their body, then run ``app`` and collect its answer
    holding one :class:`~api.light_lane.FifoLock` of the process, waiting at most ``wait`` seconds for it; all
    other requests go straight to ``app``."""

    def __init__(self, app, rule: HeavyRule, wait: float) -> None:
        self.app = app
        self.rule = rule
        self.wait = wait
        self.lane = FifoLock()

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        if not self.rule.is_heavy(environ) or self.rule.read_body(environ) is None:
            return self.app(environ, start_response)  # not heavy, or answered as it stands (400/401/413)
        if not self.lane.acquire(timeout=self.wait):
            environ[BUSY] = self.wait
            return self.app(environ, start_response)  # the 503 (no work done: see install)
        try:
            answer = self.app(environ, start_response)
            try:
                return list(answer)
            finally:
                if hasattr(answer, "close"):
                    answer.close()
        finally:
            self.lane.release()


def install(app: Flask, light_paths: frozenset[str]) -> None:
    """Wrap ``app.wsgi_app`` in the heavy lane (unless ``HEAVY_LANE`` is off) for the heavy requests of ``app``
    that the light lane (``light_paths``) does not take, and answer a request that did not get its turn with the
    503 problem. Called after the request id, limits and key checks are installed, so the 503 has the id and a
    request without a valid key still gets its 401."""
    if not app.config["HEAVY_LANE"]:
        return
    jobs = {rule.rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("backtests.")}
    rule = HeavyRule.of(app, heavy_paths(app) - jobs, light_paths)
    app.wsgi_app = HeavyLane(app.wsgi_app, rule, app.config["HEAVY_QUEUE_WAIT"])  # type: ignore[method-assign]
    retry_after = str(app.config["RETRY_AFTER"])

    @app.before_request
    def _busy():
        waited = request.environ.get(BUSY)
        if waited is None:
            return None
        from .observability import HEAVY_LANE_BUSY

        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        HEAVY_LANE_BUSY.labels(route).inc()
        detail = (
            f"this server is busy with other large requests: yours waited {waited:g} s for its turn and was not "
            f"started (request id {g.get('request_id', '')}); retry after Retry-After seconds"
        )
        return problem(503, detail, {"body": ["not started: the server is busy with other large requests"]},
                       headers={"Retry-After": retry_after})  # fmt: skip
