"""Backtest and sweep jobs seen from the API: submit, read, cancel, wait, readiness and metrics.

The API process only talks to Redis (through Celery's client and :mod:`backtest.queue`); the work runs in
``liqrisk worker`` processes, so nothing here imports pandas, vectorbt or the simulator.

* ``Idempotency-Key``: a repeated submission with the same key (per client, for the results TTL) returns the job
  the first one created; the same key with a different body is a 422.
* A client holds at most ``JOB_MAX_QUEUED`` unfinished jobs (429 beyond, with ``Retry-After``).
* ``?wait=N`` (seconds, at most ``JOB_MAX_WAIT``) waits for the job to finish, woken by the result backend's
  publication of its state (no polling interval added to the answer).
* ``DELETE`` marks the job cancelled (the record wins over any later worker write) and revokes its tasks with
  ``terminate=True`` (SIGKILL to the pool process running it): Celery's main process handles the control message
  at once, so a running job stops well within 2 s and the pool process is replaced by a fresh (warm) fork.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from typing import Any

import orjson
from flask import Flask, current_app

from backtest import queue

from .errors import ApiError

FINAL = queue.FINAL


class Jobs:
    """What the app needs of the queue; built once per app (``app.extensions["liqrisk_jobs"]``)."""

    def __init__(self, url: str, ttl: int):
        s = queue.settings()
        self.url, self.ttl = url, ttl
        self.celery = queue.celery_app(url, ttl, s["visibility_timeout"], s["time_limit"])
        self.store = queue.JobStore.from_url(url, ttl)

    # --- submit --------------------------------------------------------------------------------------------
    def submit(
        self,
        kind: str,
        request: dict[str, Any],
        client: str,
        bars: bytes | None = None,
        chunks: list[dict[str, list]] | None = None,
        idempotency_key: str | None = None,
        max_queued: int = 20,
    ) -> tuple[dict[str, Any], bool]:
        """Create the job and send its tasks; returns (job view, created). ``created`` is False for a replay."""
        r = self.store.r
        job_id = uuid.uuid4().hex
        fingerprint = hashlib.sha256(orjson.dumps([kind, request]) + (bars or b"")).hexdigest()
        idem = None
        if idempotency_key:
            idem = queue.PREFIX + "idem:" + hashlib.sha256(f"{client}\0{idempotency_key}".encode()).hexdigest()
            if not r.set(idem, f"{job_id} {fingerprint}", nx=True, ex=self.ttl):
                return self._replay(idem, fingerprint), False
        active = queue.PREFIX + "active:" + hashlib.sha256(client.encode()).hexdigest()[:32]
        held = [m.decode() for m in r.zrange(active, 0, -1)]
        unfinished = [j for j in held if (v := self.view(j)) is not None and v["status"] not in FINAL]
        gone = set(held) - set(unfinished)
        if gone:
            r.zrem(active, *gone)
        if len(unfinished) >= max_queued:
            if idem:
                r.delete(idem)
            raise ApiError(
                429,
                f"this client already has {len(unfinished)} unfinished jobs; at most {max_queued}",
                {"client": [f"at most {max_queued} queued or running jobs; wait for one to finish or cancel one"]},
            )
        pipe = r.pipeline()
        pipe.zadd(active, {job_id: time.time()})
        pipe.expire(active, self.ttl)
        pipe.execute()
        queue.enqueue(self.celery, self.store, job_id, kind, request, client, bars, chunks)
        return self.view(job_id) or {}, True

    def _replay(self, idem: str, fingerprint: str) -> dict[str, Any]:
        raw = self.store.r.get(idem)
        job_id, _, seen = (raw or b"").decode().partition(" ")
        if seen and seen != fingerprint:
            raise ApiError(
                422,
                "this Idempotency-Key was used for a different request",
                {"Idempotency-Key": ["already used with another body; use a new key"]},
            )
        for _ in range(50):  # the first submission may still be creating its record
            job = self.view(job_id)
            if job is not None:
                return job
            time.sleep(0.02)
        raise ApiError(404, "the job this Idempotency-Key created has expired", {"Idempotency-Key": ["expired"]})

    # --- read ----------------------------------------------------------------------------------------------
    def view(self, job_id: str) -> dict[str, Any] | None:
        """The job as the API shows it, or None when unknown or expired."""
        return queue.job_view(self.celery, self.store, job_id)

    def wait(self, job_id: str, seconds: float) -> dict[str, Any] | None:
        """The job once it has finished, or as it is after ``seconds``. Celery's Redis result backend publishes
        each state it stores on the channel named by the result's key (``RedisBackend.set``), so the wait
        subscribes to the job's and reads the job again when its state changes, at once and without polling;
        it also reads it every 0.25 s (a cancel changes only the job record)."""
        deadline = time.monotonic() + seconds
        pubsub = self.store.r.pubsub()
        try:
            pubsub.subscribe(self.celery.backend.get_key_for_task(job_id))
            pubsub.get_message(timeout=1.0)  # the subscription's confirmation: from here on no state is missed
            job = self.view(job_id)
            while job is not None and job["status"] not in FINAL and (left := deadline - time.monotonic()) > 0:
                pubsub.get_message(timeout=min(0.25, left))
                job = self.view(job_id)
        finally:
            pubsub.close()
        return job

    # --- cancel --------------------------------------------------------------------------------------------
    def cancel(self, job_id: str) -> dict[str, Any] | None:
        job = self.view(job_id)
        if job is None or job["status"] in queue.FINAL:
            return job
        rec = self.store.get(job_id) or {}
        self.store.cancel(job_id)
        ids = [job_id] + [f"{job_id}.{i}" for i in range(int(rec.get("chunks", 0) or 0))]
        self.celery.control.revoke(ids, terminate=True, signal="SIGKILL")
        for task_id in ids:
            self.store.stopped(task_id)
        self.store.record(job["kind"], "cancelled")
        return self.view(job_id)

    # --- health and metrics --------------------------------------------------------------------------------
    def broker_ok(self) -> bool:
        try:
            return bool(self.store.r.ping())
        except Exception:  # any failure to reach Redis means not ready
            return False

    def live_workers(self, timeout: float = 1.0) -> int:
        try:
            return len(self.celery.control.ping(timeout=timeout, limit=1) or [])
        except Exception:  # the broker is down: no worker can be reached either
            return 0

    def metrics_text(self) -> bytes:
        """Prometheus text for the queue, read from Redis at scrape time (the workers may be on other
        machines): queue depth, running jobs, finished jobs by kind and outcome, job durations."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        store = self.store

        class Collector:
            def collect(self):
                try:
                    depth, running, stats = store.queue_depth(), store.running_count(), store.stats()
                except Exception:  # broker down: report nothing rather than fail the scrape
                    return
                yield GaugeMetricFamily("liqrisk_jobs_queued", "Tasks waiting in the queue", value=depth)
                yield GaugeMetricFamily("liqrisk_jobs_running", "Tasks running in workers", value=running)
                done = CounterMetricFamily("liqrisk_jobs_finished", "Finished jobs", labels=["kind", "outcome"])
                for kind in queue.KINDS:
                    for outcome in ("succeeded", "failed", "cancelled"):
                        done.add_metric([kind, outcome], stats.get(f"{outcome}:{kind}", 0.0))
                yield done
                hist = HistogramMetricFamily("liqrisk_job_duration_seconds", "Run time of finished jobs",
                                             labels=["kind"])  # fmt: skip
                for kind in queue.KINDS:
                    buckets = [(str(le), stats.get(f"bucket:{kind}:{le}", 0.0)) for le in queue.DURATION_BUCKETS]
                    buckets.append(("+Inf", stats.get(f"bucket:{kind}:+Inf", 0.0)))
                    hist.add_metric([kind], buckets, sum_value=stats.get(f"sum:{kind}", 0.0))
                yield hist

        registry = CollectorRegistry()
        registry.register(Collector())
        return generate_latest(registry)


def jobs(app: Flask | None = None) -> Jobs | None:
    """The app's job queue, or None when ``BROKER_URL`` is not set."""
    app = app or current_app
    url = app.config.get("BROKER_URL")
    if not url:
        return None
    got = app.extensions.get("liqrisk_jobs")
    if got is None:
        got = app.extensions["liqrisk_jobs"] = Jobs(url, app.config["JOB_RESULT_TTL"])
    return got


def require() -> Jobs:
    got = jobs()
    if got is None:
        raise ApiError(
            503,
            "backtests and sweeps run as jobs on a queue, and none is configured",
            {"broker": ["set LIQRISK_BROKER_URL to a Redis URL and start `liqrisk worker`"]},
        )
    return got


def wait_seconds(raw: str | None) -> float:
    """The ``?wait=`` query value in seconds (0 when absent), at most ``JOB_MAX_WAIT``."""
    if raw is None:
        return 0.0
    limit = current_app.config["JOB_MAX_WAIT"]
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= limit:
        raise ApiError(422, f"wait: seconds between 0 and {limit}", {"wait": [f"a number from 0 to {limit}"]})
    return value
