"""The shipped gunicorn worker class (:mod:`api.http_worker`), with real gunicorn processes on loopback: a pool of
kept-alive connections opened at once is spread evenly over the worker processes; a connection that goes idle
after its answer gives its thread back; a busy connection is answered request after request; the share rule."""

from __future__ import annotations

import http.client
import math
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from api import http_worker
from tests.http_api.test_serving import ROOT, _serve, _stop, _wait

GUNICORN = [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "api:create_app()"]


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _established_by_process(pids: list[int], port: int) -> dict[int, int]:
    """How many established connections on local ``port`` each process holds (from /proc: the socket inodes
    of its descriptors, matched with /proc/net/tcp)."""
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":
                inodes.add(fields[9])
    held = {}
    for pid in pids:
        count = 0
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            match = re.fullmatch(r"socket:\[(\d+)\]", target)
            count += bool(match and match.group(1) in inodes)
        held[pid] = count
    return held


def _open_pool(port: int, n: int) -> list[http.client.HTTPConnection]:
    """``n`` connections opened at once (as a client's pool is), each answered once and kept alive."""
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(n)]
    barrier = threading.Barrier(n)
    statuses = []

    def first_request(conn):
        barrier.wait()
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        resp.read()
        statuses.append(resp.status)

    threads = [threading.Thread(target=first_request, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == [200] * n
    return conns


def test_a_pool_opened_at_once_is_spread_over_the_workers() -> None:
    """32 connections over 4 workers, three pools in a row: no worker holds more than the even share plus the
    slack (gunicorn's own gthread was seen holding 13 to 17 of 32)."""
    proc, base = _serve(GUNICORN, ROOT, {"LIQRISK_WORKERS": "4", "LIQRISK_HEAVY_WORKERS": "0"})  # light ones only
    port = int(base.rsplit(":", 1)[1])
    pools = []
    try:
        _wait(base + "/healthz", proc)
        deadline = time.monotonic() + 60
        while len(workers := _children(proc.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) == 4
        time.sleep(1.0)  # each has claimed its row of the table (the first thing a forked worker does)
        for _ in range(3):
            pools.append(_open_pool(port, 32))
            held = _established_by_process(workers, port)
            total = sum(held.values())
            assert total == 32 * len(pools), held
            assert max(held.values()) <= math.ceil(total / 4) + http_worker.ACCEPT_SLACK, held
    finally:
        for pool in pools:
            for conn in pool:
                conn.close()
        _stop(proc)


def test_an_idle_kept_alive_connection_gives_its_thread_back() -> None:
    """One worker with one thread: after connection A's answer, A stays open and silent; connection B is still
    answered (A went back to the poller after the short wait, instead of holding the only thread until its
    keep-alive expires), and A can then send another request."""
    proc, base = _serve(GUNICORN, ROOT, {"LIQRISK_WORKERS": "1", "LIQRISK_THREADS": "1", "LIQRISK_KEEPALIVE": "30"})
    port = int(base.rsplit(":", 1)[1])
    try:
        _wait(base + "/healthz", proc)
        a = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        a.request("GET", "/healthz")
        first = a.getresponse()
        assert first.status == 200 and first.read()
        b = socket.create_connection(("127.0.0.1", port), timeout=5)
        b.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := b.recv(65536):
            answer += chunk
        b.close()
        assert answer.startswith(b"HTTP/1.1 200")
        a.request("GET", "/healthz")
        resp = a.getresponse()
        assert resp.status == 200 and b'"ok"' in resp.read()
        a.close()
    finally:
        _stop(proc)


def test_a_busy_connection_is_answered_request_after_request() -> None:
    proc, base = _serve(GUNICORN, ROOT, {"LIQRISK_WORKERS": "1", "LIQRISK_THREADS": "2"})
    port = int(base.rsplit(":", 1)[1])
    body = b'{"side": "long", "entry_price": 100000, "quantity": 0.5, "leverage": 20}'
    try:
        _wait(base + "/healthz", proc)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        prices = set()
        for _ in range(200):
            conn.request("POST", "/v1/liquidation-price", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            assert resp.status == 200, data
            prices.add(re.search(rb'"liquidation_price":([0-9.]+)', data).group(1))
        assert len(prices) == 1
        conn.close()
    finally:
        _stop(proc)


@pytest.fixture
def table():
    saved = http_worker._TABLE.copy()
    http_worker._TABLE[:] = 0
    yield http_worker._TABLE
    http_worker._TABLE[:] = saved


def test_the_share_rule(table) -> None:
    me = os.getpid()
    slot = http_worker.claim_slot(me)
    assert slot == 0 and http_worker.claim_slot(me) == 0  # claiming again keeps the row
    table[1] = (2**22 + 12345, 0, 0)  # a worker that no longer exists: its row is free again
    assert http_worker.claim_slot(os.getppid()) == 1
    table[0, 1], table[1, 1] = 9, 6
    assert http_worker.fair_share() == math.ceil(15 / 2) + http_worker.ACCEPT_SLACK
    http_worker.release_slot(os.getppid())
    assert table[1].tolist() == [0, 0, 0]
    assert http_worker.fair_share() == 9 + http_worker.ACCEPT_SLACK
    table[1] = (os.getppid(), 40, http_worker.HEAVY)  # a heavy worker's connections are not in the share
    assert http_worker.fair_share() == 9 + http_worker.ACCEPT_SLACK
    # heavy workers: the even share of their requests, counting the one to accept
    table[2] = (2**22 + 1, 0, http_worker.HEAVY)
    table[1, 1], table[2, 1] = 0, 0
    assert http_worker.fair_share(http_worker.HEAVY) == 1  # nobody holds one: each may take the first
    table[1, 1] = 1
    assert http_worker.fair_share(http_worker.HEAVY) == 1  # the other takes the next
    table[2, 1] = 1
    assert http_worker.fair_share(http_worker.HEAVY) == 2
    table[1, 1] = 2
    assert http_worker.fair_share(http_worker.HEAVY) == 2  # 2 and 1: only the one holding 1 has room
    # a worker that stops accepting (graceful stop, max_requests) leaves the shares and the hand-offs at once
    assert http_worker.heavy_alive()
    table[1, 2] = table[2, 2] = http_worker.LEAVING
    assert not http_worker.heavy_alive()
    assert http_worker.fair_share(http_worker.HEAVY) == http_worker.ACCEPT_SLACK  # no heavy worker counted


def test_a_worker_that_stops_accepting_says_so_in_its_row(table) -> None:
    from gunicorn.config import Config

    cfg = Config()
    cfg.set("threads", 2)
    # gunicorn's own constructor sets ``alive`` before the worker has a row
    worker = http_worker.BalancedThreadWorker(1, os.getpid(), [], None, 30, cfg, SimpleNamespace())
    assert worker.alive and worker._slot is None
    worker._slot = http_worker.claim_slot(os.getpid(), http_worker.HEAVY)  # what init_process does
    assert table[worker._slot, 2] == http_worker.HEAVY
    worker.alive = False  # what gunicorn's graceful stop and max_requests do
    assert table[worker._slot, 2] == http_worker.LEAVING and not worker.alive
