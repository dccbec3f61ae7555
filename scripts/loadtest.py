"""Load test (``make loadtest``): start gunicorn on loopback with the repository's config and shipped settings
(rate limiting off: the test measures the engine, not the limiter), the JSON access log written to a real file,
and drive it with wrk: throughput and latency for ``/healthz`` and a single-position liquidation request (their
ratio also in turns: ``liquidation_vs_healthz_interleaved``), the cold start (launch to first answered request;
``cold_start_again_s``: four more starts after the rest), end-to-end batch times, a soak (default 60 s at 64
connections) mixing single, batch and risk requests with every worker's RSS before and after, then

* ``worst_cases``: the most expensive accepted request of each heavy route, each on a fresh one-worker
  server: status, seconds and the worker's peak RSS (VmHWM);
* ``liquidation_price_paced``: the single liquidation at about 50 % and 75 % of its saturated rate (latency
  at a stated load);
* ``heavy_flood``: 16 of the most expensive accepted batches at once on a fresh server with the shipped
  workers: answered (200) and not started (503, the heavy lane's wait), first and last answer, peak RSS;
* ``head_of_line``: per heavy route, while its two heaviest accepted requests run at once and 64 trickling
  connections are open, a stream of single liquidation requests (p50/p99/max, on new connections as separate
  clients make them, and on kept-alive ones) and ``/healthz`` every 100 ms (max).

Every request goes to 127.0.0.1 only; each wrk run is bounded by ``--duration``. Figures are printed,
never asserted (timings depend on the machine).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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


LOG_DIR = Path(tempfile.mkdtemp(prefix="liqrisk-loadtest-"))


def start_server(
    port: int, workers: int | None, log_name: str = "access.log", heavy_workers: int | None = None
) -> tuple[subprocess.Popen, float]:
    """gunicorn with the shipped settings (``workers``, ``heavy_workers`` None = the config's default light and
    heavy workers); the JSON access log (stdout) goes to a file under ``LOG_DIR``."""
    env = {**os.environ, "LIQRISK_BIND": f"127.0.0.1:{port}", "LIQRISK_RATE_LIMIT_ENABLED": "0"}
    if workers:
        env["LIQRISK_WORKERS"] = str(workers)
    if heavy_workers is not None:
        env["LIQRISK_HEAVY_WORKERS"] = str(heavy_workers)
    gunicorn = Path(sys.executable).parent / "gunicorn"
    log = open(LOG_DIR / log_name, "ab")  # noqa: SIM115 - the server writes to it until stopped
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [str(gunicorn), "-c", "gunicorn.conf.py", "api:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
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


def interleaved_ratio(wrk: str, base: str, connections: int, script: str, rounds: int = 3, seconds: int = 4) -> dict:
    """Single liquidations against ``/healthz`` measured in turns (``rounds`` pairs of ``seconds``-long runs), so
    that the machine's drift in speed, which moves both, does not land on one side of the ratio (here throughput
    changes by 20-40 % within minutes): each pair's ratio, and that of all requests."""
    pairs = []
    for _ in range(rounds):
        h = run_wrk(wrk, base + "/healthz", connections, seconds, 1, None)
        q = run_wrk(wrk, base + "/v1/liquidation-price", connections, seconds, 1, script)
        pairs.append((h["requests"], q["requests"]))
    return {"pairs": [round(q / h, 3) for h, q in pairs],
            "ratio": round(sum(q for _, q in pairs) / sum(h for h, _ in pairs), 3)}  # fmt: skip


def cold_starts(workers: int | None, heavy_workers: int | None, times: int = 4) -> list[float]:
    """Seconds from launch to the first answered liquidation request of ``times`` more starts of the same
    server, each after the one before has stopped (the first start, ``cold_start_s``, is the load test's own)."""
    seconds = []
    for _ in range(times):
        proc, cold = start_server(free_port(), workers, "cold_start.log", heavy_workers)
        stop_server(proc)
        seconds.append(round(cold, 3))
    return seconds


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


def paced(wrk: str, base: str, args, saturated_rps: float) -> list[dict]:
    """Single liquidation requests below saturation: the same connections, each pausing between requests so
    that together they offer about 50 % and 75 % of the saturated rate (wrk's ``delay()``; the pause is fixed,
    so the achieved rate is a little lower and is what is reported). Latency at a stated load, which is what a
    client's latency objective is about; at saturation a closed loop of N connections only measures the queue
    (mean latency = N / throughput)."""
    out = []
    for share in (0.5, 0.75):
        pause_ms = max(1, round(args.connections / (share * saturated_rps) * 1000))
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(
                'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = '{json.dumps(LIQ_BODY)}'\n"
                f"function delay() return {pause_ms} end\n"
            )
        run = run_wrk(wrk, base + "/v1/liquidation-price", args.connections, args.duration, 1, lua.name)
        out.append({"offered_share": share, "pause_ms": pause_ms, **run})
        os.unlink(lua.name)
    return out


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def random_positions(rng: np.random.Generator, n: int, min_leverage: float = 1.0) -> dict[str, list]:
    """``n`` random BTC-sized positions as batch columns: sides, entries 20,000-120,000, quantities 0.001-2,
    leverage ``min_leverage``-50 (drawn in that order)."""
    return {
        "side": np.where(rng.random(n) < 0.5, "long", "short").tolist(),
        "entry_price": rng.uniform(20_000, 120_000, n).round(2).tolist(),
        "quantity": rng.uniform(0.001, 2.0, n).round(6).tolist(),
        "leverage": rng.uniform(min_leverage, 50, n).round(2).tolist(),
    }


def batch_timing(port: int, n: int) -> dict:
    cols = random_positions(np.random.default_rng(7), n)
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


def heaviest_requests() -> dict[str, tuple[str, bytes]]:
    """The most expensive request each heavy route accepts under the shipped limits (route -> path, body)."""
    rng = np.random.default_rng(5)
    n = 500_000  # the columnar batch limit (LIQRISK_MAX_BATCH_ROWS)
    batch = {
        **random_positions(rng, n, min_leverage=1.5),
        "mark_price": rng.uniform(20_000, 120_000, n).round(2).tolist(),
        "symbol": [f"X{i}USDT" for i in range(n)],  # 1M distinct symbols the ruleset does not list
        "maintenance_margin_rate": 0.005,
    }
    bars = 25_000  # x 4 leverages = the 100,000-level limit
    close = (60_000 * np.exp(np.cumsum(rng.normal(0, 0.002, bars)))).round(2)
    oi = (1e9 + np.cumsum(np.abs(rng.normal(0, 1e6, bars)))).round(0)  # rising every bar: a level per leverage
    m = 100_000
    series = {
        "close": (60_000 + np.cumsum(rng.normal(0, 50, m))).round(2).tolist(),
        "funding_rate": rng.normal(0, 1e-4, m).tolist(),
        "open_interest": (1e9 + rng.uniform(0, 1e6, m)).round(0).tolist(),
        "long_short_ratio": rng.uniform(0.5, 2, m).round(4).tolist(),
        "long_liquidations": rng.uniform(0, 1e6, m).round(2).tolist(),
        "short_liquidations": rng.uniform(0, 1e6, m).round(2).tolist(),
    }
    events = {
        "time_ms": (1.7e12 + rng.uniform(0, 8.6e7, m)).round().tolist(),
        "side": np.where(rng.random(m) < 0.5, "long", "short").tolist(),
        "notional": rng.uniform(1e3, 1e6, m).round(2).tolist(),
        "asset": [f"A{i}" for i in range(m)],
    }
    cascade = {  # every step crosses exactly one more long cluster: the most steps the route allows
        "start_price": 100_000,
        "shock_pct": -0.001,
        "cluster_price": np.linspace(99_999, 50_000, m).round(4).tolist(),
        "cluster_notional": [1_000.0] * m,
        "cluster_side": ["long"] * m,
        "depth_per_pct": 2e3,
        "max_steps": 100_000,
    }
    probability = {"side": "long", "mark_price": 100_000, "liquidation_price": 90_000, "volatility": 0.8,
                   "model": "student_t", "paths": 200_000, "horizon_hours": 25, "monitoring_minutes": 60}  # fmt: skip
    nb = 250_000  # LIQRISK_BACKTEST_MAX_BARS, in 13 columns: just within the 32 MiB a job stores
    mid = 60_000 * np.exp(np.cumsum(rng.normal(0, 0.001, nb)))
    upload: dict[str, list] = {"time": (1.7e12 + np.arange(nb) * 6e4).tolist()}
    for prefix in ("", "mark_"):
        o, c = mid * (1 + rng.normal(0, 1e-4, nb)), mid
        upload |= {prefix + "open": o.round(2).tolist(), prefix + "close": c.round(2).tolist(),
                   prefix + "high": (np.maximum(o, c) * 1.0005).round(2).tolist(),
                   prefix + "low": (np.minimum(o, c) * 0.9995).round(2).tolist()}  # fmt: skip
    for key in ("volume", "open_interest", "taker_buy"):
        upload[key] = rng.uniform(0, 1e6, nb).round(2).tolist()
    upload["funding_rate"] = [None if i % 8 else 1e-4 for i in range(nb)]
    k = 100_000  # the list-of-objects batch limit (LIQRISK_MAX_BATCH_OBJECT_ROWS)
    objects = [dict(zip(batch, row, strict=True)) for row in zip(*(v[:k] if isinstance(v, list) else [v] * k
                                                                   for v in batch.values()), strict=True)]  # fmt: skip
    return {
        "batch": ("/v1/liquidation-price/batch", orjson.dumps({"positions": batch})),
        "batch_objects": ("/v1/liquidation-price/batch", orjson.dumps({"positions": objects})),
        "liquidation_probability": ("/v1/risk/liquidation-probability", orjson.dumps(probability)),
        "liquidation_map": (
            "/v1/market/liquidation-map",
            orjson.dumps(
                {
                    "close": close.tolist(),
                    "open_interest": oi.tolist(),
                    "high": (close * 1.001).tolist(),
                    "low": (close * 0.999).tolist(),
                }
            ),
        ),  # fmt: skip
        "cascade": ("/v1/market/cascade", orjson.dumps(cascade)),
        "liquidation_summary": ("/v1/market/liquidation-summary", orjson.dumps({"events": events})),
        "squeeze_score": ("/v1/market/squeeze-score", orjson.dumps({"series": series, "lookback": 10_000})),
        # checked and stored in a heavy-lane turn; with no job queue here, answered 503 after its checks
        "backtest_upload": ("/v1/backtests", orjson.dumps({"bars": upload, "include_trades": False})),
    }


def post_raw(port: int, path: str, body: bytes, timeout: float = 120) -> tuple[int, float, int]:
    """(status, seconds, response bytes) of one POST on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    elapsed = time.perf_counter() - t0
    conn.close()
    return resp.status, elapsed, len(data)


def peak_rss_mb(master: int) -> float:
    peaks = []
    for pid in worker_rss_mb(master):
        m = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
        peaks.append(int(m.group(1)) / 1024 if m else 0.0)
    return round(max(peaks, default=0.0), 1)


def settle(proc: subprocess.Popen, workers: int) -> None:
    """Wait until the server runs all ``workers`` processes, and half a second more: the heavy workers fork last
    (after the first answer, on a slow start), and a heavy request sent before one is up is answered by the light
    worker that took it (``api.http_worker.heavy_alive``)."""
    deadline = time.monotonic() + 30
    while len(worker_rss_mb(proc.pid)) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start its {workers} workers within 30 s")
        time.sleep(0.05)
    time.sleep(0.5)


def worst_cases(heavy: dict[str, tuple[str, bytes]]) -> dict:
    """Each heaviest request alone on a fresh server of one light and one heavy worker: status, seconds, the
    largest worker peak RSS (the heavy worker's, which computes; the light one reads the body and streams the
    answer through)."""
    out = {}
    for name, (path, body) in heavy.items():
        port = free_port()
        proc, _ = start_server(port, 1, "worst-cases.log", heavy_workers=1)
        settle(proc, 2)
        try:
            base_rss = peak_rss_mb(proc.pid)
            status, seconds, size = post_raw(port, path, body)
            out[name] = {"status": status, "seconds": round(seconds, 3), "peak_rss_mb": peak_rss_mb(proc.pid),
                         "idle_rss_mb": base_rss, "body_mb": round(len(body) / 1e6, 1),
                         "response_mb": round(size / 1e6, 1)}  # fmt: skip
        finally:
            stop_server(proc)
    return out


def heavy_flood(heavy: dict[str, tuple[str, bytes]], count: int = 16) -> dict:
    """``count`` of the most expensive accepted batches (columns) sent at once, each on its own connection, to a
    fresh server with the shipped workers: how many were answered 200 and how many 503 (not started: the heavy
    lane's queue full, or no turn within ``LIQRISK_HEAVY_QUEUE_WAIT``), the seconds to the first and last answer,
    the largest worker peak RSS, and the slowest ``/healthz`` polled every 100 ms meanwhile."""
    path, body = heavy["batch"]
    port = free_port()
    proc, _ = start_server(port, None, "heavy-flood.log")
    cores = str(os.cpu_count())  # the shipped light and heavy workers: one of each per core
    settle(proc, int(os.environ.get("LIQRISK_WORKERS", cores)) + int(os.environ.get("LIQRISK_HEAVY_WORKERS", cores)))
    answers: list[tuple[int, float]] = []
    failed: list[str] = []
    probes: list[float] = []
    stop = threading.Event()

    def one() -> None:
        try:
            status, seconds, _ = post_raw(port, path, body)
            answers.append((status, seconds))
        except OSError as exc:
            failed.append(repr(exc))

    def probe() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
                    resp.read()
                probes.append((time.perf_counter() - t0) * 1e3)
            except OSError as exc:
                failed.append("healthz " + repr(exc))
            stop.wait(0.1)

    try:
        prober = threading.Thread(target=probe)
        prober.start()
        threads = [threading.Thread(target=one) for _ in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        prober.join()
        statuses = [status for status, _ in answers]
        seconds = [s for _, s in answers]
        return {
            "requests": count,
            "body_mb": round(len(body) / 1e6, 1),
            "status_200": statuses.count(200),
            "status_503": statuses.count(503),
            "other": [s for s in statuses if s not in (200, 503)] + failed,
            "first_s": round(min(seconds), 2) if seconds else None,
            "last_s": round(max(seconds), 2) if seconds else None,
            "peak_rss_mb": peak_rss_mb(proc.pid),
            "healthz_max_ms": round(max(probes), 1) if probes else None,
            "healthz_probes": len(probes),
        }
    finally:
        stop.set()
        stop_server(proc)


def trickle(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that send a request's headers and one byte of its body, then stall."""
    body = json.dumps(LIQ_BODY).encode()
    head = (f"POST /v1/liquidation-price HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(head + body[:1])
        socks.append(sock)
    return socks


def light_stream(port: int, stop: threading.Event, keep_alive: bool, out: list[float], errors: list[int]) -> None:
    body = json.dumps(LIQ_BODY).encode()
    conn = None
    while not stop.is_set():
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/v1/liquidation-price", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                errors.append(resp.status)
        except OSError:
            errors.append(0)
            conn.close()
            conn = None
            continue
        out.append(time.perf_counter() - t0)
        if not keep_alive:
            conn.close()
            conn = None
        time.sleep(0.005)


def healthz_probe(port: int, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as resp:
                resp.read()
            out.append(time.perf_counter() - t0)
        except OSError:
            out.append(float("inf"))
        time.sleep(0.1)


def _heavy_call(port: int, path: str, body: bytes, out: list) -> None:
    out.append(post_raw(port, path, body))


def _percentiles(xs: list[float]) -> dict:
    if not xs:
        return {}
    a = np.array(xs) * 1e3
    return {"n": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p99_ms": round(float(np.percentile(a, 99)), 1), "max_ms": round(float(a.max()), 1)}  # fmt: skip


def head_of_line(port: int, heavy: dict[str, tuple[str, bytes]], trickling: int = 64) -> dict:
    """Per heavy route: its heaviest request twice at once, 64 trickling connections, and meanwhile 4 clients
    sending single liquidation requests (2 on new connections, 2 kept alive) and a /healthz probe."""
    results = {}
    socks = trickle(port, trickling)
    try:
        for name, (path, body) in heavy.items():
            stop = threading.Event()
            fresh: list[float] = []
            kept: list[float] = []
            health: list[float] = []
            errors: list[int] = []
            streams = [threading.Thread(target=light_stream, args=(port, stop, False, fresh, errors)) for _ in range(2)]
            streams += [threading.Thread(target=light_stream, args=(port, stop, True, kept, errors)) for _ in range(2)]
            streams.append(threading.Thread(target=healthz_probe, args=(port, stop, health)))
            for t in streams:
                t.start()
            time.sleep(0.5)
            heavy_out: list[tuple[int, float, int]] = []
            runners = [threading.Thread(target=_heavy_call, args=(port, path, body, heavy_out)) for _ in range(2)]
            for t in runners:
                t.start()
            for t in runners:
                t.join()
            stop.set()
            for t in streams:
                t.join()

            results[name] = {
                "heavy": [{"status": st, "seconds": round(sec, 2)} for st, sec, _ in heavy_out],
                "single_new_connections": _percentiles(fresh),
                "single_kept_alive": _percentiles(kept),
                "healthz_max_ms": round(max(health) * 1e3, 1) if health else None,
                "errors": len(errors),
            }
    finally:
        for sock in socks:
            sock.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--workers", type=int, default=0, help="light workers; 0 = the shipped default (gunicorn.conf.py)"
    )
    parser.add_argument("--heavy-workers", type=int, default=-1, help="heavy workers; -1 = the shipped default")
    parser.add_argument("--no-heavy", action="store_true", help="skip the worst cases and the head-of-line test")
    parser.add_argument("--no-batch", action="store_true")
    parser.add_argument("--soak", type=int, default=60, help="soak seconds (0 = skip)")
    parser.add_argument("--soak-connections", type=int, default=64)
    args = parser.parse_args()
    wrk = ensure_wrk()
    port = free_port()
    heavy = None if args.heavy_workers < 0 else args.heavy_workers
    proc, cold = start_server(port, args.workers, heavy_workers=heavy)
    results: dict = {
        "cold_start_s": round(cold, 3),
        "workers": args.workers or "shipped default",
        "heavy_workers": "shipped default" if heavy is None else heavy,
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
        results["liquidation_vs_healthz_interleaved"] = interleaved_ratio(wrk, base, args.connections, lua.name)
        results["liquidation_price_paced"] = paced(wrk, base, args, results["liquidation_price"]["rps"])
        if not args.no_batch:
            results["batch"] = [batch_timing(port, n) for n in (100_000, 500_000)]
        if args.soak:
            results["soak"] = soak(wrk, base, proc.pid, args.soak_connections, args.soak)
        if not args.no_heavy:
            heavy = heaviest_requests()
            results["head_of_line"] = head_of_line(port, heavy)
    finally:
        stop_server(proc)
    if not args.no_heavy:
        results["worst_cases"] = worst_cases(heavy)
        results["heavy_flood"] = heavy_flood(heavy)
    results["cold_start_again_s"] = cold_starts(
        args.workers, heavy_workers=None if args.heavy_workers < 0 else args.heavy_workers
    )
    log = LOG_DIR / "access.log"
    lines = [x for x in log.read_text(errors="replace").splitlines() if x.startswith('{"ts"')]
    results["access_log"] = {"file": str(log), "json_lines": len(lines), "bytes": log.stat().st_size}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
