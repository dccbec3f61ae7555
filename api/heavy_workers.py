"""Heavy workers: gunicorn worker processes of their own for the requests that take long.

A worker process runs one Python thread at a time. When a batch of 500,000 rows, a liquidation map or a Monte
Carlo run shares a process with the single-position calculator requests, those wait for the interpreter lock
behind it: numpy and the JSON codec hold it for 10-45 ms at a time over long lists. With two processes per core
the operating system shares each core between a busy process and a free one, which keeps the short requests
moving, but at full load it also makes every short request wait for the core behind the other process
(:mod:`api.http_worker`). So the work is split by process instead:

* **Light workers** (``LIQRISK_WORKERS``, one per core by default) accept every connection, answer the calculator
  routes, ``/healthz``, the jobs and documentation routes, and pass each heavy request on.
* **Heavy workers** (``LIQRISK_HEAVY_WORKERS``, one per core by default; 0 turns the split off) are gunicorn
  workers of the same class that listen on a private Unix socket instead of the public one. They answer only
  what light workers pass them, with the whole application (limits, rate limits, time budget, access log and
  metrics), and gunicorn's master starts, times out and replaces them like any worker.

A request is heavy (:func:`heavy_paths`, :class:`HeavyRule`) when it is a ``POST`` to a calculator or backtest route
that the light lane (:mod:`api.light_lane`) does not take: the routes of :data:`api.limits.HEAVY`, and any
calculator request with a body above the lane's limit or sent chunked. The light worker reads the whole body first,
so a slow upload holds its thread, not a heavy worker's (a ``Content-Length`` above the route's limit is answered
413 there without reading it, and a request without a valid API key, when keys are set, 401; a chunked body past the
limit, or one cut short, is answered by the light worker from what was read). It then opens a new connection to the
heavy socket and sends the request: the client's fields without the connection's own (``Connection``, ``TE``,
``Upgrade``, ...) and without the secure-scheme fields (a heavy worker would trust them from its Unix-socket peer;
``X-Forwarded-Proto: https`` is sent when the light worker itself was reached over TLS), with the client's address
in :data:`PEER_HEADER` (the client's own such field is dropped); and streams the answer back. Each heavy worker runs
its calculator requests one at a time, in its heavy lane (:mod:`api.heavy_lane`; backtest and sweep submissions
beside it), and takes no more connections than it has threads, nor more than one above another heavy worker
(:func:`api.http_worker.fair_share`), so requests wait in the lane of the heavy worker with the fewest, and beyond
that in the socket's backlog. When the heavy worker answers before reading the whole body (a 429) and closes, the
light worker still passes its answer on. When no heavy worker is alive, or none takes the connection within
:data:`CONNECT_TIMEOUT`, the light worker answers the request itself, as it would without the split; when the heavy
worker fails after taking the request (killed by the timeout, out of memory, no answer within twice gunicorn's
timeout), the client gets a 503 problem with ``Retry-After`` and its request id. gunicorn's ``TTOU`` stops heavy
workers first (the light ones alone accept connections); ``SIGHUP`` applies a changed split to the new generation of
workers.

Measured on this project's 2-core machine (``make loadtest``, shipped settings): while the two heaviest accepted
requests of a route run and 64 trickling connections are open, single-position requests kept p99 ≤ 16.4 ms on
new connections and ≤ 12.8 ms kept alive for every heavy route (34.8 ms kept alive with four equal workers, 72-102
ms with two); at full load (32 connections, nothing heavy running) two light workers answered 2,191 single
liquidations per second with p99 25.6 ms (four equal workers: 2,417 per second, p99 33.5 ms, on a faster day of
the same machine). The hand-off itself (``tests/bench/test_bench_handoff.py``) costs the light worker about
0.14 ms per request and 9 ms for a 20 MB body with a 10 MB answer.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterable, Iterator

import orjson
from flask import Flask

from . import hangup, limits, security
from .light_lane import CALCULATOR_BLUEPRINTS, body_size

#: request header that carries the client's address from a light worker to a heavy one
PEER_HEADER = "X-Liqrisk-Peer"
_PEER_ENVIRON = "HTTP_" + PEER_HEADER.upper().replace("-", "_")
#: environ key (set by :class:`TrustPeer`) of a request a light worker handed on: its whole body is already sent
HANDED_OFF = "liqrisk.handed_off"
#: blueprints whose static POST routes may be passed to a heavy worker
HEAVY_BLUEPRINTS = (*CALCULATOR_BLUEPRINTS, "backtests")
#: bytes per read when streaming a heavy worker's answer back to the client
ANSWER_CHUNK = 1 << 20
#: answer headers that describe the connection to the heavy worker, not the answer (gunicorn writes its own)
_HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "date", "server"})

#: request fields of the client's connection to the light worker (and any peer field it made up), not passed on;
#: the secure-scheme fields the server trusts are dropped too (:class:`HeavyProxy`): a heavy worker, whose peer is
#: a Unix socket, would believe them
_NOT_FORWARDED = frozenset(
    {
        "HTTP_CONNECTION",
        "HTTP_KEEP_ALIVE",
        "HTTP_PROXY_CONNECTION",
        "HTTP_TRANSFER_ENCODING",
        "HTTP_TE",
        "HTTP_TRAILER",
        "HTTP_UPGRADE",
        "HTTP_HTTP2_SETTINGS",
        "HTTP_CONTENT_LENGTH",
        "HTTP_EXPECT",
        _PEER_ENVIRON,
    }  # fmt: skip
)
#: seconds a light worker waits to hand a request over (a full backlog makes ``connect`` wait)
CONNECT_TIMEOUT = 1.0

_log = logging.getLogger("gunicorn.error")
_listener: socket.socket | None = None
_directory: str | None = None
#: light workers wanted (the rest of gunicorn's ``workers`` are heavy); 0 = the split is off
light_workers = 0


def open_listener(light: int, backlog: int = 128, uid: int | None = None, gid: int | None = None) -> str:
    """In gunicorn's master, before the fork: the heavy workers' Unix socket, in a new directory only the
    workers' user (``uid``/``gid``, gunicorn's ``user``/``group``; default this process's) can enter; ``light``
    of the workers are light. Returns the socket's path."""
    global _listener, _directory, light_workers
    close_listener()
    _directory = tempfile.mkdtemp(prefix="liqrisk-heavy-")
    path = os.path.join(_directory, "heavy.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(backlog)
    if uid is not None and (uid, gid) != (os.geteuid(), os.getegid()):
        for name in (_directory, path):
            os.chown(name, uid, gid if gid is not None else -1)
    _listener, light_workers = sock, light
    return path


def close_listener() -> None:
    """Close the socket and remove its directory (gunicorn's ``on_exit``)."""
    global _listener, _directory, light_workers
    if _listener is not None:
        _listener.close()
    if _directory is not None:
        shutil.rmtree(_directory, ignore_errors=True)
    _listener, _directory, light_workers = None, None, 0


def listener() -> socket.socket | None:
    """The heavy workers' socket (None when the split is off)."""
    return _listener


def heavy_paths(app: Flask) -> frozenset[str]:
    """Static ``POST`` routes of :data:`HEAVY_BLUEPRINTS` (the lane's own paths among them: a request the lane
    does not take, by its size, is heavy)."""
    paths = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".", 1)[0] in HEAVY_BLUEPRINTS and "POST" in rule.methods and not rule.arguments:
            paths.add(rule.rule)
    return frozenset(paths)


class TrustPeer:
    """WSGI middleware of a heavy worker: the client address a light worker sent in :data:`PEER_HEADER` becomes
    ``REMOTE_ADDR`` (and ``REMOTE_PORT``), as if the client had connected here, and the request is marked
    :data:`HANDED_OFF` (for the heavy lane's count of the bodies it holds). Only light workers can connect to the
    heavy socket (its directory is private to this user), so the header is trusted."""

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        peer = environ.pop(_PEER_ENVIRON, None)
        if peer:
            host, _, port = peer.rpartition(" ")
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = host, port
            environ[HANDED_OFF] = True
        return self.app(environ, start_response)


class HeavyRule:
    """Which requests are heavy, and what is checked before their body is read: a ``POST`` to one of ``paths``
    that the light lane would not take (:func:`api.light_lane.body_size` with ``light_paths`` and
    ``light_max_body``), whose ``Content-Length`` is within its route's limit (``body_limits``: path -> bytes) and
    which passes the API-key check (``admits``, :func:`api.security.admits`). Shared by the hand-off to the heavy
    workers (:class:`HeavyProxy`) and the heavy lane in each process (:class:`api.heavy_lane.HeavyLane`)."""

    def __init__(self, paths: frozenset[str], light_paths: frozenset[str], light_max_body: int,
                 body_limits: dict[str, int], admits=lambda environ: True) -> None:  # fmt: skip
        self.paths = paths
        self.light_paths = light_paths
        self.light_max_body = light_max_body
        self.body_limits = body_limits
        self.admits = admits

    @classmethod
    def of(cls, app: Flask, paths: frozenset[str], light_paths: frozenset[str]) -> HeavyRule:
        """The rule of ``app`` for ``paths`` (its routes' body limits, its API keys)."""
        endpoints = {rule.rule: rule.endpoint for rule in app.url_map.iter_rules() if rule.rule in paths}
        body_limits = {path: limits.body_limit(app, endpoint) for path, endpoint in endpoints.items()}
        admits = functools.partial(security.admits, app)
        return cls(paths, light_paths, app.config["LIGHT_LANE_MAX_BODY"], body_limits, admits)

    def only(self, paths: frozenset[str], small_light: frozenset[str] = frozenset()) -> HeavyRule:
        """This rule for ``paths`` (some of :attr:`paths`) alone; requests to ``small_light`` are heavy only when
        their body is over the light lane's size or chunked."""
        limits_ = {path: self.body_limits[path] for path in paths if path in self.body_limits}
        return type(self)(paths, self.light_paths | small_light, self.light_max_body, limits_, self.admits)

    def is_heavy(self, environ: dict) -> bool:
        """A ``POST`` to one of :attr:`paths` that the light lane would not take."""
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") not in self.paths:
            return False
        return body_size(environ, self.light_paths, self.light_max_body) is None

    def refuses(self, environ: dict) -> bool:
        """The app answers this request as it stands, its body unread: a ``Content-Length`` that is not a number
        or is over the route's limit (400/413), or no valid API key (401)."""
        limit = self.body_limits.get(environ["PATH_INFO"])
        length = environ.get("CONTENT_LENGTH") or ""
        if length and (not length.isdigit() or (limit is not None and int(length) > limit)):
            return True
        return not self.admits(environ)

    def read_body(self, environ: dict, checked: bool = False) -> bytes | None:
        """For a heavy request: its whole body, read now (so a slow upload holds the reading thread and nothing
        else); None when the app is to answer the request as it stands: a ``Content-Length`` that is not a
        number or is over the route's limit (400/413, not read), no valid API key (401, not read), a chunked body
        past the limit (413) or a body cut short (400), from what was read (the app's ``wsgi.input``)."""
        if not checked and self.refuses(environ):  # checked: the caller has just asked
            return None
        limit = self.body_limits.get(environ["PATH_INFO"])
        length = environ.get("CONTENT_LENGTH") or ""
        try:
            body = _read(environ, int(length) if length else None, limit)
        except Exception:  # noqa: BLE001 - the client went away mid-body, or sent bad chunks: the app answers
            return None
        if body is None or (length and len(body) != int(length)):
            return None
        return body


class HeavyProxy:
    """WSGI middleware of a light worker: heavy requests (:class:`HeavyRule`) are sent to a heavy worker through
    the socket at ``path`` and their answers streamed back; everything else goes to ``app``."""

    def __init__(self, app, path: str, rule: HeavyRule, available=lambda: True,
                 scheme_fields: frozenset[str] = frozenset(), answer_timeout: float = 120.0) -> None:  # fmt: skip
        self.app = app
        self.path = path
        self.rule = rule
        self.available = available
        #: environ keys of the secure-scheme fields (gunicorn's ``secure_scheme_headers``), not passed on
        self.not_forwarded = _NOT_FORWARDED | {"HTTP_" + name.upper().replace("-", "_") for name in scheme_fields}
        #: seconds to wait for the heavy worker's answer (beyond that: the 503)
        self.answer_timeout = answer_timeout
        self.retry_after = str(app.config.get("RETRY_AFTER", 1)) if hasattr(app, "config") else "1"

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        if not self.rule.is_heavy(environ) or not self.available():
            return self.app(environ, start_response)  # light, or no heavy worker alive: answered here
        body = self.rule.read_body(environ)  # the body first: a slow upload holds this thread, not a heavy worker's
        if body is None:
            return self.app(environ, start_response)  # refused (400/401/413) or cut short: answered here
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(self.path)
        except OSError:
            sock.close()
            environ["wsgi.input"] = io.BytesIO(body)
            return self.app(environ, start_response)  # no heavy worker takes it: answer it here
        try:
            sock.settimeout(self.answer_timeout)
            try:
                sock.sendall(_request_head(environ, len(body), self.not_forwarded))
                sock.sendall(body)
            except (BrokenPipeError, ConnectionResetError):
                # the heavy worker answered before it read the whole body (a 429, say) and closed: on a Unix
                # socket its answer is still there to read (none, if it died: then the 503 below)
                pass
            environ["wsgi.input"] = io.BytesIO()  # the body is freed while the heavy worker answers
            del body
            if not hangup.wait_for_answer(sock, hangup.client_socket(environ), self.answer_timeout):
                sock.close()  # the client hung up: the heavy worker finds this connection closed at its turn
                return _client_gone(environ, start_response)
            reader = sock.makefile("rb", buffering=ANSWER_CHUNK)
            status, headers, length_out = _answer_head(reader)
        except (OSError, ValueError, _BadAnswer) as exc:
            sock.close()
            _log.warning("liqrisk: no answer from the heavy worker to %s: %r", environ["PATH_INFO"], exc)
            return _unavailable(environ, start_response, self.retry_after)
        start_response(status, headers)
        return _stream(sock, reader, length_out)


class _BadAnswer(Exception):
    """The heavy worker closed the connection, or wrote something that is not an HTTP/1.1 answer."""


def _read(environ: dict, length: int | None, limit: int | None) -> bytes | None:
    """The request body: ``length`` bytes, or a chunked body read up to one byte past ``limit`` (None when it
    goes past it). The bytes read become the app's ``wsgi.input``, for when the app answers after all."""
    stream = environ["wsgi.input"]
    if length is not None:
        body = stream.read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # for the app, if it answers after all
        return body
    cap = (limit if limit is not None else 1 << 30) + 1
    chunks, size = [], 0
    while size < cap:
        chunk = stream.read(min(1 << 20, cap - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    body = b"".join(chunks)
    environ["wsgi.input"] = io.BytesIO(body)
    if size >= cap:
        return None
    return body


def _request_head(environ: dict, length: int, not_forwarded: frozenset[str] = _NOT_FORWARDED) -> bytes:
    """The request line and fields to send to a heavy worker: the client's fields but those of
    ``not_forwarded`` (its framing, the connection's own fields, secure-scheme fields, any
    :data:`PEER_HEADER`), the body's ``Content-Length``, ``Connection: close``, the scheme this server saw
    (``X-Forwarded-Proto: https`` when it was) and the client's address."""
    target = environ.get("RAW_URI") or environ.get("PATH_INFO", "/")
    lines = [f"{environ['REQUEST_METHOD']} {target} HTTP/1.1"]
    for key, value in environ.items():
        if key.startswith("HTTP_") and key not in not_forwarded:
            lines.append(f"{key[5:].replace('_', '-')}: {value}")
    if environ.get("wsgi.url_scheme") == "https":
        lines.append("X-Forwarded-Proto: https")
    if environ.get("CONTENT_TYPE"):
        lines.append(f"Content-Type: {environ['CONTENT_TYPE']}")
    lines.append(f"Content-Length: {length}")
    lines.append("Connection: close")
    lines.append(f"{PEER_HEADER}: {environ.get('REMOTE_ADDR', '')} {environ.get('REMOTE_PORT', '')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _answer_head(reader) -> tuple[str, list[tuple[str, str]], int | None]:
    """Status, fields (without the connection's own) and ``Content-Length`` of the heavy worker's answer."""
    line = reader.readline(65537)
    if not line.startswith(b"HTTP/1.1 ") or not line.endswith(b"\r\n"):
        raise _BadAnswer
    status = line[9:-2].decode("latin-1")
    headers: list[tuple[str, str]] = []
    length = None
    while True:
        line = reader.readline(65537)
        if line == b"\r\n":
            break
        if not line.endswith(b"\r\n") or b":" not in line:
            raise _BadAnswer
        name, _, value = line[:-2].decode("latin-1").partition(":")
        value = value.strip()
        lower = name.lower()
        if lower == "content-length":
            length = int(value)
        elif lower == "transfer-encoding":
            raise _BadAnswer  # the app's answers all have a Content-Length; this one would be passed on chunked
        if lower not in _HOP_HEADERS:
            headers.append((name, value))
    return status, headers, length


def _stream(sock: socket.socket, reader, length: int | None) -> Iterator[bytes]:
    """The answer's body, :data:`ANSWER_CHUNK` bytes at a time; then the connection is closed."""
    try:
        left = length
        while left is None or left > 0:
            chunk = reader.read(ANSWER_CHUNK if left is None else min(ANSWER_CHUNK, left))
            if not chunk:
                if left:
                    raise ConnectionError("the heavy worker closed the connection mid-answer")
                return
            if left is not None:
                left -= len(chunk)
            yield chunk
    finally:
        reader.close()
        sock.close()


def _problem(start_response, status: int, title: str, detail: str, errors: dict, headers=()) -> list[bytes]:
    """A problem+json answer written outside the Flask app (a light worker's own answers to handed-on requests)."""
    body = orjson.dumps({"type": f"https://liqrisk.dev/problems/{status}", "title": title, "status": status,
                         "detail": detail, "errors": errors})  # fmt: skip
    start_response(f"{status} {title}", [("Content-Type", "application/problem+json"),
                                         ("Content-Length", str(len(body))), *headers])  # fmt: skip
    return [body]


def _client_gone(environ: dict, start_response) -> list[bytes]:
    """What a light worker answers for a handed-on request whose client hung up (or half-closed) before the heavy
    worker answered: a 499 problem, logged here; the heavy worker counts the request and logs it too, if it had not
    started it yet (:meth:`api.heavy_lane.HeavyLane.client_gone`)."""
    _log.info("liqrisk: the client of %s hung up before the heavy worker answered", environ.get("PATH_INFO"))
    return _problem(start_response, hangup.STATUS, "Client Closed Request",
                    "the client closed the connection before the answer was ready",
                    {"body": ["not answered: the client had gone"]})  # fmt: skip


def _unavailable(environ: dict, start_response, retry_after: str) -> list[bytes]:
    """503 problem+json for a request whose heavy worker stopped before answering it (counted in
    ``liqrisk_heavy_worker_failures_total``; the light worker logged why)."""
    from .observability import HEAVY_WORKER_FAILED, REQUEST_ID, new_request_id

    HEAVY_WORKER_FAILED.labels(environ["PATH_INFO"]).inc()
    rid = environ.get("HTTP_X_REQUEST_ID", "")
    rid = rid if REQUEST_ID.fullmatch(rid) else new_request_id()
    detail = (
        f"the worker process computing this request stopped before answering it (request id {rid}); retry after "
        "Retry-After seconds, or send a smaller request"
    )
    return _problem(start_response, 503, "Service Unavailable", detail, {},
                    [("Retry-After", retry_after), ("X-Request-ID", rid)])  # fmt: skip
