"""Load test (``make loadtest``): start gunicorn on loopback with the repository's config, drive it with
wrk, and print throughput and latency for ``/healthz`` and a single-position liquidation request, the
cold start (launch to first answered request), end-to-end batch times (request to parsed response), and a
soak (default 60 s at 64 connections) mixing single, batch and risk requests, with every worker's RSS before
and after. The server runs with rate limiting off (the test measures the engine, not the limiter) and worker
recycling off (so RSS growth is the same processes'), with the JSON access log on (to /dev/null).

Every request goes to 127.0.0.1 only; each wrk run is bounded by ``--duration``. Figures are printed,
never asserted (timings depend on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
LIQ_BODY = {
    "exchange": "binance",
    "symbol": "BTCUSDT",
    "side": "long",
    "entry_price": 100000,
    "quantity": 0.5,
    "leverage": 20,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    print("wrk not found: installing Debian's wrk package", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    )
    return shutil.which("wrk") or "wrk"


def start_server(port: int, workers: int) -> tuple[subprocess.Popen, float]:
    env = {
        **os.environ,
        "LIQRISK_BIND": f"127.0.0.1:{port}",
        "LIQRISK_WORKERS": str(workers),
        "LIQRISK_ACCESS_LOG": "",
        "LIQRISK_RATE_LIMIT_ENABLED": "0",
        "LIQRISK_MAX_REQUESTS": "0",
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [str(gunicorn), "-c", "gunicorn.conf.py", "api:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/v1/liquidation-price"
    req_body = json.dumps(LIQ_BODY).encode()
    while time.monotonic() - t0 < 120:
        try:
            req = urllib.request.Request(url, data=req_body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status == 200:
                    return proc, time.monotonic() - t0
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def run_wrk(wrk: str, url: str, connections: int, duration: int, threads: int, script: str | None) -> dict:
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    if script:
        argv += ["-s", script]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "rps": rps,
        "p50_ms": pct.get("50"),
        "p90_ms": pct.get("90"),
        "p99_ms": pct.get("99"),
        "errors": errors,
        "requests": total,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def batch_timing(port: int, n: int) -> dict:
    rng = np.random.default_rng(7)
    cols = {
        "side": np.where(rng.random(n) < 0.5, "long", "short").tolist(),
        "entry_price": rng.uniform(20_000, 120_000, n).round(2).tolist(),
        "quantity": rng.uniform(0.001, 2.0, n).round(6).tolist(),
        "leverage": rng.uniform(1, 50, n).round(2).tolist(),
    }
    payload = orjson.dumps({"positions": cols, "fields": ["liquidation_price", "tier"]})
    url = f"http://127.0.0.1:{port}/v1/liquidation-price/batch"
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        req = urllib.request.Request(url, data=payload, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            body = orjson.loads(resp.read())
        elapsed = time.perf_counter() - t0
        assert body["count"] == n and body["valid"] == n, body.get("errors")
        best = elapsed if best is None else min(best, elapsed)
    return {"rows": n, "body_mb": round(len(payload) / 1e6, 1), "seconds": round(best, 3)}


MIX_LUA = r"""
-- soak mix: 60 % single liquidation price, 10 % batch of 100, 20 % liquidation probability, 10 % position size
local single = '{"exchange":"binance","symbol":"BTCUSDT","side":"long",'
  .. '"entry_price":100000,"quantity":0.5,"leverage":20}'
local sides, prices, qty, lev = {}, {}, {}, {}
for i = 1, 100 do
  sides[i] = (i % 2 == 0) and '"long"' or '"short"'
  prices[i] = tostring(20000 + i * 900)
  qty[i] = tostring(0.01 * i)
  lev[i] = tostring(2 + (i % 40))
end
local batch = '{"positions":{"side":[' .. table.concat(sides, ",") .. '],"entry_price":[' .. table.concat(prices, ",")
  .. '],"quantity":[' .. table.concat(qty, ",") .. '],"leverage":[' .. table.concat(lev, ",") .. ']}}'
local risk = '{"side":"long","mark_price":100000,"liquidation_price":90452.26,"volatility":0.6,"horizon_hours":168}'
local size = '{"equity":10000,"risk_fraction":0.01,"side":"long","entry_price":100000,"stop_price":98000}'
local plan = {
  {"/v1/liquidation-price", single}, {"/v1/liquidation-price", single}, {"/v1/liquidation-price", single},
  {"/v1/liquidation-price", single}, {"/v1/liquidation-price", single}, {"/v1/liquidation-price", single},
  {"/v1/liquidation-price/batch", batch},
  {"/v1/risk/liquidation-probability", risk}, {"/v1/risk/liquidation-probability", risk},
  {"/v1/risk/position-size", size},
}
local n = 0
local headers = {["Content-Type"] = "application/json"}
request = function()
  n = n + 1
  local p = plan[(n % #plan) + 1]
  return wrk.format("POST", p[1], headers, p[2])
end
"""


def worker_rss_mb(master: int) -> dict[int, float]:
    """Resident memory (MiB) of each gunicorn worker, read from /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        ppid = int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))
        rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        if ppid == master and rss:
            out[int(entry)] = round(int(rss.group(1)) / 1024, 1)
    return out


def soak(wrk: str, base: str, master: int, connections: int, duration: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(MIX_LUA)
    run_wrk(wrk, base, connections, 10, 2, lua.name)  # warm every route in every worker first
    before = worker_rss_mb(master)
    result = run_wrk(wrk, base, connections, duration, 2, lua.name)
    after = worker_rss_mb(master)
    growth = {pid: round((after[pid] / before[pid] - 1) * 100, 2) for pid in before if pid in after}
    return {
        **result,
        "duration_s": duration,
        "connections": connections,
        "mix": "60% single, 10% batch(100), 20% probability, 10% position size",
        "rss_before_mb": before,
        "rss_after_mb": after,
        "rss_growth_pct": growth,
        "same_workers": sorted(before) == sorted(after),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--no-batch", action="store_true")
    parser.add_argument("--soak", type=int, default=60, help="soak seconds (0 = skip)")
    parser.add_argument("--soak-connections", type=int, default=64)
    args = parser.parse_args()
    wrk = ensure_wrk()
    port = free_port()
    proc, cold = start_server(port, args.workers)
    results: dict = {
        "cold_start_s": round(cold, 3),
        "workers": args.workers,
        "connections": args.connections,
        "cores": os.cpu_count(),
    }
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(
                'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = '{json.dumps(LIQ_BODY)}'\n"
            )
        base = f"http://127.0.0.1:{port}"
        run_wrk(wrk, base + "/healthz", args.connections, 3, 1, None)  # warm the workers
        results["healthz"] = run_wrk(wrk, base + "/healthz", args.connections, args.duration, 1, None)
        results["liquidation_price"] = run_wrk(
            wrk, base + "/v1/liquidation-price", args.connections, args.duration, 1, lua.name
        )
        results["liquidation_vs_healthz"] = round(results["liquidation_price"]["rps"] / results["healthz"]["rps"], 3)
        if not args.no_batch:
            results["batch"] = [batch_timing(port, n) for n in (100_000, 1_000_000)]
        if args.soak:
            results["soak"] = soak(wrk, base, proc.pid, args.soak_connections, args.soak)
    finally:
        stop_server(proc)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
