"""The gunicorn worker class of ``make serve``: gunicorn's threaded worker (``gthread``) with its connections
spread evenly over the worker processes, a busy kept-alive connection served on by the thread it is on, and
complete calculator requests answered by the main thread without gunicorn's general HTTP parser.

gunicorn's ``gthread`` worker (https://docs.gunicorn.org/en/stable/design.html#asyncio-workers) accepts from the
listening socket the master shares with every worker, and keeps a kept-alive connection in the process that
accepted it for its whole life. Which process accepts is a race, so a client that opens its pool at once (a
mobile backend, a load balancer, ``wrk``) lands unevenly: 32 connections over 4 processes were seen as 4, 5, 8
and 15. The processes share the cores equally, so each connection of the process with 15 waits about twice as
long as the average one, and the p99 latency of the whole service is that process's. Three changes:

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

* **The fast path for calculator requests.** When a kept-alive connection becomes readable, the main thread reads
  what has arrived without waiting. If that is a complete, plain request for one of the light lane's paths
  (:mod:`api.light_lane`; :func:`api.http_fast.parse` says which requests qualify), the main thread answers it
  itself (:func:`api.http_fast.response` frames the answer), sends it without waiting and puts the connection back
  in the poller. Anything else — a new connection's first request, a body still arriving, heavy routes, anything
  unusual in the request — stays buffered, untouched, for gunicorn's own parser in a pool thread, as before. The
  main thread runs the light lane's requests one after the other in the order they came, which is the lane's rule
  anyway; what it saves is gunicorn's general parser and response writer and the hand-offs between threads: 1,460 →
  2,500–2,800 single-position answers per second on this project's 2-core machine (``wrk``, 32 connections). An
  answer the socket does not take at once is finished by a pool thread, and so is closing a connection (a graceful
  close waits for the client), so a client that stops reading holds a thread, not the main loop; and when a pool
  thread holds the lane, the parsed request takes its place in the lane's queue instead of being waited for, and
  the lane's drain thread answers it in its turn (:meth:`api.light_lane.FifoLock.acquire_or_leave`; with one pool
  thread woken per request instead, the lane stayed busy at full load and throughput fell by a third).
  It is off with
  ``LIQRISK_FAST_PATH=0``, without the lane, and whenever this server's configuration asks gunicorn for more than
  it skips (:func:`fast_path`). With it on, a thread gives a connection back to the poller right after an answer
  (the keep-alive wait above is for the fast path being off).

* **Two roles.** With heavy workers configured (:mod:`api.heavy_workers`), the master gives each new worker a
  role before it forks (:func:`assign_role`): a light worker accepts from the public socket and passes heavy
  requests on (:func:`heavy_proxy`); a heavy worker accepts only from the private Unix socket. The balance above
  is among the light workers; the heavy workers keep one of their own, stricter (:func:`fair_share`), as each of
  their connections is a heavy request that waits for its turn.

Everything else (timeouts, slow-client deferral, graceful stop, ``max_requests``) is ``gthread``'s own; the
fast path applies gthread's keep-alive rules itself (:meth:`BalancedThreadWorker._keep_alive_allowed`).
"""

from __future__ import annotations

import math
import mmap
import multiprocessing
import os
import select
from concurrent import futures

import numpy as np
from gunicorn.http import wsgi
from gunicorn.http.message import DEFAULT_MAX_HEADERFIELD_SIZE as _MAX_FIELD_SIZE
from gunicorn.http.message import MAX_HEADERS as _MAX_HEADERS
from gunicorn.http.message import MAX_REQUEST_LINE as _MAX_REQUEST_LINE
from gunicorn.workers.gthread import ThreadWorker

from . import heavy_workers, http_fast, light_lane
from .light_lane import LANE_HELD, FifoLock, LightLane

#: most worker processes the balance table holds (more workers share the last slot's accounting: none)
MAX_WORKERS = 256
#: connections a worker may hold above the even share (at least 1, so the worker holding the fewest has room)
ACCEPT_SLACK = max(1, int(os.environ.get("LIQRISK_ACCEPT_SLACK", "1")))
#: seconds a thread waits for the next request of the connection it has just answered
KEEPALIVE_WAIT = float(os.environ.get("LIQRISK_KEEPALIVE_WAIT_MS", "2")) / 1000.0
#: whether complete light-lane requests of kept-alive connections are answered on the main thread
FAST_PATH = os.environ.get("LIQRISK_FAST_PATH", "1") not in ("0", "false", "False", "")

# The table: one row per slot, (pid, connections held, role). Anonymous shared memory made at import, which
# happens in the master when gunicorn loads the worker class, so every forked worker maps the same pages.
_SHARED = mmap.mmap(-1, MAX_WORKERS * 24)
_TABLE = np.frombuffer(_SHARED, dtype=np.int64).reshape(MAX_WORKERS, 3)
_CLAIM = multiprocessing.Lock()
#: roles in the table's third column (LEAVING: a worker that has stopped accepting, draining before it exits)
LIGHT, HEAVY, LEAVING = 0, 1, 2


def claim_slot(pid: int, role: int = LIGHT) -> int | None:
    """A free row of the table for worker ``pid`` of ``role`` (a row whose worker has exited counts as free), or
    None when all are taken."""
    with _CLAIM:
        for slot in range(MAX_WORKERS):
            owner = int(_TABLE[slot, 0])
            if owner == 0 or owner == pid or not _alive(owner):
                _TABLE[slot] = (pid, 0, role)
                return slot
    return None


def assign_role(workers: dict, wanted: int) -> int:
    """In gunicorn's master, before a worker forks (``pre_fork``): heavy (:mod:`api.heavy_workers`) when the
    workers that stay beside the new one already hold enough light ones, else light. Those are the newest
    ``wanted - 1`` of ``workers`` (gunicorn's pid -> worker table): when there are more, as while a reload
    (``SIGHUP``) starts the new generation, gunicorn stops the oldest. ``wanted`` is gunicorn's ``workers``."""
    if heavy_workers.listener() is None:
        return LIGHT
    staying = sorted(workers.values(), key=lambda w: w.age, reverse=True)[: max(wanted - 1, 0)]
    light = sum(1 for w in staying if getattr(w, "liqrisk_role", LIGHT) == LIGHT)
    return HEAVY if light >= heavy_workers.light_workers else LIGHT


def shed_heavy_first(workers: dict) -> None:
    """In gunicorn's master, when its worker count falls (``TTOU``, ``nworkers_changed``): gunicorn stops the
    oldest workers, so the heavy ones are made the oldest; light workers (which alone accept connections) go
    last."""
    for worker in workers.values():
        if getattr(worker, "liqrisk_role", LIGHT) == HEAVY and worker.age > 0:
            worker.age -= 1 << 40


def release_slot(pid: int) -> None:
    """Free the row of an exited worker (called by the master's ``child_exit`` hook)."""
    rows = np.flatnonzero(_TABLE[:, 0] == pid)
    _TABLE[rows] = 0


def heavy_alive() -> bool:
    """Whether some heavy worker is alive and accepting (its row is in the table, not leaving): else a light
    worker answers heavy requests itself rather than queue them on a socket nobody accepts from (``TTOU`` stops
    heavy workers first)."""
    return bool(((_TABLE[:, 0] != 0) & (_TABLE[:, 2] == HEAVY)).any())


def fair_share(role: int = LIGHT) -> int:
    """The most connections one worker of ``role`` may hold. A light worker: the even share of all connections
    the light workers hold, rounded up, plus :data:`ACCEPT_SLACK`. A heavy worker, whose every connection is a
    heavy request (seconds of work, taken in turn: :mod:`api.heavy_lane`): the even share of the heavy workers'
    connections counting the one to accept, rounded up, so no heavy worker holds two more requests than another
    (the one holding the fewest always has room)."""
    live = (_TABLE[:, 0] != 0) & (_TABLE[:, 2] == role)
    workers = int(live.sum())
    if workers == 0:
        return ACCEPT_SLACK
    held = int(_TABLE[live, 1].sum())
    if role == HEAVY:
        return math.ceil((held + 1) / workers)
    return math.ceil(held / workers) + ACCEPT_SLACK


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
    _fast: tuple | None = None
    _alive = True
    role = LIGHT

    @property
    def alive(self) -> bool:
        return self._alive

    @alive.setter
    def alive(self, value: bool) -> None:
        """gunicorn's flag; when it falls (graceful stop, ``max_requests``) the worker's row says so at once
        (:data:`LEAVING`), so the other workers' shares and the light workers' hand-offs leave it out while it
        finishes its last requests."""
        self._alive = value
        if not value and self._slot is not None:
            _TABLE[self._slot, 2] = LEAVING

    def init_process(self):
        self.role = getattr(self, "liqrisk_role", LIGHT)  # set by the master (assign_role in pre_fork)
        self._slot = claim_slot(os.getpid(), self.role)
        if self.role == HEAVY:
            self.sockets = [heavy_workers.listener()]  # only light workers' hand-offs, never the public socket
            # take no more than it has threads for: the rest wait in the socket's backlog, for either heavy worker
            self.worker_connections = self.cfg.threads
        super().init_process()

    def _publish(self) -> None:
        if self._slot is not None:
            _TABLE[self._slot, 1] = self.nr_conns

    def _room(self) -> bool:
        """Whether one more connection keeps this worker within its share (:func:`fair_share`)."""
        return self._slot is None or self.nr_conns + 1 <= fair_share(self.role)

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

    def load_wsgi(self):
        """gunicorn's, then the fast path (:func:`fast_path`) if this app and configuration allow it; a light
        worker passes heavy requests on to the heavy workers (:func:`heavy_proxy`), a heavy one takes the
        client's address from the light worker's field (:class:`api.heavy_workers.TrustPeer`)."""
        super().load_wsgi()
        self._app = self.wsgi
        if self.role == HEAVY:
            self.wsgi = heavy_workers.TrustPeer(self._app)
            self.log.info("liqrisk: heavy worker (requests of light workers only)")
            return
        self._fast = fast_path(self._app, self.cfg, self.log)
        self.log.debug("liqrisk: fast path %s", "on" if self._fast else "off")
        if self._fast is not None:
            self._base_environ = {**wsgi.base_environ(self.cfg), "wsgi.multithread": True}
            self._http_date = http_fast.HttpDate()
            self._fast[3].run_left = self._answer_left
        proxy = heavy_proxy(self._app, self.cfg)
        if proxy is not None:
            self.wsgi = proxy

    def handle(self, conn):
        """Serve requests of ``conn`` while they keep coming within :data:`KEEPALIVE_WAIT` of the last
        answer; then hand it back to the poller (or close it) as ``gthread`` does. With the fast path on, a
        connection goes back to the poller at once: its next calculator request is answered there."""
        while True:
            result = super().handle(conn)
            if result is not True or not self.alive or KEEPALIVE_WAIT <= 0 or self._fast is not None:
                return result
            if conn.parser.unreader.buf.getvalue():
                continue  # the next request is already read
            try:
                readable, _, _ = select.select([conn.sock], [], [], KEEPALIVE_WAIT)
            except (OSError, ValueError):
                return result
            if not readable:
                return result

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection has data: answer it here if it is a complete light-lane request
        (:meth:`_answer_here`), else hand it to a pool thread as ``gthread`` does."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        if self._fast is None or not self._answer_here(conn):
            self.enqueue_req(conn)

    def _answer_here(self, conn) -> bool:
        """Read what ``conn`` has sent (without waiting); if it is a complete, plain request for a light-lane
        path (:func:`api.http_fast.parse`), answer it: on this thread when the lane is free (then put the
        connection back in the poller, or close it), else in its turn by the lane's drain thread
        (:meth:`_answer_left`); this thread never waits. False (nothing consumed, the bytes stay buffered for
        gunicorn's parser) for anything else."""
        if not conn.initialized or conn.is_http2 or not isinstance(conn.server, tuple):
            return False
        paths, limits, refused, lane = self._fast
        buffer = conn.parser.unreader.buf
        try:
            data = conn.sock.recv(limits.max_body + http_fast.HEAD_BYTES)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:  # the client closed (or reset) the connection
            self.nr_conns -= 1
            conn.close()
            return True
        buffer.seek(0, os.SEEK_END)
        buffer.write(data)
        raw = buffer.getvalue()
        try:
            request = http_fast.parse(raw, paths, limits, refused)
        except Exception:  # whatever the bytes, gunicorn's parser decides on them
            self.log.exception("liqrisk: fast path could not read a request; gunicorn's parser takes it")
            return False
        if request is None:
            return False
        buffer.seek(0)
        buffer.truncate()
        buffer.write(raw[request.end :])  # a pipelined next request: gthread's finish_request hands it on
        environ = http_fast.environ(request, self._base_environ, conn.sock, conn.client, conn.server)
        environ["wsgi.errors"] = wsgi.WSGIErrorsWrapper(self.cfg)  # as gunicorn: one per request
        environ[LANE_HELD] = True
        allowed = self._keep_alive_allowed()  # counts the request for max_requests, whatever the client asks
        keep_alive = request.keep_alive and allowed
        if not lane.acquire_or_leave((conn, environ, keep_alive)):
            return True  # a pool thread holds the lane: answered in its turn by the lane's drain thread
        try:
            answer, keep_alive = self._answer(environ, keep_alive)
        finally:
            lane.release()
        self._send(conn, answer, keep_alive)
        return True

    def _answer(self, environ: dict, keep_alive: bool) -> tuple[bytes, bool]:
        """The app's answer to a parsed request (the lane held), or a 500 that closes the connection."""
        try:
            return self._run_app(environ, keep_alive), keep_alive
        except Exception:
            self.log.exception("Error handling request %s", environ["RAW_URI"])
            return _ERROR_500, False

    def _answer_left(self, item: tuple) -> None:
        """On the lane's drain thread, holding the lane: a request the main thread left
        (:meth:`FifoLock.acquire_or_leave`). Answer it and send what the socket takes at once; a pool thread
        sends the rest (a client that stops reading holds that thread, not the lane). Then the main thread puts
        the connection back in the poller (gthread's ``finish_request``), or it is closed on a pool thread (a
        graceful close waits for the client)."""
        conn, environ, keep_alive = item
        answer, keep_alive = self._answer(environ, keep_alive)
        keep_alive = self._send_now(conn, answer, keep_alive)
        if keep_alive is None:
            return
        if keep_alive:
            done: futures.Future = futures.Future()
            done.set_result(True)
            self.method_queue.defer(self.finish_request, conn, done)
            return
        self.method_queue.defer(self._closed, conn)
        try:
            self.tpool.submit(conn.close, True)
        except RuntimeError:  # the pool is shut down: the worker is exiting
            conn.close()

    def _closed(self, conn) -> None:
        """On the main thread: ``conn`` (not in the poller) is closed by a pool thread."""
        self.nr_conns -= 1

    def _keep_alive_allowed(self) -> bool:
        """gthread's rules: the request count for ``max_requests`` (the worker restarts after this answer),
        a stopping worker, keep-alive off, and the kept-alive connections limit."""
        self.nr += 1
        if self.nr >= self.max_requests and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        if not self.alive or not self.cfg.keepalive:
            return False
        return len(self.keepalived_conns) < self.max_keepalived

    def _run_app(self, environ: dict, keep_alive: bool) -> bytes:
        """The application's answer to ``environ`` as the bytes to send."""
        started: list = []

        def start_response(status, headers, exc_info=None):
            started[:] = (status, headers)
            return chunks.append

        chunks: list[bytes] = []
        answer = self._app(environ, start_response)  # a lane request: never one for the heavy workers
        try:
            chunks.extend(answer)
        finally:
            if hasattr(answer, "close"):
                answer.close()
        status, headers = started
        return http_fast.response(status, headers, b"".join(chunks), keep_alive, self._http_date())

    def _send_now(self, conn, answer: bytes, keep_alive: bool) -> bool | None:
        """Send what the socket of ``conn`` takes of ``answer`` without waiting. None when a pool thread sends
        the rest (then the main thread finishes the connection, gthread's ``finish_request``); else whether to
        keep the connection (False when the send failed)."""
        sock = conn.sock
        try:
            sent = sock.send(answer)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return False
        if sent == len(answer):
            return keep_alive
        rest = memoryview(answer)[sent:]

        def send_rest() -> bool:
            sock.setblocking(True)
            sock.sendall(rest)
            return keep_alive

        future = self.tpool.submit(send_rest)
        future.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))
        return None

    def _send(self, conn, answer: bytes, keep_alive: bool) -> None:
        """Send ``answer`` without waiting; what the socket does not take at once is sent by a pool thread.
        Then the connection goes back to the poller, or is closed (gthread's ``finish_request``)."""
        keep_alive = self._send_now(conn, answer, keep_alive)
        if keep_alive is None:
            return
        if not keep_alive:  # a graceful close waits up to 2 s for the client's FIN: not on this thread
            self.nr_conns -= 1
            self.tpool.submit(conn.close, True)
            return
        done: futures.Future = futures.Future()
        done.set_result(keep_alive)
        self.finish_request(conn, done)


#: the answer to a request the application failed to answer (its exception is logged)
_ERROR_500 = b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


def fast_path(app, cfg, log) -> tuple[frozenset[str], http_fast.Limits, frozenset[str], FifoLock] | None:
    """The light lane's paths, the request limits, the refused fields and the lane's lock, when the fast path is on
    (``LIQRISK_FAST_PATH``, default on) and this server's configuration leaves nothing to gunicorn's request
    path that the fast path would skip: plain HTTP on TCP (no TLS, no PROXY protocol), no gunicorn access log
    and no statsd metrics, the default ``pre_request`` and ``post_request`` hooks, keep-alive on and no
    ``SCRIPT_NAME``; else None."""
    lane = getattr(app, "wsgi_app", None)
    if not FAST_PATH or not isinstance(lane, LightLane):
        return None
    hooks_default = all(
        cfg.settings[name].value is type(cfg.settings[name]).default for name in ("pre_request", "post_request")
    )
    proxy_protocol = cfg.proxy_protocol not in (None, False, "off")
    logged = log.access_log_enabled or cfg.statsd_host  # both are fed by gunicorn's per-request access call
    plain = getattr(cfg, "protocol", "http") == "http" and not cfg.is_ssl and not proxy_protocol
    if not plain or logged or not hooks_default or not cfg.keepalive:
        return None
    if os.environ.get("SCRIPT_NAME"):
        return None
    # gunicorn's own clamping of its limits (gunicorn/http/message.py); 0 ("unlimited") is held to the maximum
    line, fields, field_size = cfg.limit_request_line, cfg.limit_request_fields, cfg.limit_request_field_size
    limits = http_fast.Limits(
        request_line=line if 0 < line < _MAX_REQUEST_LINE else _MAX_REQUEST_LINE,
        fields=fields if 0 < fields <= _MAX_HEADERS else _MAX_HEADERS,
        field_size=field_size if field_size > 0 else _MAX_FIELD_SIZE,
        max_body=lane.max_body,
    )
    refused = frozenset(name.upper() for name in cfg.secure_scheme_headers)
    return lane.paths, limits, refused, lane.lane


def heavy_proxy(app, cfg) -> heavy_workers.HeavyProxy | None:
    """The middleware that passes heavy requests to the heavy workers, when there are some
    (:func:`api.heavy_workers.open_listener` ran in the master) and the connection to them is plain HTTP as
    :class:`api.heavy_workers.HeavyProxy` speaks it (no TLS, no PROXY protocol on this server's sockets)."""
    sock = heavy_workers.listener()
    if sock is None or not hasattr(app, "url_map") or cfg.is_ssl or cfg.proxy_protocol not in (None, False, "off"):
        return None
    rule = app.extensions.get("liqrisk_heavy_rule")  # the app's own (create_app), or one made for it here
    if rule is None:
        lane = getattr(app, "wsgi_app", None)  # the lane's paths, or (lane off) the ones it would take
        light = lane.paths if isinstance(lane, LightLane) else light_lane.lane_paths(app)
        rule = heavy_workers.HeavyRule.of(app, heavy_workers.heavy_paths(app), light)
    return heavy_workers.HeavyProxy(
        app,
        sock.getsockname(),
        rule,
        heavy_alive,
        frozenset(cfg.secure_scheme_headers),
        answer_timeout=max(cfg.timeout, 60) * 2,
    )
