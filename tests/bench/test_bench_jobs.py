"""Sweeps through the job queue (a real redis-server, ``liqrisk worker`` processes and the API over HTTP on
loopback), on SOL 5 m / 1 h bars of 2025 from ../shared/data (skipped without it):

* a 1,000-combination sweep over HTTP with one worker per core vs the same sweep in-process (same ranked table);
* a 10,000-combination sweep with 2 worker processes vs 1: throughput ratio (combinations per second), then the
  same sweep on the 2 workers again while single liquidation requests go to the API (gunicorn, shipped settings),
  for their latency (the requests take CPU from the workers, so that run is not the one the ratio uses; its time
  is reported beside it).

Only under ``make bench`` (``--benchmark-enable``): each run takes tens of seconds. Other processes sharing the
CPU lower the ratio; the report gives the machine's load average next to it.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "jobs"))
from jobkit import HAVE_REDIS, RedisServer, Worker, free_port, make_app, worker_env  # noqa: E402

from api.jobs import jobs  # noqa: E402
from backtest.queue import QUEUE  # noqa: E402

from .test_bench_backtest import GRID  # noqa: E402  (the in-process bench's 1,000 combinations)

DATASET = "binance_um_perp_btc_eth_sol_2025"
SHARED_DATA = ROOT.parent / "shared" / "data"  # as tests/conftest.py's shared_data fixture
GRID_10K = {
    "breakout_window": [12, 18, 24, 36, 48, 72, 96, 120, 144, 192],
    "surge_mult": [0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0],
    "leverage": [1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0, 15.0, 20.0, 25.0],
    "stop_pct": [0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, None],
}  # 10,000 combinations


@pytest.fixture(scope="module")
def queue(request, tmp_path_factory):
    shared_data = SHARED_DATA
    if not (shared_data / DATASET).is_dir():
        pytest.skip(f"real market data not found at {shared_data} (it ships beside the repo, not in it)")
    if not request.config.getoption("benchmark_enable"):
        pytest.skip("queue benchmarks run under make bench (--benchmark-enable)")
    if not HAVE_REDIS:
        pytest.skip("needs redis-server")
    base = tmp_path_factory.mktemp("bench-jobs")
    server = RedisServer(base, appendfsync="everysec").start()  # as make serve and docker-compose.yml run it
    port = free_port()
    # the API as shipped: gunicorn with the repository's config, its JSON access log written to a file
    env = {**os.environ, "LIQRISK_BROKER_URL": server.url, "LIQRISK_DATA_DIR": str(shared_data),
           "LIQRISK_BIND": f"127.0.0.1:{port}", "LIQRISK_RATE_LIMIT_ENABLED": "0", "PYTHONPATH": str(ROOT)}  # fmt: skip
    gunicorn = Path(sys.executable).parent / "gunicorn"
    api = subprocess.Popen([str(gunicorn), "-c", "gunicorn.conf.py", "api:create_app()"], cwd=ROOT, env=env,
                           stdout=(base / "api.log").open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
    app = make_app(server.url, shared_data)
    wenv = worker_env(server.url, shared_data, LIQRISK_JOB_TIME_LIMIT="300", LIQRISK_JOB_VISIBILITY_TIMEOUT="600")
    state = {"workers": [], "n": 0, "warm": set()}

    def workers(n: int) -> None:
        """Exactly n single-process workers, each with the datasets loaded."""
        while len(state["workers"]) > n:
            state["workers"].pop().stop()
        while len(state["workers"]) < n:
            state["n"] += 1
            w = Worker(f"bench{state['n']}", wenv, base / f"w{state['n']}.log")
            state["workers"].append(w)
        for w in state["workers"]:
            w.wait_ready(app, timeout=300)
        # every worker process loads and caches the datasets: a backtest of each while it is the only worker taking
        # tasks (backtests sent to all at once mostly went to the warm one, so a new worker's first sweep chunk
        # read the dataset file while the other worker swept)
        control = jobs(app).celery.control
        for w in state["workers"]:
            if w.name in state["warm"]:
                continue
            others = [o.name for o in state["workers"] if o is not w]
            if others:
                control.cancel_consumer(QUEUE, destination=others, reply=True)
            try:
                for tf in ("5m", "1h"):
                    _finish(
                        f"http://127.0.0.1:{port}", _post(f"http://127.0.0.1:{port}/v1/backtests", {"dataset": _ds(tf)})
                    )
            finally:
                if others:
                    control.add_consumer(QUEUE, destination=others, reply=True)
            state["warm"].add(w.name)

    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", workers
    for w in state["workers"]:
        w.stop()
    api.terminate()  # gunicorn's master stops its workers
    api.wait(timeout=60)
    server.kill()


def _ds(timeframe: str) -> dict:
    return {"name": DATASET, "symbol": "SOLUSDT", "timeframe": timeframe, "start": "2025-01-01",
            "end": "2025-12-31T23:59:59Z"}  # fmt: skip


def _post(url: str, body: dict, timeout: float = 30) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def _finish(base: str, job: dict) -> dict:
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.1)
        with urllib.request.urlopen(f"{base}/v1/jobs/{job['id']}", timeout=30) as resp:
            job = json.loads(resp.read())
    assert job["status"] == "succeeded", json.dumps(job.get("error"))
    return job


def _sweep(base: str, body: dict) -> tuple[dict, float]:
    """The sweep's job and the seconds from its submission to its result: the API answers ``?wait=`` as soon as
    the result is stored (no polling interval in the figure); a sweep longer than the wait is then polled."""
    t0 = time.perf_counter()
    job = _finish(base, _post(base + "/v1/sweeps?wait=30", body, timeout=90))
    return job, time.perf_counter() - t0


def test_sweep_1000_over_http_vs_in_process(benchmark, queue):
    from backtest import data
    from backtest.run import sweep
    from core.jsonable import to_jsonable

    base, workers = queue
    workers(os.cpu_count() or 1)
    body = {"dataset": _ds("5m"), "grid": GRID, "strategy": {"symbol": "SOLUSDT"}, "top": 1000}
    job, seconds = benchmark.pedantic(_sweep, args=(base, body), rounds=1, iterations=1)
    frame, _, _ = data.load_dataset(str(SHARED_DATA / DATASET), "SOL", "5m")
    frame = frame.loc["2025-01-01":"2025-12-31"]
    t0 = time.perf_counter()
    table = sweep(frame, GRID, {"symbol": "SOLUSDT"})
    local = time.perf_counter() - t0
    ranked = table.sort_values("is_sharpe", ascending=False, na_position="last", kind="stable")
    assert job["result"]["results"] == to_jsonable(ranked.to_dict(orient="records"))
    benchmark.extra_info.update({"http_seconds": round(seconds, 2), "in_process_seconds": round(local, 2),
                                 "workers": os.cpu_count(), "bars": len(frame),
                                 "load_average": os.getloadavg()[0]})  # fmt: skip


def _probe(base: str, stop: threading.Event, out: list[float]) -> None:
    """Single liquidation requests, one every 20 ms on a kept-alive connection (a mobile backend's call)."""
    host, port = base.removeprefix("http://").split(":")
    body = json.dumps({"exchange": "binance", "symbol": "BTCUSDT", "side": "long", "entry_price": 100000,
                       "quantity": 0.5, "leverage": 20})  # fmt: skip
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    while not stop.is_set():
        t0 = time.perf_counter()
        conn.request("POST", "/v1/liquidation-price", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        out.append((time.perf_counter() - t0) * 1e3)
        time.sleep(0.02)
    conn.close()


def test_sweep_10000_two_workers_vs_one(benchmark, queue):
    """Throughput of 1 vs 2 workers, and the latency of single requests to the API while the 2 workers run."""
    base, workers = queue
    body = {"dataset": _ds("1h"), "grid": GRID_10K, "strategy": {"symbol": "SOLUSDT"}, "top": 10}
    workers(1)
    _job, one = _sweep(base, body)
    workers(2)
    _job, two = benchmark.pedantic(_sweep, args=(base, body), rounds=1, iterations=1)
    stop, latencies = threading.Event(), []
    probe = threading.Thread(target=_probe, args=(base, stop, latencies))
    probe.start()
    try:
        _job, probed = _sweep(base, body)
    finally:
        stop.set()
        probe.join()
    ms = np.sort(np.array(latencies))
    info = {"one_worker_seconds": round(one, 2), "two_workers_seconds": round(two, 2),
            "combinations_per_second_1": round(10_000 / one, 1), "combinations_per_second_2": round(10_000 / two, 1),
            "throughput_ratio": round(one / two, 2), "load_average": os.getloadavg()[0],
            "two_workers_seconds_with_requests": round(probed, 2),
            "throughput_ratio_with_requests": round(one / probed, 2),
            "single_requests_during_sweep": len(ms), "single_p50_ms": round(float(np.percentile(ms, 50)), 1),
            "single_p99_ms": round(float(np.percentile(ms, 99)), 1),
            "single_max_ms": round(float(ms[-1]), 1)}  # fmt: skip
    benchmark.extra_info.update(info)
