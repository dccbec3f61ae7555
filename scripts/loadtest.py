"""Load test (``make loadtest``): start gunicorn on loopback with the repository's config, drive it with
wrk, and print throughput and latency for ``/healthz`` and a single-position liquidation request, the
cold start (launch to first answered request) and end-to-end batch times (request to parsed response).

Every request goes to 127.0.0.1 only; each wrk run is bounded by ``--duration``. Figures are printed,
never asserted: they go into the issue notes.
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
    env = {**os.environ, "LIQRISK_BIND": f"127.0.0.1:{port}", "LIQRISK_WORKERS": str(workers), "LIQRISK_ACCESS_LOG": ""}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--no-batch", action="store_true")
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
    finally:
        stop_server(proc)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
