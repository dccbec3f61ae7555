"""Benchmarks of a light worker's hand-off of a heavy request (``make bench``): :class:`api.heavy_workers.HeavyProxy`
reading the body, connecting to the heavy workers' Unix socket, sending the request and streaming the answer
back, against a stand-in heavy worker in a process of its own (it reads the request and sends a prepared
answer of the given size, as the heavy worker's gunicorn would). What is measured is the hand-off's own cost,
a fixed part per request and a part per byte, which a heavy request pays on top of its work in the heavy
worker; the work itself is benchmarked in ``test_bench_serving.py`` and served end to end by ``make loadtest``.
No timing is asserted; each case checks that the whole answer came back.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import socket
import tempfile

import pytest

from api.heavy_workers import HeavyProxy, HeavyRule

PATH = "/v1/liquidation-price/batch"
#: a 500,000-row batch in columns is about 20 MB of JSON; its answer (liquidation prices only) about 10 MB
SIZES = {"1 KB": (1_000, 1_000), "20 MB in, 10 MB out": (20_000_000, 10_000_000)}


def _serve(listener: socket.socket, answer_size: int) -> None:
    """The stand-in heavy worker: for each connection, read the head and ``Content-Length`` bytes of body,
    send a 200 with ``answer_size`` bytes of body, close."""
    answer = b"x" * answer_size
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
    while True:
        conn, _ = listener.accept()
        with conn:
            reader = conn.makefile("rb", buffering=1 << 20)
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            left = length
            while left:
                left -= len(reader.read(min(left, 1 << 20)))
            conn.sendall(head % len(answer) + answer)


@pytest.fixture(params=list(SIZES), scope="module")
def handoff(request):
    """(proxy, request body, answer size) with a stand-in heavy worker listening on a fresh Unix socket."""
    body_size, answer_size = SIZES[request.param]
    directory = tempfile.mkdtemp(prefix="liqrisk-bench-")
    path = os.path.join(directory, "heavy.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    server = multiprocessing.get_context("fork").Process(target=_serve, args=(listener, answer_size), daemon=True)
    server.start()

    def not_here(environ, start_response):
        raise AssertionError("the light worker answered a request it should have handed over")

    proxy = HeavyProxy(not_here, path, HeavyRule(frozenset({PATH}), frozenset(), 65_536, {PATH: 64 << 20}))
    yield proxy, b" " * body_size, answer_size
    server.kill()
    server.join()
    listener.close()
    os.unlink(path)
    os.rmdir(directory)


def _environ(body: bytes) -> dict:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": PATH,
        "RAW_URI": PATH,
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.0.2.7",
        "HTTP_HOST": "127.0.0.1:8000",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }


def test_handoff_to_a_heavy_worker(benchmark, handoff) -> None:
    proxy, body, answer_size = handoff

    def one() -> tuple[str, int]:
        seen = []
        answer = proxy(_environ(body), lambda status, headers: seen.append(status))
        return seen[0], sum(len(chunk) for chunk in answer)

    assert benchmark(one) == ("200 OK", answer_size)
