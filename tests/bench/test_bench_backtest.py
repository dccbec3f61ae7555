"""Backtester benchmarks on SOL 5 m bars for 2025 (105,120 bars) from ../shared/data, or — on a machine without
it — a synthetic market of the same length (the report says which): one run warm, a 1,000-combination sweep
(peak RSS of that sweep measured in a fresh process), and the first run in a fresh process with a cold and a
warm numba cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "binance_um_perp_btc_eth_sol_2025"
GRID = {
    "breakout_window": [12, 24, 48, 96, 192],
    "surge_mult": [0.0, 2.0, 3.0, 4.0, 5.0],
    "funding_threshold": [None, -0.0003],
    "rsi_level": [70.0, 80.0],
    "leverage": [2.0, 3.0, 5.0, 10.0, 20.0],
    "stop_pct": [0.02, 0.05],
}  # 5 x 5 x 2 x 2 x 5 x 2 = 1,000 combinations

LOAD = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
from backtest import data
from backtest.synthetic import synthetic_market
if os.path.isdir({str(SHARED)!r}):
    frame, _, _ = data.load_dataset({str(SHARED)!r}, "SOL", "5m")
    frame = frame.loc["2025-01-01":"2025-12-31"]
    source = "SOL 5m 2025 (Binance)"
else:
    frame = synthetic_market(bars=105_120, timeframe="5m", seed=7)
    source = "synthetic 5m"
"""


@pytest.fixture(scope="module")
def sol_5m():
    scope: dict = {}
    exec(LOAD, scope)
    assert len(scope["frame"]) == 105_120
    return scope["frame"], scope["source"]


def test_backtest_one_run_105k_bars(benchmark, sol_5m):
    from backtest.run import run_backtest

    frame, source = sol_5m
    run_backtest(frame, {"symbol": "SOLUSDT"})  # warm
    benchmark.extra_info["data"] = source
    res = benchmark(run_backtest, frame, {"symbol": "SOLUSDT"})
    assert res["equity"].shape == (105_120,)


def test_backtest_sweep_1000_combinations(benchmark, sol_5m):
    from backtest.run import sweep

    frame, source = sol_5m
    benchmark.extra_info["data"] = source
    table = benchmark.pedantic(sweep, args=(frame, GRID, {"symbol": "SOLUSDT"}), rounds=1, iterations=1)
    assert len(table) == 1000


def _fresh(code: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1800)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_backtest_sweep_peak_rss_fresh_process(benchmark):
    code = (
        LOAD
        + f"""
import json, resource, time
from backtest.run import sweep
t = time.perf_counter()
sweep(frame, {GRID!r}, {{"symbol": "SOLUSDT"}})
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": time.perf_counter() - t, "peak_rss_mb": peak}}))
"""
    )
    got = benchmark.pedantic(_fresh, args=(code, dict(os.environ)), rounds=1, iterations=1)
    benchmark.extra_info.update(got)
    assert got["peak_rss_mb"] < 4096


def test_backtest_first_run_fresh_process_cold_and_warm_cache(benchmark):
    code = (
        LOAD
        + """
import json, time
t = time.perf_counter()
from backtest.run import run_backtest
run_backtest(frame, {"symbol": "SOLUSDT"})
print(json.dumps({"first_run_seconds": time.perf_counter() - t}))
"""
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        cold = _fresh(code, env)  # empty cache: every numba function compiles (ours, core's and vectorbt's)
        warm = benchmark.pedantic(_fresh, args=(code, env), rounds=1, iterations=1)
    benchmark.extra_info["cold_cache_first_run_s"] = cold["first_run_seconds"]
    benchmark.extra_info["warm_cache_first_run_s"] = warm["first_run_seconds"]
