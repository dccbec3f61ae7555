"""The gunicorn worker class of ``make serve``: gunicorn's threaded worker (``gthread``) with its connections
spread evenly over the worker processes, and a busy kept-alive connection served on by the thread it is on.

gunicorn's ``gthread`` worker (https://docs.gunicorn.org/en/stable/design.html#asyncio-workers) accepts from the
listening socket the master shares with every worker, and keeps a kept-alive connection in the process that
accepted it for its whole life. Which process accepts is a race, so a client that opens its pool at once (a
mobile backend, a load balancer, ``wrk``) lands unevenly: 32 connections over 4 processes were seen as 4, 5, 8
and 15. The processes share the cores equally, so each connection of the process with 15 waits about twice as
long as the average one, and the p99 latency of the whole service is that process's. Two changes:

* **Even accepting.** Each worker publishes how many connections it holds in a small table of shared memory
  (created in the master before the fork; one slot per live worker). A worker accepts a connection only if it
  then holds at most its share, ``ceil(total / workers) + ACCEPT_SLACK``; otherwise it stops accepting until it
  has room again (it looks at least every 20 ms). The worker holding the fewest always has room, so a
  connection is never refused for balance's sake, only left to another worker. Idle and trickling connections
  count like busy ones, so an attacker's open sockets are spread out too.
* **No hand-off between two requests of a busy connection.** After a response, ``gthread`` gives the socket
  back to the main thread's poller, which hands the next request to a pool thread again: four thread wake-ups
  and interpreter-lock hand-offs per request. Here the thread first waits up to ``KEEPALIVE_WAIT`` seconds
  (``LIQRISK_KEEPALIVE_WAIT_MS``, default 2 ms; 0 turns it off) for the connection's next request and serves
  it directly; a connection with nothing to send within that time goes back to the poller as before, so idle
  clients still hold only a socket, never a thread. With a trivial WSGI application this cut gunicorn's own
  cost from about 450 to 360 µs of CPU per request on this project's 2-core machine.

Everything else (timeouts, slow-client deferral, graceful stop, ``max_requests``) is ``gthread``'s own.
"""

from __future__ import annotations

import math
import mmap
import multiprocessing
import os
import select

import numpy as np
from gunicorn.workers.gthread import ThreadWorker

#: most worker processes the balance table holds (more workers share the last slot's accounting: none)
MAX_WORKERS = 256
#: connections a worker may hold above the even share (at least 1, so the worker holding the fewest has room)
ACCEPT_SLACK = max(1, int(os.environ.get("LIQRISK_ACCEPT_SLACK", "1")))
#: seconds a thread waits for the next request of the connection it has just answered
KEEPALIVE_WAIT = float(os.environ.get("LIQRISK_KEEPALIVE_WAIT_MS", "2")) / 1000.0

# The table: one row per slot, (pid, connections held). Anonymous shared memory made at import, which happens in
# the master when gunicorn loads the worker class, so every forked worker maps the same pages.
_SHARED = mmap.mmap(-1, MAX_WORKERS * 16)
_TABLE = np.frombuffer(_SHARED, dtype=np.int64).reshape(MAX_WORKERS, 2)
_CLAIM = multiprocessing.Lock()


def claim_slot(pid: int) -> int | None:
    """A free row of the table for worker ``pid`` (a row whose worker has exited counts as free), or None when
    all are taken."""
    with _CLAIM:
        for slot in range(MAX_WORKERS):
            owner = int(_TABLE[slot, 0])
            if owner == 0 or owner == pid or not _alive(owner):
                _TABLE[slot] = (pid, 0)
                return slot
    return None


def release_slot(pid: int) -> None:
    """Free the row of an exited worker (called by the master's ``child_exit`` hook)."""
    rows = np.flatnonzero(_TABLE[:, 0] == pid)
    _TABLE[rows] = 0


def fair_share() -> int:
    """The most connections one worker may hold: the even share of all held connections, rounded up, plus
    :data:`ACCEPT_SLACK`."""
    live = _TABLE[:, 0] != 0
    workers = int(live.sum())
    if workers == 0:
        return ACCEPT_SLACK
    return math.ceil(int(_TABLE[live, 1].sum()) / workers) + ACCEPT_SLACK


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BalancedThreadWorker(ThreadWorker):
    """``gthread`` with even accepting and no hand-off between the requests of a busy connection (module
    docstring)."""

    _slot: int | None = None

    def init_process(self):
        self._slot = claim_slot(os.getpid())
        super().init_process()

    def _publish(self) -> None:
        if self._slot is not None:
            _TABLE[self._slot, 1] = self.nr_conns

    def _room(self) -> bool:
        """Whether one more connection keeps this worker within its share."""
        return self._slot is None or self.nr_conns + 1 <= fair_share()

    def set_accept_enabled(self, enabled):
        """gunicorn's own rule (fewer connections than ``worker_connections``), and room within the share."""
        super().set_accept_enabled(enabled and self._room())

    def accept(self, listener):
        """Accept one connection if it fits this worker's share; otherwise stop accepting and leave it to a
        worker with room (one always has: the one holding the fewest)."""
        if not self._room():
            self.set_accept_enabled(False)
            return
        super().accept(listener)
        self._publish()

    def wait_for_and_dispatch_events(self, timeout):
        # Connections are closed by callbacks of this loop (finished requests, expired keep-alives): publish
        # the count before waiting and after dispatching. While not accepting, look again every 20 ms.
        self._publish()
        super().wait_for_and_dispatch_events(timeout if self._accepting else min(timeout, 0.02))
        self._publish()

    def handle(self, conn):
        """Serve requests of ``conn`` while they keep coming within :data:`KEEPALIVE_WAIT` of the last
        answer; then hand it back to the poller (or close it) as ``gthread`` does."""
        while True:
            result = super().handle(conn)
            if result is not True or not self.alive or KEEPALIVE_WAIT <= 0:
                return result
            if conn.parser.unreader.buf.getvalue():
                continue  # the next request is already read
            try:
                readable, _, _ = select.select([conn.sock], [], [], KEEPALIVE_WAIT)
            except (OSError, ValueError):
                return result
            if not readable:
                return result
