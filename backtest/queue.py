"""The job queue shared by the API and the workers: the Celery app on Redis and the job records.

Light on purpose (celery, redis and the standard library only, no pandas or vectorbt): the API process imports
it to submit and read jobs, :mod:`backtest.tasks` imports it to run them.

Celery (https://docs.celeryq.dev/en/stable/userguide/configuration.html) does the queueing:

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only after its task finished, and
  a task whose pool process died is requeued. When a whole worker (or its machine) dies, Redis keeps the message
  in its unacknowledged set and any other worker restores it ``visibility_timeout`` seconds after delivery
  (kombu's Redis transport, ``unacked_restore_interval``); ``task_time_limit`` stays below that timeout so a
  healthy task is never handed out twice.
* ``worker_prefetch_multiplier = 1``: a worker reserves only the tasks it can start, so the chunks of a sweep
  spread over every worker process on every machine.
* results in the Redis result backend for ``result_expires`` seconds (the results TTL).

The job record (a Redis hash ``liqrisk:job:<id>``, same TTL) holds what Celery does not: kind, the validated
request, the client, timestamps, progress, a cancelled flag, the number of starts of each task (a task started
more than ``max_attempts`` times is poisoned and fails instead of running again), and the error as a problem
object. Uploaded bars are stored next to it (``liqrisk:job:<id>:bars``) so a worker on any machine can run it.

Settings (environment): ``LIQRISK_BROKER_URL`` (else ``CELERY_BROKER_URL``; e.g. ``redis://127.0.0.1:6379/0``),
``LIQRISK_RESULT_TTL`` (seconds, default 86,400), ``LIQRISK_JOB_VISIBILITY_TIMEOUT`` (default 120),
``LIQRISK_JOB_TIME_LIMIT`` (hard limit per task in seconds, default 90), ``LIQRISK_JOB_MAX_ATTEMPTS`` (default 3).
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from functools import cache
from typing import Any

QUEUE = "liqrisk"
PREFIX = "liqrisk:"
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL = ("succeeded", "failed", "cancelled")
KINDS = ("backtest", "sweep")
TASK_BACKTEST = "liqrisk.backtest"
TASK_CHUNK = "liqrisk.sweep_chunk"
TASK_COMBINE = "liqrisk.sweep_combine"
#: upper bounds (seconds) of the job-duration histogram buckets
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def broker_url() -> str:
    """The Redis URL jobs go through; empty when jobs are not configured."""
    return os.environ.get("LIQRISK_BROKER_URL") or os.environ.get("CELERY_BROKER_URL") or ""


def settings() -> dict[str, int]:
    return {
        "result_ttl": _env_int("LIQRISK_RESULT_TTL", 86_400),
        "visibility_timeout": _env_int("LIQRISK_JOB_VISIBILITY_TIMEOUT", 120),
        "time_limit": _env_int("LIQRISK_JOB_TIME_LIMIT", 90),
        "max_attempts": _env_int("LIQRISK_JOB_MAX_ATTEMPTS", 3),
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@cache
def celery_app(url: str, result_ttl: int, visibility_timeout: int, time_limit: int):
    """One Celery app per broker URL and settings (cached: the API and each worker build it once)."""
    from celery import Celery

    app = Celery("liqrisk", broker=url, backend=url, set_as_current=False)
    transport = {
        "visibility_timeout": visibility_timeout,
        # look for abandoned messages every second (kombu's default sweep is 10 s x 10 calls)
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        task_time_limit=time_limit,
        task_soft_time_limit=max(1, time_limit - 2),
        result_expires=result_ttl,
        result_extended=False,
        result_chord_ordered=True,
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        timezone="UTC",
        enable_utc=True,
    )
    return app


def app_from_env():
    s = settings()
    return celery_app(broker_url(), s["result_ttl"], s["visibility_timeout"], s["time_limit"])


# Sets fields unless the job was cancelled (a worker finishing after a DELETE must not undo it).
_SET_UNLESS_CANCELLED = """
if redis.call('HGET', KEYS[1], 'status') == 'cancelled' then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""


# A task's start in one round trip: count the start, and unless that makes it poisoned or the job is cancelled,
# mark the job running (first start time kept) and the task as running until ARGV[6]; returns the start count and
# the job's fields (nil when the job is unknown or expired).
_START = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local n = redis.call('HINCRBY', KEYS[1], 'attempts:' .. ARGV[1], 1)
if n <= tonumber(ARGV[7]) and redis.call('HGET', KEYS[1], 'status') ~= 'cancelled' then
  if redis.call('HEXISTS', KEYS[1], 'started_ts') == 0 then
    redis.call('HSET', KEYS[1], 'started_at', ARGV[2], 'started_ts', ARGV[3])
  end
  redis.call('HSET', KEYS[1], 'status', 'running', 'worker', ARGV[4], 'pid', ARGV[5])
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
end
return {n, redis.call('HGETALL', KEYS[1])}
"""

# A finished sweep chunk in one round trip: store its part (KEYS[3]), add its index to the done set (a chunk run
# twice counts once), set the progress unless the job is cancelled and take the task off the running set.
_CHUNK_DONE = """
redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[3])
local done = redis.call('SCARD', KEYS[2])
redis.call('ZREM', KEYS[4], ARGV[5])
local progress = string.format('%.4f', 0.99 * done / math.max(tonumber(ARGV[2]), 1))
if redis.call('HGET', KEYS[1], 'status') ~= 'cancelled' then redis.call('HSET', KEYS[1], 'progress', progress) end
return progress
"""


class JobStore:
    """Job records in Redis. ``client`` is a ``redis.Redis``; every key expires ``ttl`` seconds after the job's
    last change."""

    def __init__(self, client, ttl: int):
        self.r = client
        self.ttl = ttl
        self._set_unless_cancelled = client.register_script(_SET_UNLESS_CANCELLED)
        self._start = client.register_script(_START)
        self._chunk_done = client.register_script(_CHUNK_DONE)

    @classmethod
    def from_url(cls, url: str, ttl: int) -> JobStore:
        import redis

        return cls(redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2), ttl)

    @staticmethod
    def key(job_id: str) -> str:
        return f"{PREFIX}job:{job_id}"

    def create(self, job_id: str, kind: str, request: dict[str, Any], client: str, bars: bytes | None = None) -> dict:
        fields = {
            "id": job_id,
            "kind": kind,
            "status": "queued",
            "progress": "0",
            "created_at": now_iso(),
            "client": client,
            "request": json.dumps(request),
        }
        pipe = self.r.pipeline()
        pipe.hset(self.key(job_id), mapping=fields)
        pipe.expire(self.key(job_id), self.ttl)
        if bars is not None:
            pipe.set(self.key(job_id) + ":bars", bars, ex=self.ttl)
        pipe.execute()
        return fields

    def get(self, job_id: str) -> dict[str, str] | None:
        raw = self.r.hgetall(self.key(job_id))
        if not raw:
            return None
        return {k.decode(): v.decode() for k, v in raw.items()}

    def bars(self, job_id: str) -> bytes | None:
        return self.r.get(self.key(job_id) + ":bars")

    def update(self, job_id: str, **fields: Any) -> bool:
        """Set fields unless the job is cancelled; False when it is."""
        args: list[str] = []
        for k, v in fields.items():
            args += [k, v if isinstance(v, str) else json.dumps(v)]
        return bool(self._set_unless_cancelled(keys=[self.key(job_id)], args=args))

    def touch(self, job_id: str) -> None:
        pipe = self.r.pipeline()
        for suffix in ("", ":bars", ":done"):
            pipe.expire(self.key(job_id) + suffix, self.ttl)
        pipe.execute()

    def cancel(self, job_id: str) -> None:
        self.r.hset(self.key(job_id), mapping={"status": "cancelled", "finished_at": now_iso()})

    def is_cancelled(self, job_id: str) -> bool:
        return self.r.hget(self.key(job_id), "status") == b"cancelled"

    def start(self, job_id: str, task_id: str, worker: str, pid: int, seconds: float, max_attempts: int):
        """Count one more start of ``task_id`` (a requeued task starts again) and, unless it has now started more
        than ``max_attempts`` times or the job is cancelled, mark the job running on ``worker`` and the task
        running for at most ``seconds``; returns (starts, the job's fields), or None for an unknown job."""
        got = self._start(
            keys=[self.key(job_id), PREFIX + "running"],
            args=[task_id, now_iso(), repr(time.time()), worker, str(pid), time.time() + seconds, max_attempts],
        )
        if got is None:
            return None
        flat = [v.decode() for v in got[1]]
        return int(got[0]), dict(zip(flat[::2], flat[1::2], strict=True))

    def part_key(self, job_id: str, index: int) -> str:
        return f"{self.key(job_id)}:part:{index}"

    def chunk_done(self, job_id: str, index: int, total: int, part: bytes = b"", task_id: str = "") -> float:
        """Record a finished sweep chunk and store its part of the table (idempotent: a chunk run twice counts
        once and stores the same part); the task leaves the running set. Returns the progress."""
        keys = [self.key(job_id), self.key(job_id) + ":done", self.part_key(job_id, index), PREFIX + "running"]
        return float(self._chunk_done(keys=keys, args=[index, total, self.ttl, part, task_id]))

    def parts(self, job_id: str, count: int, keep: int) -> list[bytes | None]:
        """The stored parts of chunks 0..count-1 (None where missing), kept ``keep`` more seconds (a re-run of
        the combining task still finds them) instead of the results TTL."""
        out: list[bytes | None] = []
        for lo in range(0, count, 64):
            keys = [self.part_key(job_id, i) for i in range(lo, min(count, lo + 64))]
            pipe = self.r.pipeline()
            pipe.mget(keys)
            for k in keys:
                pipe.expire(k, keep)
            out += pipe.execute()[0]
        return out

    # --- what /metrics reads -------------------------------------------------------------------------------
    def running(self, task_id: str, seconds: float) -> None:
        self.r.zadd(PREFIX + "running", {task_id: time.time() + seconds})

    def stopped(self, task_id: str) -> None:
        self.r.zrem(PREFIX + "running", task_id)

    def record(self, kind: str, outcome: str, seconds: float | None = None) -> None:
        """Count a finished job (``outcome`` succeeded / failed / cancelled) and its run time."""
        pipe = self.r.pipeline()
        pipe.hincrby(PREFIX + "stats", f"{outcome}:{kind}", 1)
        if seconds is not None:
            for le in DURATION_BUCKETS:
                if seconds <= le:
                    pipe.hincrby(PREFIX + "stats", f"bucket:{kind}:{le}", 1)
            pipe.hincrby(PREFIX + "stats", f"bucket:{kind}:+Inf", 1)
            pipe.hincrbyfloat(PREFIX + "stats", f"sum:{kind}", seconds)
        pipe.execute()

    def stats(self) -> dict[str, float]:
        return {k.decode(): float(v) for k, v in self.r.hgetall(PREFIX + "stats").items()}

    def running_count(self) -> int:
        key = PREFIX + "running"
        self.r.zremrangebyscore(key, "-inf", time.time())
        return int(self.r.zcard(key))

    def queue_depth(self) -> int:
        return int(self.r.llen(QUEUE))


def enqueue(
    app,
    store: JobStore,
    job_id: str,
    kind: str,
    request: dict[str, Any],
    client: str,
    bars: bytes | None = None,
    chunks: list[dict[str, list]] | None = None,
) -> None:
    """Create the job record and send its tasks: one backtest task, or a chord of sweep chunk tasks (ids
    ``<job>.<i>``) whose combining task has the job's id."""
    store.create(job_id, kind, request, client, bars)
    if kind == "backtest":
        app.send_task(TASK_BACKTEST, args=[job_id], task_id=job_id)
        return
    from celery import chord

    chunks = chunks or []
    store.update(job_id, chunks=str(len(chunks)))
    header = [
        app.signature(TASK_CHUNK, args=[job_id, i, len(chunks), grid]).set(task_id=f"{job_id}.{i}")
        for i, grid in enumerate(chunks)
    ]
    chord(header, app=app)(app.signature(TASK_COMBINE, kwargs={"job_id": job_id}).set(task_id=job_id))


def job_view(app, store: JobStore, job_id: str) -> dict[str, Any] | None:
    """The job as the API shows it, or None when unknown or expired."""
    rec = store.get(job_id)
    if rec is None:
        return None
    status = rec.get("status", "queued")
    result = error = None
    finished_at = rec.get("finished_at")
    if status not in ("cancelled", "failed"):
        meta = app.backend.get_task_meta(job_id)
        state = meta.get("status")
        if state == "SUCCESS":
            status, result = "succeeded", meta.get("result")
            done = meta.get("date_done")
            finished_at = finished_at or (done.isoformat() if hasattr(done, "isoformat") else done)
        elif state == "FAILURE":
            status = "failed"
        elif status == "succeeded":  # the record is written just before the result is stored
            status = "running"
    if status == "failed":
        error = json.loads(rec["error"]) if rec.get("error") else problem(500, "the job failed")
    progress = float(rec.get("progress", 0) or 0)
    out: dict[str, Any] = {
        "id": job_id,
        "kind": rec.get("kind", "backtest"),
        "status": status,
        "progress": 1.0 if status == "succeeded" else min(max(progress, 0.0), 1.0),
        "created_at": rec.get("created_at"),
        "started_at": rec.get("started_at"),
        "finished_at": finished_at if status in FINAL else None,
    }
    if status == "succeeded":
        out["result"] = result
    if error is not None:
        out["error"] = error
    return out


class JobFailed(Exception):
    """Raised by a task whose job failed; ``args[0]`` is the problem object (also in the job record)."""


def problem(status: int, detail: str, errors: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """An RFC 9457 problem object, as the API's error responses carry."""
    titles = {404: "Not Found", 422: "Unprocessable Content", 500: "Internal Server Error"}
    return {
        "type": f"https://liqrisk.dev/problems/{status}",
        "title": titles.get(status, "Job Failed"),
        "status": status,
        "detail": detail,
        "errors": errors or {},
    }


def split_grid(grid: dict[str, list], chunk: int) -> list[dict[str, list]]:
    """Split a grid (field → values; rows are their product, the first field varying slowest) into sub-grids of
    at most about ``chunk`` rows whose rows, concatenated in order, are the full grid's rows in order.

    The first fields are fixed one value at a time and one field's values are cut into contiguous runs; each
    sub-grid is itself a product, so :func:`backtest.run.sweep` runs it as it is.
    """
    keys = list(grid)
    sizes = [len(grid[k]) for k in keys]
    # the first field k whose later fields' product fits in a chunk
    k, rest = 0, 1
    for k in range(len(keys) - 1, -1, -1):
        if rest * sizes[k] > chunk:
            break
        rest *= sizes[k]
    else:
        return [dict(grid)]
    step = max(1, chunk // rest)
    out: list[dict[str, list]] = []

    def walk(i: int, fixed: dict[str, list]) -> None:
        if i == k:
            values = grid[keys[k]]
            for s in range(0, len(values), step):
                out.append({**fixed, keys[k]: values[s : s + step], **{x: grid[x] for x in keys[k + 1 :]}})
            return
        for v in grid[keys[i]]:
            walk(i + 1, {**fixed, keys[i]: [v]})

    walk(0, {})
    return out


#: a sweep of fewer chunks than this has its last chunk cut in pieces (see :func:`sweep_chunks`)
TAIL_SPLIT_BELOW = 32
#: pieces the last chunk is cut in, and the fewest rows of one piece
TAIL_PIECES, TAIL_MIN_ROWS = 4, 16


def sweep_chunks(grid: dict[str, list], chunk: int) -> list[dict[str, list]]:
    """The chunk tasks of a sweep: :func:`split_grid`'s sub-grids in order, the last one cut in about
    ``TAIL_PIECES`` smaller ones when the sweep has few chunks (fewer than ``TAIL_SPLIT_BELOW``).

    The queue hands chunks out in order, so with few chunks the last wave decides when the sweep ends: 5 equal
    chunks on 2 worker processes take 3 chunk-times on one of them. With the last chunk in quarters they take
    about 2.5 (the pieces spread over whichever processes are free) for a few more task starts. Pieces keep at
    least ``TAIL_MIN_ROWS`` rows, so a small chunk is left whole; many chunks already end in a short wave."""
    out = split_grid(grid, chunk)
    rows = 1
    for values in out[-1].values():
        rows *= len(values)
    if len(out) < TAIL_SPLIT_BELOW and rows >= 2 * TAIL_MIN_ROWS:
        out[-1:] = split_grid(out[-1], max(TAIL_MIN_ROWS, -(-rows // TAIL_PIECES)))
    return out
