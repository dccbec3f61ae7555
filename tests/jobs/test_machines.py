"""A sweep shared by workers on two "machines": each worker runs in its own network namespace (its own
interfaces, addresses and routes, joined to the host by a veth pair) and reaches Redis only over that link, at
the host-side address, as a worker on another machine would over the network. The API (this test process) and
Redis stay in the host's namespace. Needs root and ``ip`` (iproute2); skipped otherwise. Every address is a
private one on links that exist only on this machine, and the namespaces are deleted afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from jobkit import HAVE_REDIS, RedisServer, Worker, make_app, wait_for, worker_env

from backtest.run import sweep
from backtest.synthetic import synthetic_market
from core.jsonable import to_jsonable


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Machines:
    """``count`` network namespaces; machine i has 10.<a>.<i>.2 on its end of a veth pair whose host end is
    10.<a>.<i>.1, and a default route through it (the host delivers to its own addresses without forwarding)."""

    def __init__(self, count: int):
        tag = os.getpid() % 10_000
        self.octet = 200 + os.getpid() % 50
        self.names = [f"lq{tag}m{i}" for i in range(count)]

    def host_address(self, i: int = 0) -> str:
        return f"10.{self.octet}.{i}.1"

    def __enter__(self) -> Machines:
        for i, ns in enumerate(self.names):
            host_if, ns_if = f"{ns}h", f"{ns}n"
            _ip("netns", "add", ns)
            _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
            _ip("link", "set", ns_if, "netns", ns)
            _ip("addr", "add", f"{self.host_address(i)}/30", "dev", host_if)
            _ip("link", "set", host_if, "up")
            _ip("-n", ns, "addr", "add", f"10.{self.octet}.{i}.2/30", "dev", ns_if)
            _ip("-n", ns, "link", "set", ns_if, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "route", "add", "default", "via", self.host_address(i))
        return self

    def __exit__(self, *exc) -> None:
        for ns in self.names:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)  # removes its veth pair too
            subprocess.run(["ip", "link", "delete", f"{ns}h"], capture_output=True)


def _can_make_namespaces() -> str | None:
    if not HAVE_REDIS:
        return "needs redis-server (scripts/ensure-redis.sh installs it)"
    if shutil.which("ip") is None:
        return "needs iproute2's ip command"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = subprocess.run(["ip", "netns", "add", f"lqprobe{os.getpid()}"], capture_output=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace here: {probe.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "delete", f"lqprobe{os.getpid()}"], capture_output=True)
    return None


def test_two_machines_share_one_sweep(tmp_path):
    reason = _can_make_namespaces()
    if reason:
        pytest.skip(reason)
    with Machines(2) as machines:
        # Redis listens only on the first link's host address, with a password (as on a real network): the workers
        # reach it across their links
        server = RedisServer(tmp_path, host=machines.host_address(0), password=f"t{os.getpid()}").start()
        workers = []
        try:
            app = make_app(server.url, tmp_path, SWEEP_CHUNK=2)
            for i, ns in enumerate(machines.names):
                env = worker_env(server.url, tmp_path)
                workers.append(Worker(f"machine{i}", env, tmp_path / f"m{i}.log", netns=ns, loglevel="info"))
            for w in workers:
                w.wait_ready(app)
            client = app.test_client()
            grid = {"breakout_window": [24, 48], "surge_mult": [0.0, 2.0], "leverage": [2.0, 3.0, 5.0, 10.0]}
            r = client.post(
                "/v1/sweeps", json={"dataset": {"name": "synthetic", "bars": 3000}, "grid": grid, "split": 0.7}
            )
            assert r.status_code == 202, r.json
            job = wait_for(client, r.json["id"], timeout=120)
            assert job["status"] == "succeeded", job
            table = sweep(synthetic_market(bars=3000), grid, split=0.7)
            ranked = table.sort_values("is_sharpe", ascending=False, na_position="last", kind="stable")
            assert job["result"]["results"] == to_jsonable(ranked.to_dict(orient="records"))
            # each machine ran some of the 8 chunks (Celery logs every task it finished)
            done = [len(re.findall(r"sweep_chunk\[[^\]]+\] succeeded", (tmp_path / f"m{i}.log").read_text()))
                    for i in range(2)]  # fmt: skip
            assert sum(done) == 8 and min(done) >= 1, done
        finally:
            for w in workers:
                w.stop()
            server.kill()
