"""Faults with a real redis-server and real worker processes on loopback: a worker SIGKILLed mid-job, the API
restarted, Redis restarted, a poisoned job, a cancelled job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
from jobkit import ROOT, RedisServer, Worker, free_port, make_app, wait_for, worker_env

from backtest import queue


def _running(client, job_id: str, timeout: float = 60) -> dict[str, str]:
    """The job record once a worker has started the job."""
    store = queue.JobStore.from_url(client.application.config["BROKER_URL"], 60)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rec = store.get(job_id) or {}
        if rec.get("status") == "running" and rec.get("pid"):
            return rec
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never started: {store.get(job_id)}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a killed child stays a zombie until its parent reaps it
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_a_worker_killed_mid_job_is_replaced_and_the_result_is_the_same(tmp_path):
    """Two workers; SIGKILL the whole worker (main and pool process) running the job. Redis still holds the
    unacknowledged message; the other worker restores it after the visibility timeout and runs it."""
    server = RedisServer(tmp_path).start()
    env = worker_env(server.url, tmp_path, LIQRISK_JOB_VISIBILITY_TIMEOUT="20", LIQRISK_JOB_TIME_LIMIT="18")
    app = make_app(server.url, tmp_path, BACKTEST_MAX_BARS=1_000_000)
    workers = [Worker(n, env, tmp_path / f"{n}.log") for n in ("a", "b")]
    try:
        for w in workers:
            w.wait_ready(app)
        client = app.test_client()
        body = {"dataset": {"name": "synthetic", "bars": 60000, "seed": 4}, "include_trades": False}
        job_id = client.post("/v1/backtests", json=body).json["id"]
        rec = _running(client, job_id)
        victim = next(w for w in workers if w.name == rec["worker"])
        victim.kill()
        job = wait_for(client, job_id, timeout=90)
        assert job["status"] == "succeeded", job
        survivor = next(w for w in workers if w is not victim)
        store = queue.JobStore.from_url(server.url, 60)
        assert store.get(job_id)["worker"] == survivor.name
        assert int(store.get(job_id)[f"attempts:{job_id}"]) == 2
        again = client.post("/v1/backtests?wait=30", json=body).json
        assert again["status"] == "succeeded" and again["result"]["metrics"] == job["result"]["metrics"]
    finally:
        for w in workers:
            w.kill()
        server.kill()


def test_cancel_stops_a_running_job_within_2_s_and_frees_the_worker(cluster):
    client = make_app(cluster[0].url, cluster[3], BACKTEST_MAX_BARS=1_000_000).test_client()
    long_job = {"dataset": {"name": "synthetic", "bars": 500_000, "seed": 9}}  # many seconds of work
    job_id = client.post("/v1/backtests", json=long_job).json["id"]
    pid = int(_running(client, job_id)["pid"])
    t0 = time.monotonic()
    r = client.delete(f"/v1/jobs/{job_id}")
    assert r.status_code == 200 and r.json["status"] == "cancelled" and r.json["finished_at"]
    while _alive(pid) and time.monotonic() - t0 < 2.0:
        time.sleep(0.02)
    assert not _alive(pid), "the pool process running the job was not stopped within 2 s"
    nxt = client.post("/v1/backtests?wait=30", json={"dataset": {"name": "synthetic", "bars": 500}}).json
    assert nxt["status"] == "succeeded", nxt
    assert client.get(f"/v1/jobs/{job_id}").json["status"] == "cancelled"
    assert client.delete(f"/v1/jobs/{job_id}").json["status"] == "cancelled"  # idempotent


def test_a_sweep_chunk_whose_pool_process_was_killed_runs_again_into_the_same_table(cluster):
    """SIGKILL the pool process in the middle of a sweep: Celery requeues the chunk it was running, a fresh pool
    process runs it again (storing its part once more) and the rest, and the ranked table is the in-process one."""
    from backtest.run import sweep
    from backtest.synthetic import synthetic_market
    from core.jsonable import to_jsonable

    server, _worker, _app, data_dir = cluster
    client = make_app(server.url, data_dir, SWEEP_CHUNK=4, BACKTEST_MAX_BARS=1_000_000).test_client()
    grid = {"breakout_window": [24, 48], "surge_mult": [0.0, 2.0], "leverage": [2.0, 3.0, 5.0, 10.0]}  # 4 chunks
    body = {"dataset": {"name": "synthetic", "bars": 120_000, "seed": 3}, "grid": grid, "split": 0.7}
    job_id = client.post("/v1/sweeps", json=body).json["id"]
    pid = int(_running(client, job_id)["pid"])
    time.sleep(0.3)  # inside the first chunk (each takes about a second)
    os.kill(pid, signal.SIGKILL)
    job = wait_for(client, job_id, timeout=120)
    assert job["status"] == "succeeded", job
    table = sweep(synthetic_market(bars=120_000, seed=3), grid, split=0.7)
    ranked = table.sort_values("is_sharpe", ascending=False, na_position="last", kind="stable")
    assert job["result"]["results"] == to_jsonable(ranked.to_dict(orient="records"))
    rec = queue.JobStore.from_url(server.url, 60).get(job_id)
    assert int(rec["pid"]) != pid and not _alive(pid)


def test_a_poisoned_job_stops_after_bounded_retries(cluster):
    """A task that kills its pool process every time: Celery requeues it (reject_on_worker_lost), and after
    LIQRISK_JOB_MAX_ATTEMPTS starts the job fails with a problem instead of looping."""
    server, _worker, app, _data = cluster
    store = queue.JobStore.from_url(server.url, 600)
    job_id = uuid.uuid4().hex
    store.create(job_id, "backtest", {}, "test")
    queue.celery_app(server.url, 600, 120, 60).send_task("tests.poison", args=[job_id], task_id=job_id)
    client = app.test_client()
    job = wait_for(client, job_id, timeout=90)
    assert job["status"] == "failed" and job["error"]["status"] == 500, job
    assert "poisoned" in job["error"]["errors"]["job"][0]
    assert int(store.get(job_id)[f"attempts:{job_id}"]) == queue.settings()["max_attempts"] + 1
    ok = client.post("/v1/backtests?wait=30", json={"dataset": {"name": "synthetic", "bars": 500}}).json
    assert ok["status"] == "succeeded"  # the worker is still there


def _api(url: str, port: int) -> subprocess.Popen:
    """The API in its own process (werkzeug's server: it starts in about a second; gunicorn adds nothing here)."""
    code = ("import sys; from werkzeug.serving import make_server; from api import create_app; "
            "make_server('127.0.0.1', int(sys.argv[1]), create_app()).serve_forever()")  # fmt: skip
    env = {**os.environ, "LIQRISK_BROKER_URL": url, "LIQRISK_JSON_ACCESS_LOG": "0", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code, str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the API did not start")


def _http(method: str, url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_jobs_keep_running_and_stay_readable_across_an_api_restart(cluster):
    url = cluster[0].url
    port = free_port()
    api = _api(url, port)
    try:
        job = _http("POST", f"http://127.0.0.1:{port}/v1/backtests", {"dataset": {"name": "synthetic", "bars": 8000}})
    finally:
        api.terminate()
        api.wait(timeout=30)
    api = _api(url, port)
    try:
        deadline = time.monotonic() + 60
        got = _http("GET", f"http://127.0.0.1:{port}/v1/jobs/{job['id']}")
        while got["status"] not in ("succeeded", "failed") and time.monotonic() < deadline:
            time.sleep(0.1)
            got = _http("GET", f"http://127.0.0.1:{port}/v1/jobs/{job['id']}")
        assert got["status"] == "succeeded" and got["result"]["bars"] == 8000, got
    finally:
        api.terminate()
        api.wait(timeout=30)


def test_queued_jobs_survive_a_redis_restart(tmp_path):
    """Jobs queued with no worker running; Redis is SIGKILLed and started again on its append-only file; a
    worker started afterwards runs them all."""
    server = RedisServer(tmp_path).start()
    app = make_app(server.url, tmp_path)
    client = app.test_client()
    ids = [client.post("/v1/backtests", json={"dataset": {"name": "synthetic", "bars": 500, "seed": s}}).json["id"]
           for s in range(3)]  # fmt: skip
    server.kill()
    server.start()
    assert [client.get(f"/v1/jobs/{i}").json["status"] for i in ids] == ["queued"] * 3
    worker = Worker("after", worker_env(server.url, tmp_path), tmp_path / "after.log").wait_ready(app)
    try:
        assert [wait_for(client, i)["status"] for i in ids] == ["succeeded"] * 3
    finally:
        worker.kill()
        server.kill()


@pytest.fixture(autouse=True)
def _skip_without_redis():
    from jobkit import HAVE_REDIS

    if not HAVE_REDIS:
        pytest.skip("needs redis-server (scripts/ensure-redis.sh installs it)")
