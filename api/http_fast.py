"""The fast path through HTTP/1.1 for the light lane's requests: a complete, plain request read from a kept-alive
connection is turned into its WSGI environ entries in one pass, and the answer into its bytes, without
gunicorn's general parser and response writer (:mod:`api.http_worker` uses both on the worker's main thread).

gunicorn's parser handles everything HTTP/1.x allows: chunked and trailer bodies, ``Expect: 100-continue``,
proxy headers from trusted peers, obsolete line folding, HTTP/2 upgrades, repeated fields. Parsing one
single-position request and framing its answer that way takes about 220 µs of CPU here, this module's way
about 40 µs (``tests/bench/test_bench_http.py``); served, with the hand-offs between threads it also saves
(:mod:`api.http_worker`), single liquidation requests went from 1,460 to 2,500–2,800 answers per second
(``wrk``, 32 connections, 2 cores). The calculator calls a mobile backend makes use none of that generality,
so :func:`parse` accepts only the plainest form and answers ``None`` for anything else, which then goes to
gunicorn's parser as before, byte for byte (nothing is consumed):

* request line ``GET|POST <origin-form target> HTTP/1.1`` (RFC 9112 §3), the path exactly one of the lane's
  paths, no ``%`` anywhere in the target (a percent-encoded query goes to gunicorn too) and no fragment,
  within gunicorn's ``limit_request_line``;
* header fields ``name: value`` (RFC 9112 §5) with token names without ``_`` (gunicorn drops those), visible
  ASCII or obs-text values, each field at most once, at most ``limit_request_fields`` of them and each line
  within ``limit_request_field_size``, the whole head within :data:`HEAD_BYTES`; ``Host`` present (RFC 9112
  §3.2);
* none of the fields whose meaning gunicorn applies itself: ``Transfer-Encoding``, ``Expect``, ``Upgrade``,
  ``HTTP2-Settings``, ``Forwarded``, ``X-Forwarded-*`` and the secure-scheme headers; ``Connection`` only
  ``keep-alive`` or ``close``;
* a body given by one decimal ``Content-Length`` (RFC 9110 §8.6) of at most ``max_body`` bytes, already read.

The environ entries are those gunicorn's ``gunicorn.http.wsgi.create`` makes for the same bytes (the test
suite compares them field by field). The answer is framed as gunicorn's ``Response`` frames it, with its checks
of status and header fields (``STATUS_RE``, ``TOKEN_RE``, ``HEADER_VALUE_RE``) and without the hop-by-hop fields
an application may not set (RFC 9110 §7.6.1), with these differences: an answer without ``Content-Length`` gets
one (the whole body is at hand) instead of chunked framing, ``wsgi.early_hints`` sends nothing, and an
``Upgrade: websocket`` field is dropped (none of the lane's routes use either). Nothing here does I/O.
"""

from __future__ import annotations

import email.utils
import io
import re
import time
from dataclasses import dataclass

from gunicorn import SERVER
from gunicorn.http.message import TOKEN_RE
from gunicorn.http.wsgi import HEADER_VALUE_RE, STATUS_RE
from gunicorn.util import hop_headers

#: ``METHOD SP origin-form SP HTTP/1.1 CRLF``: visible ASCII target starting with "/", no "%" and no "#"
_REQUEST_LINE = re.compile(rb'(GET|POST) (/[!"$&-~]*) HTTP/1\.1\r\n')
#: ``name ":" OWS value OWS CRLF`` (RFC 9110 §5.1, §5.5); the value has no control character but HTAB
_FIELD = re.compile(rb"([!#$%&'*+.^`|~0-9A-Za-z-]+):[ \t]*((?:[\x21-\x7e\x80-\xff]+[ \t]+)*[\x21-\x7e\x80-\xff]*)\r\n")
_OWS = " \t"
#: fields gunicorn interprets (framing, expectations, upgrades, proxies): such a request takes its parser
_GUNICORN_FIELDS = frozenset(
    {"TRANSFER-ENCODING", "EXPECT", "UPGRADE", "HTTP2-SETTINGS", "FORWARDED", "PROXY-CONNECTION", "TE"}
)


#: the longest request head (request line and fields) the fast path reads; a longer one goes to gunicorn's parser
HEAD_BYTES = 8192


@dataclass(frozen=True)
class Limits:
    """What :func:`parse` accepts: gunicorn's own request limits and the lane's body limit (bytes)."""

    request_line: int = 4094
    fields: int = 100
    field_size: int = 8190
    max_body: int = 65536


@dataclass(frozen=True)
class Request:
    """One parsed request: the WSGI environ entries it defines, the body, where it ends in the buffer, and
    whether the client keeps the connection open after the answer."""

    environ: dict
    body: bytes
    end: int
    keep_alive: bool


def parse(raw: bytes, paths: frozenset[str], limits: Limits, refused: frozenset[str] = frozenset()) -> Request | None:
    """The first request in ``raw`` if it is complete and plain (module docstring), else None.

    ``paths`` are the request paths served this way; ``refused`` are further field names (upper case) that send
    a request to gunicorn's parser (the configured secure-scheme headers)."""
    head_end = raw.find(b"\r\n\r\n", 0, HEAD_BYTES)
    if head_end < 0:
        return None
    line = _REQUEST_LINE.match(raw)
    if line is None or line.end() > limits.request_line + 2:
        return None
    target = line.group(2).decode("ascii")
    path, _, query = target.partition("?")
    if path not in paths:
        return None
    environ = {
        "REQUEST_METHOD": line.group(1).decode("ascii"),
        "QUERY_STRING": query,
        "RAW_URI": target,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
    }
    pos, stop, count, keep_alive, length = line.end(), head_end + 2, 0, True, 0
    while pos < stop:
        field = _FIELD.match(raw, pos, stop)
        if field is None or field.end() - pos > limits.field_size:  # the line with its CRLF, as gunicorn counts
            return None
        pos = field.end()
        count += 1
        if count > limits.fields:
            return None
        name = field.group(1).decode("ascii").upper()
        value = field.group(2).decode("latin-1").rstrip(" \t")
        if "_" in name or name in _GUNICORN_FIELDS or name.startswith("X-FORWARDED-") or name in refused:
            return None
        if name == "CONTENT-LENGTH":
            if not value.isdigit() or not value.isascii() or len(value) > 18:  # int() of > 4,300 digits raises
                return None
            key, length = "CONTENT_LENGTH", int(value)
        elif name == "CONTENT-TYPE":
            key = "CONTENT_TYPE"
        else:
            if name == "CONNECTION":
                token = value.lower()
                if token not in ("keep-alive", "close"):
                    return None
                keep_alive = token == "keep-alive"
            key = "HTTP_" + name.replace("-", "_")
        if key in environ:
            return None  # a repeated field: gunicorn's rules for joining or refusing it apply
        environ[key] = value
    if "HTTP_HOST" not in environ or length > limits.max_body:
        return None
    end = head_end + 4 + length
    if len(raw) < end:
        return None
    return Request(environ, raw[head_end + 4 : end], end, keep_alive)


def environ(request: Request, base: dict, sock, client, server: tuple) -> dict:
    """The WSGI environ of ``request`` as ``gunicorn.http.wsgi.create`` makes it: ``base`` (gunicorn's
    ``base_environ``), the request's entries, its body as ``wsgi.input``, the peer (``client``: an address
    tuple, or a Unix socket's name) and the listening address ``server`` (a tuple)."""
    env = {**base, **request.environ}
    env["wsgi.input"] = io.BytesIO(request.body)
    env["gunicorn.socket"] = sock
    env["wsgi.url_scheme"] = "http"
    env["wsgi.early_hints"] = _no_early_hints
    if isinstance(client, tuple):
        env["REMOTE_ADDR"], env["REMOTE_PORT"] = client[0], str(client[1])
    else:
        env["REMOTE_ADDR"] = client.decode() if isinstance(client, bytes) else str(client)
    env["SERVER_NAME"], env["SERVER_PORT"] = server[0], str(server[1])
    return env


def _no_early_hints(headers) -> None:
    """``wsgi.early_hints`` of the fast path: a 103 answer (RFC 8297) is not sent; the final answer follows at
    once anyway."""


def response(status: str, headers: list[tuple[str, str]], body: bytes, keep_alive: bool, date: str) -> bytes:
    """The HTTP/1.1 answer: status line, ``Server``, ``Date``, ``Connection``, the application's fields but the
    hop-by-hop ones, ``Content-Length``, then ``body`` (none for 1xx, 204 and 304, RFC 9110 §6.4.1).

    Raises ValueError for a status or header field gunicorn would refuse to send (the caller answers 500)."""
    if not isinstance(status, str) or not STATUS_RE.fullmatch(status):
        raise ValueError(f"invalid status {status!r}")
    code = int(status[:3])
    lines = [
        f"HTTP/1.1 {status}\r\nServer: {SERVER}\r\nDate: {date}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n"
    ]
    declared = at = None
    for name, value in headers:
        if not isinstance(name, str) or not TOKEN_RE.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if not isinstance(value, str) or not HEADER_VALUE_RE.fullmatch(value):
            raise ValueError(f"invalid value of header {name!r}")
        value = value.strip(_OWS)
        lower = name.lower()
        if lower == "content-length":
            declared, at = int(value), len(lines)
        elif lower in hop_headers:
            continue
        lines.append(f"{name}: {value}\r\n")
    if code < 200 or code in (204, 304):
        body = b""
        if code != 304 and at is not None:  # RFC 9110 §8.6: none on 1xx and 204
            lines = [line for line in lines if not line.lower().startswith("content-length:")]
    elif declared is None:
        lines.append(f"Content-Length: {len(body)}\r\n")
    elif declared < len(body):
        body = body[:declared]  # as gunicorn does: never more than the application announced
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + body


class HttpDate:
    """The ``Date`` field value (RFC 9110 §5.6.7), formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._text = email.utils.formatdate(now, usegmt=True)
            self._second = now
        return self._text
