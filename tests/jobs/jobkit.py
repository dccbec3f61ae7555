"""Helpers for the jobs tests: a real redis-server and real ``liqrisk worker`` processes on loopback, started and
stopped by the tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis as redis_lib

from api import TestConfig, create_app

ROOT = Path(__file__).resolve().parents[2]
HAVE_REDIS = shutil.which("redis-server") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """redis-server on a free loopback port with only the append-only file (no RDB snapshots), fsynced after
    every write by default (the fault tests kill it); ``appendfsync="everysec"`` is what ``make serve`` and the
    compose file run (a write costs no disk wait; the benchmarks use it)."""

    def __init__(self, folder: Path, host: str = "127.0.0.1", password: str | None = None,
                 appendfsync: str = "always"):  # fmt: skip
        self.folder, self.host, self.port, self.proc = folder, host, free_port(), None
        self.password, self.appendfsync = password, appendfsync
        self.url = f"redis://{':' + password + '@' if password else ''}{host}:{self.port}/0"

    def start(self) -> RedisServer:
        argv = ["redis-server", "--bind", self.host, "--port", str(self.port), "--dir", str(self.folder),
                "--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", ""]  # fmt: skip
        if self.password:  # Redis refuses clients beyond loopback without one (protected mode)
            argv += ["--requirepass", self.password]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis_lib.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return self
            except redis_lib.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


class Worker:
    """``liqrisk worker`` (one pool process) in its own process group, so killpg takes the whole worker."""

    def __init__(self, name: str, env: dict[str, str], log: Path, concurrency: int = 1, include: str | None = None,
                 netns: str | None = None, loglevel: str = "warning"):  # fmt: skip
        self.name = f"{name}@{socket.gethostname()}"
        argv = [sys.executable, "-m", "api.cli", "worker", "--concurrency", str(concurrency), "--hostname",
                self.name, "--loglevel", loglevel]  # fmt: skip
        if netns:  # `ip netns exec` enters the namespace and execs the worker: same pid, same process group
            argv = ["ip", "netns", "exec", netns, *argv]
        if include:
            argv += ["--include", include]
        self.log = log
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip

    def wait_ready(self, app, timeout: float = 120) -> Worker:
        from api.jobs import jobs

        queue = jobs(app)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited: {self.log.read_text()[-2000:]}")
            replies = queue.celery.control.ping(destination=[self.name], timeout=0.5)
            if replies:
                return self
        raise AssertionError(f"worker {self.name} not ready: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def worker_env(url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "LIQRISK_BROKER_URL": url, "LIQRISK_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT),
           "LIQRISK_JOB_VISIBILITY_TIMEOUT": "120", "LIQRISK_JOB_TIME_LIMIT": "60"}  # fmt: skip
    env.update(extra)
    return env


def make_app(url: str, data_dir: Path, **overrides):
    attrs = {"BROKER_URL": url, "DATA_DIR": str(data_dir), "JOB_MAX_QUEUED": 50, **overrides}
    return create_app(type("JobsTestConfig", (TestConfig,), attrs))


def wait_for(client, job_id: str, statuses=("succeeded", "failed", "cancelled"), timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json
        if job["status"] in statuses:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s: {job}")


def write_dataset(folder: Path, bars: int = 3000, seed: int = 5, bad_line: int | None = None) -> Path:
    """A small freqtrade-layout dataset (SOL 5m klines and 1h funding) made from the synthetic market."""
    import gzip

    from backtest.synthetic import synthetic_market

    frame = synthetic_market(bars=bars, timeframe="5m", seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["date,open,high,low,close,volume"]
    for t, row in zip(frame.index, frame.itertuples(), strict=True):
        lines.append(f"{t.isoformat()},{row.open},{row.high},{row.low},{row.close},{row.volume}")
    if bad_line is not None:
        lines[bad_line - 1] = lines[bad_line - 1].rsplit(",", 1)[0] + ",lots"
    (folder / "SOL_USDT_USDT-5m-futures.csv.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    fund = frame["funding_rate"].dropna()
    text = "date,funding_rate\n" + "\n".join(f"{t.isoformat()},{v}" for t, v in fund.items())
    (folder / "SOL_USDT_USDT-1h-funding_rate.csv.gz").write_bytes(gzip.compress(text.encode()))
    return folder
