"""Whether the client of a request has hung up, seen on its connection without reading from it.

A heavy request may wait seconds for its turn (:mod:`api.heavy_lane`) or for a heavy worker's answer
(:class:`api.heavy_workers.HeavyProxy`). When its client closes the connection meanwhile (a mobile app's own
timeout, a user who gave up, a flood sent and dropped), nobody will read the answer, so the work is not started:
the light worker closes its connection to the heavy worker, and a lane that gives a waiting request its turn first
looks whether the request's connection is still open.

The test is ``poll(2)`` for ``POLLRDHUP`` (https://man7.org/linux/man-pages/man2/poll.2.html): the peer closed
the connection or shut down its writing side (``POLLHUP`` and ``POLLERR`` come with it unasked). Only that event
is asked for, so bytes a client pipelines behind its request are left unread and wake nobody. A client that
half-closes and still waits for its answer counts as gone, as it does for nginx (its 499, "client closed
request"). Where the platform has no ``POLLRDHUP``, only a reset or a full hang-up (``POLLHUP``) is seen.
"""

from __future__ import annotations

import select
import socket
import time

#: the poll event of a peer that closed or half-closed the connection (Linux; 0 where the platform has none)
RDHUP = getattr(select, "POLLRDHUP", 0)
#: the poll events of a peer that has gone: closed, half-closed, reset or invalid
_GONE = RDHUP | select.POLLHUP | select.POLLERR | select.POLLNVAL
#: the status of an answer nobody reads (nginx's convention: the client closed the request), as logged
STATUS = 499


def client_socket(environ: dict) -> socket.socket | None:
    """The connection the request came on (gunicorn's ``gunicorn.socket``), or None when the server gives none."""
    sock = environ.get("gunicorn.socket")
    return sock if hasattr(sock, "fileno") else None


def gone(sock: socket.socket | None) -> bool:
    """Whether the peer of ``sock`` has hung up (False when unknown: no socket, or already closed here)."""
    if sock is None:
        return False
    try:
        fd = sock.fileno()
        if fd < 0:
            return False
        poller = select.poll()
        poller.register(fd, RDHUP)
        return any(events & _GONE for _fd, events in poller.poll(0))
    except Exception:  # noqa: BLE001 - not a usable socket: unknown, so not gone
        return False


def wait_for_answer(sock: socket.socket, client: socket.socket | None, timeout: float) -> bool:
    """Wait until ``sock`` has something to read (True), for at most ``timeout`` seconds (``TimeoutError``), or
    until the peer of ``client`` hangs up (False)."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    client_fd = -1
    if client is not None:
        try:
            client_fd = client.fileno()
            poller.register(client_fd, RDHUP)
        except Exception:  # noqa: BLE001 - not a usable socket: only the answer is waited for
            client_fd = -1
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no answer within {timeout:g} s")
        events = poller.poll(left * 1000)
        if any(fd == client_fd and ev & _GONE for fd, ev in events):
            return False
        if any(fd != client_fd for fd, _ev in events):
            return True
