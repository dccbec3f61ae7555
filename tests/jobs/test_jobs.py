"""Backtests and sweeps through the queue, end to end: the API (Flask test client) submits to a real Redis and a
real ``liqrisk worker`` runs them; results equal the in-process runs."""

from __future__ import annotations

import ast
import gc
import json
import os
import subprocess
import sys
import time
import weakref

import numpy as np
import pandas as pd
import pytest
from jobkit import ROOT, make_app, wait_for

from backtest import queue
from backtest.run import overfitting, run_backtest, sweep
from backtest.synthetic import synthetic_market
from core.jsonable import to_jsonable

pytestmark = pytest.mark.usefixtures("cluster")


@pytest.fixture
def client(cluster):
    return cluster[2].test_client()


def test_backtest_job_returns_the_in_process_result(client):
    payload = {"dataset": {"name": "synthetic", "bars": 3000, "seed": 3}, "equity_points": 50,
               "strategy": {"leverage": 5, "stop_pct": None}}  # fmt: skip
    r = client.post("/v1/backtests", json=payload)
    assert r.status_code == 202, r.json
    assert r.headers["Location"] == f"/v1/jobs/{r.json['id']}"
    assert r.json["kind"] == "backtest" and r.json["status"] in ("queued", "running")
    job = wait_for(client, r.json["id"])
    assert job["status"] == "succeeded" and job["progress"] == 1.0, job
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    expected = run_backtest(synthetic_market(bars=3000, seed=3), {"leverage": 5, "stop_pct": None})
    assert job["result"]["metrics"] == to_jsonable(expected["metrics"])
    assert job["result"]["metrics"]["trades"] == len(job["result"]["trades"])
    assert len(job["result"]["equity"]["time"]) <= 51 and job["result"]["strategy"]["stop_pct"] is None


def test_own_rules_run_as_a_job_and_report_refused_entries(client):
    strategy = {"entry_rule": "close > rolling_max(high, 24)", "exit_rule": "close < rolling_min(low, 12)",
                "slippage_model": "range", "slippage": 0.05, "leverage": 125, "symbol": "SOLUSDT"}  # fmt: skip
    body = {"dataset": {"name": "synthetic", "bars": 2000}, "strategy": strategy}
    r = client.post("/v1/backtests?wait=30", json=body)
    job = r.json if r.json["status"] == "succeeded" else wait_for(client, r.json["id"])
    assert job["status"] == "succeeded", job
    out = job["result"]
    assert out["metrics"]["rejected_entries"] > 0 and any("refused" in w for w in out["warnings"])
    assert out["strategy"]["entry_rule"] == strategy["entry_rule"]
    bad = client.post("/v1/backtests", json={"dataset": {"name": "synthetic", "bars": 500},
                                             "strategy": {"entry_rule": "close > bogus"}})  # fmt: skip
    job = wait_for(client, bad.json["id"])
    assert job["status"] == "failed" and job["error"]["status"] == 422, job
    assert "strategy.entry_rule" in job["error"]["errors"], job["error"]


def test_wait_answers_200_with_the_finished_job(client):
    r = client.post("/v1/backtests?wait=30", json={"dataset": {"name": "synthetic", "bars": 500}})
    assert r.status_code == 200 and r.json["status"] == "succeeded", r.json
    assert set(r.json["result"]) >= {"metrics", "trades", "equity", "bars", "start", "end"}
    assert client.post("/v1/backtests?wait=nope", json={"dataset": {"name": "synthetic"}}).status_code == 422


def test_sweep_chunks_combine_into_the_in_process_table(cluster):
    app = make_app(cluster[0].url, cluster[3], SWEEP_CHUNK=3)
    client = app.test_client()
    grid = {
        "breakout_window": [24, 48],
        "surge_mult": [0.0, 2.0],
        "leverage": [2.0, 3.0, 5.0],
        "stop_pct": [0.02, None],
    }
    r = client.post("/v1/sweeps", json={"dataset": {"name": "synthetic", "bars": 3000}, "grid": grid, "split": 0.7})
    assert r.status_code == 202, r.json
    assert int(queue.JobStore.from_url(cluster[0].url, 60).get(r.json["id"])["chunks"]) == 12  # 24 rows, 2 per chunk
    job = wait_for(client, r.json["id"])
    assert job["status"] == "succeeded", job
    res = job["result"]
    table = sweep(synthetic_market(bars=3000), grid, split=0.7)
    ranked = table.sort_values("is_sharpe", ascending=False, na_position="last", kind="stable")
    assert res["combinations"] == 24 and res["sort"] == "is_sharpe"
    assert res["results"] == to_jsonable(ranked.to_dict(orient="records"))
    assert res["best"]["config"] == {k: ranked.iloc[0][k] if pd.notna(ranked.iloc[0][k]) else None for k in grid}
    assert res["overfitting"] == to_jsonable(overfitting(table))


def test_a_sweep_of_few_chunks_ends_in_quarters_and_combines_in_order(cluster):
    """Few chunks: the last is cut in pieces (the wave that ends the sweep is short); the rows of all of them in
    order are the grid's, and the queued table is still the in-process one."""
    import itertools
    import math

    grid = {"breakout_window": [12, 24, 48, 96, 192], "surge_mult": [0.0, 2.0, 3.0, 4.0, 5.0],
            "funding_threshold": [None, -0.0003], "rsi_level": [70.0, 80.0], "leverage": [2.0, 3.0, 5.0, 10.0, 20.0],
            "stop_pct": [0.02, 0.05]}  # fmt: skip
    chunks = queue.sweep_chunks(grid, 256)
    assert [math.prod(len(v) for v in c.values()) for c in chunks] == [200] * 4 + [40] * 5
    assert [r for c in chunks for r in itertools.product(*c.values())] == list(itertools.product(*grid.values()))
    many = {"a": list(range(10)), "b": list(range(10)), "c": list(range(100))}
    assert queue.sweep_chunks(many, 256) == queue.split_grid(many, 256)  # 50 chunks: a short last wave already
    assert queue.sweep_chunks({"leverage": [2.0] * 31}, 256) == [{"leverage": [2.0] * 31}]  # too small to cut
    client = cluster[2].test_client()
    small = {"surge_mult": [0.0, 2.0], "leverage": [2.0, 3.0, 5.0, 10.0, 20.0], "stop_pct": [0.02, 0.03, 0.05, None]}
    r = client.post("/v1/sweeps", json={"dataset": {"name": "synthetic", "bars": 3000}, "grid": small, "split": 0.7})
    assert int(queue.JobStore.from_url(cluster[0].url, 60).get(r.json["id"])["chunks"]) == 4  # 40 rows: 16, 4, 16, 4
    job = wait_for(client, r.json["id"])
    ranked = sweep(synthetic_market(bars=3000), small, split=0.7).sort_values(
        "is_sharpe", ascending=False, na_position="last", kind="stable"
    )
    assert job["result"]["results"] == to_jsonable(ranked.to_dict(orient="records"))


def test_sweep_without_split_ranks_plain_metrics(client):
    body = {"dataset": {"name": "synthetic", "bars": 2000}, "split": None, "grid": {"leverage": [2, 5]},
            "sort": "total_return", "top": 1}  # fmt: skip
    r = client.post("/v1/sweeps?wait=30", json=body)
    assert r.status_code == 200 and r.json["status"] == "succeeded", r.json
    assert len(r.json["result"]["results"]) == 1 and "overfitting" not in r.json["result"]
    assert r.json["result"]["sort"] == "total_return"


def test_uploaded_bars_are_stored_with_the_job(client):
    rng = np.random.default_rng(0)
    p = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    o = np.r_[100.0, p[:-1]]
    bars = {"time": [1.7e12 + i * 3.6e6 for i in range(300)], "open": o.tolist(),
            "high": (np.maximum(o, p) * 1.002).tolist(), "low": (np.minimum(o, p) * 0.998).tolist(),
            "close": p.tolist(), "funding_rate": [(-0.001 if i % 8 == 0 else None) for i in range(300)]}  # fmt: skip
    strategy = {"surge_mult": 0, "breakout_window": 12, "symbol": "SOLUSDT", "funding_threshold": None}
    r = client.post("/v1/backtests?wait=30", json={"bars": bars, "include_trades": False, "strategy": strategy})
    assert r.status_code == 200 and r.json["status"] == "succeeded", r.json
    assert r.json["result"]["trades"] == [] and r.json["result"]["metrics"]["trades"] > 0
    assert any("mark-price" in w for w in r.json["result"]["warnings"])


def test_named_dataset_is_listed_and_runs(client):
    listed = client.get("/v1/datasets").json["datasets"]
    assert listed[0]["name"] == "synthetic"
    small = next(d for d in listed if d["name"] == "small")
    assert small == {"name": "small", "symbol": "SOLUSDT", "timeframe": "5m", "start": small["start"],
                     "end": small["end"], "has_mark": False, "has_funding": True}  # fmt: skip
    ds = {"name": "small", "symbol": "SOL", "timeframe": "5m", "start": small["start"][:10]}
    r = client.post("/v1/backtests?wait=30", json={"dataset": ds, "strategy": {"funding_threshold": None}})
    assert r.status_code == 200 and r.json["status"] == "succeeded", r.json
    assert r.json["result"]["strategy"]["symbol"] == "SOLUSDT" and r.json["result"]["bars"] > 2000
    bad = client.post("/v1/backtests", json={"dataset": {"name": "small", "symbol": "BTC", "timeframe": "5m"}})
    assert bad.status_code == 422 and "dataset.symbol" in bad.json["errors"]


def test_a_job_that_raises_fails_with_a_problem(client):
    ds = {"name": "broken", "symbol": "SOLUSDT", "timeframe": "5m"}
    r = client.post("/v1/backtests?wait=30", json={"dataset": ds})
    assert r.status_code == 200, r.json
    job = r.json
    assert job["status"] == "failed" and "result" not in job
    assert job["error"]["status"] == 422 and "line 1500" in job["error"]["errors"]["dataset"][0]
    assert client.get(f"/v1/jobs/{job['id']}").json["error"] == job["error"]


def test_idempotency_key_returns_the_same_job(client):
    body = {"dataset": {"name": "synthetic", "bars": 500, "seed": 11}}
    key = {"Idempotency-Key": f"k-{time.time_ns()}"}
    first = client.post("/v1/backtests", json=body, headers=key)
    again = client.post("/v1/backtests", json=body, headers=key)
    assert first.status_code == 202 and again.json["id"] == first.json["id"]
    other = client.post("/v1/backtests", json={**body, "equity_points": 3}, headers=key)
    assert other.status_code == 422 and "Idempotency-Key" in other.json["errors"]
    wait_for(client, first.json["id"])


def test_a_client_holds_at_most_n_unfinished_jobs(cluster):
    client = make_app(cluster[0].url, cluster[3], JOB_MAX_QUEUED=1).test_client()
    first = client.post("/v1/backtests", json={"dataset": {"name": "synthetic", "bars": 19000}})
    assert first.status_code == 202
    second = client.post("/v1/backtests", json={"dataset": {"name": "synthetic", "bars": 500}})
    assert second.status_code == 429 and second.headers["Content-Type"] == "application/problem+json"
    assert second.headers["Retry-After"] == "5"
    assert "client" in second.json["errors"]
    assert client.delete(f"/v1/jobs/{first.json['id']}").json["status"] == "cancelled"
    assert client.post("/v1/backtests", json={"dataset": {"name": "synthetic", "bars": 500}}).status_code == 202


def test_unknown_jobs_are_404_and_records_expire(cluster, client):
    for job_id in ("0" * 32, "not-a-job"):
        r = client.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 404 and "id" in r.json["errors"]
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 404
    r = client.post("/v1/backtests?wait=30", json={"dataset": {"name": "synthetic", "bars": 500}})
    store = queue.JobStore.from_url(cluster[0].url, 60)
    assert 0 < store.r.ttl(store.key(r.json["id"])) <= cluster[2].config["JOB_RESULT_TTL"]


def _job_samples(client) -> dict[str, float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith("liqrisk_job")}  # fmt: skip


def test_readyz_and_metrics_see_the_queue(client):
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"]["broker"] and ready.json["checks"]["workers"]
    ok, failed = (
        'liqrisk_jobs_finished_total{kind="backtest",outcome="succeeded"}',
        ('liqrisk_jobs_finished_total{kind="backtest",outcome="failed"}'),
    )
    durations = 'liqrisk_job_duration_seconds_count{kind="backtest"}'
    before = _job_samples(client)
    good = client.post("/v1/backtests?wait=30", json={"dataset": {"name": "synthetic", "bars": 500}})
    bad = client.post(
        "/v1/backtests?wait=30", json={"dataset": {"name": "broken", "symbol": "SOLUSDT", "timeframe": "5m"}}
    )
    assert good.json["status"] == "succeeded" and bad.json["status"] == "failed"
    after = _job_samples(client)
    # one more success and one more failure, each with its duration; the gauges are counts of jobs
    assert after[ok] - before.get(ok, 0) == 1 and after[failed] - before.get(failed, 0) == 1
    assert after[durations] - before.get(durations, 0) == 2
    for gauge in ("liqrisk_jobs_queued", "liqrisk_jobs_running"):
        assert after[gauge] >= 0 and after[gauge].is_integer()


def test_cli_sweep_queue_prints_the_in_process_table(cluster, capsys, monkeypatch):
    from api.cli import main

    monkeypatch.setenv("LIQRISK_BROKER_URL", cluster[0].url)
    monkeypatch.setenv("LIQRISK_DATA_DIR", str(cluster[3]))
    argv = ["sweep", "--data", str(cluster[3] / "small"), "--symbol", "SOL", "--timeframe", "5m",
            "--leverage", "2,5", "--surge-mult", "0,3", "--chunk", "2", "--json"]  # fmt: skip
    assert main([*argv, "--queue"]) == 0
    queued = json.loads(capsys.readouterr().out)
    assert main(argv) == 0
    local = json.loads(capsys.readouterr().out)
    assert queued == local and len(queued["results"]) == 4
    assert main(["sweep", "--queue", "--data", "/elsewhere", "--leverage", "2"]) == 2
    assert "LIQRISK_DATA_DIR" in capsys.readouterr().err


def test_the_api_process_never_imports_the_simulator(cluster):
    """An API process that submits, waits for and reads a backtest and a sweep loads neither pandas, vectorbt
    nor the simulator: the work ran in the worker."""
    code = (
        "import os, sys; from api import create_app, TestConfig\n"
        "C = type('C', (TestConfig,), {'BROKER_URL': os.environ['URL']}); c = create_app(C).test_client()\n"
        "a = c.post('/v1/backtests?wait=30', json={'dataset': {'name': 'synthetic', 'bars': 500}}).json\n"
        "b = c.post('/v1/sweeps?wait=30', json={'dataset': {'name': 'synthetic', 'bars': 500}, "
        "'grid': {'leverage': [2, 3]}}).json\n"
        "assert a['status'] == b['status'] == 'succeeded', (a, b)\n"
        "assert c.get('/v1/jobs/' + a['id']).json['result']['metrics'] == a['result']['metrics']\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('vectorbt', 'backtest', 'pandas', 'numba')))"
    )
    env = {**os.environ, "URL": cluster[0].url, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = set(ast.literal_eval(out.stdout.strip().splitlines()[-1]))
    assert not any(m.startswith(("vectorbt", "pandas", "backtest.engine", "backtest.run")) for m in loaded), loaded


def test_an_upload_is_checked_in_a_heavy_lane_turn_given_back_before_the_wait(cluster, monkeypatch):
    """Uploaded bars (a body over the light lane's size) are checked and stored in a turn of the heavy lane, so a
    flood of uploads is not parsed all at once; the turn is given back once the job is queued, and the body and
    the loaded columns are let go, so ``?wait`` holds neither. A named dataset takes no turn."""
    from api import jobs
    from api.routes import backtests as route

    app = cluster[2]
    lane = app.extensions["liqrisk_heavy_lane"]
    seen: list[tuple[str, bool]] = []
    source, wait = route._source, jobs.Jobs.wait
    columns: list[weakref.ref] = []

    def noted_source(data):
        seen.append(("check", lane.lock.idle()))
        if "bars" in data:
            columns.append(weakref.ref(data["bars"]["close"]))
        return source(data)

    def noted_wait(self, *args):
        from flask import request

        gc.collect()  # what is still referenced at the wait: not the loaded columns, nor the raw body
        stream = request.environ["wsgi.input"]
        held = getattr(stream, "getvalue", bytes)() or any(ref() is not None for ref in columns)
        seen.append(("wait", lane.lock.idle() and not held))
        return wait(self, *args)

    monkeypatch.setattr(route, "_source", noted_source)
    monkeypatch.setattr(jobs.Jobs, "wait", noted_wait)
    rng = np.random.default_rng(1)
    n = 3000  # about 300 KB of bars
    p = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.r_[100.0, p[:-1]]
    bars = {"time": [1.7e12 + i * 3.6e6 for i in range(n)], "open": o.tolist(), "close": p.tolist(),
            "high": (np.maximum(o, p) * 1.002).tolist(), "low": (np.minimum(o, p) * 0.998).tolist()}  # fmt: skip
    client = app.test_client()
    r = client.post("/v1/backtests?wait=30", json={"bars": bars, "include_trades": False})
    assert r.status_code == 200 and r.json["status"] == "succeeded", r.json
    assert seen == [("check", False), ("wait", True)] and lane.lock.idle()
    seen.clear()
    r = client.post("/v1/backtests?wait=30", json={"dataset": {"name": "synthetic", "bars": 500}})
    assert r.status_code == 200 and seen == [("check", True), ("wait", True)]
