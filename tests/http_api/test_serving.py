"""Serving: gunicorn with the repository's config answers on loopback; the Dockerfile's install and
start commands work when replayed outside Docker; the calculator routes do not import the backtester."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {_output(proc)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return time.monotonic() - start
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def _post(url: str, payload: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _serve(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """The server of ``argv`` on a free loopback port; its output goes to a temporary file (a pipe nobody reads
    while it runs would fill and stop it), read back by :func:`_output`."""
    port = _free_port()
    env = {**os.environ, **env, "LIQRISK_BIND": f"127.0.0.1:{port}"}
    log = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.liqrisk_log = log  # type: ignore[attr-defined]
    return proc, f"http://127.0.0.1:{port}"


def _output(proc: subprocess.Popen) -> str:
    """What a server started by :func:`_serve` has written so far."""
    log = getattr(proc, "liqrisk_log", None)
    if log is None:
        return proc.stdout.read() if proc.stdout else ""
    log.flush()
    log.seek(0)
    return log.read()


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_gunicorn_serves_the_app_on_loopback() -> None:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc, base = _serve([str(gunicorn), "-c", "gunicorn.conf.py", "api:create_app()"], ROOT, {"LIQRISK_WORKERS": "2"})
    try:
        _wait(base + "/healthz", proc)
        status, body = _post(
            base + "/v1/liquidation-price",
            {
                "side": "long",
                "entry_price": 20000,
                "quantity": 1,
                "leverage": 50,
                "exchange": "bybit",
                "maintenance_margin_rate": 0.005,
            },
        )
        assert status == 200 and body["liquidation_price"] == 19700
        status, body = _post(base + "/v1/liquidation-price", {"side": "long"})
        assert status == 422 and "entry_price" in body["errors"]
        for _ in range(30):  # spread over both workers
            urllib.request.urlopen(base + "/healthz", timeout=5).read()
        with urllib.request.urlopen(base + "/readyz", timeout=5) as resp:
            assert json.loads(resp.read())["status"] == "ready"
        status, body = _post(base + "/v1/backtests", {"dataset": {"name": "synthetic", "bars": 2000}})
        assert status == 503 and "broker" in body["errors"]  # backtests are jobs; no queue is configured here
        big = {"positions": {"side": ["long"] * 20000, "entry_price": [1e5] * 20000, "quantity": [1.0] * 20000,
                             "leverage": [10.0] * 20000}}  # fmt: skip
        with ThreadPoolExecutor(4) as pool:  # concurrent slower requests: both workers must take some
            got = list(pool.map(lambda _: _post(base + "/v1/liquidation-price/batch", big), range(8)))
        assert all(status == 200 for status, _ in got)
        # whichever worker answers the scrape, the counts are the whole server's
        for _ in range(4):
            text = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
            assert _sample(text, 'liqrisk_http_requests_total{method="GET",route="/healthz",status="200"}') == 31
            ok = 'liqrisk_http_requests_total{method="POST",route="/v1/liquidation-price",status="200"}'
            assert _sample(text, ok) == 1
            assert _sample(text, ok.replace("200", "422")) == 1
    finally:
        _stop(proc)
    output = _output(proc)
    # the master loads the core kernels only: backtests run in the job workers, never in the API processes
    assert "liqrisk: kernels ready" in output.split('{"ts"')[0]
    assert "backtester ready" not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith('{"ts"')]
    assert len({x["pid"] for x in lines if x["route"] == "/v1/liquidation-price/batch"}) == 2  # both workers logged
    assert all(len(x["request_id"]) == 32 for x in lines)


def _wait_for_workers(base: str, proc: subprocess.Popen, workers: int, timeout: float = 30.0) -> None:
    """Until ``/healthz`` has been answered by ``workers`` distinct processes (the JSON access log's ``pid``): a
    worker forked after the first answer takes no connections before it is up."""
    deadline = time.monotonic() + timeout
    while True:
        for _ in range(4):
            urllib.request.urlopen(base + "/healthz", timeout=5).read()
        lines = [json.loads(line) for line in _output(proc).splitlines() if line.startswith('{"ts"')]
        if len({x["pid"] for x in lines if x["route"] == "/healthz"}) >= workers:
            return
        assert time.monotonic() < deadline, f"fewer than {workers} workers answered within {timeout} s"
        time.sleep(0.1)


def _trickle(port: int, body: bytes, chunked: bool = False) -> socket.socket:
    """A connection that sends a request's headers and the first byte of its body, then stalls."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    sock.sendall(
        f"POST /v1/liquidation-price HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{length}\r\n\r\n".encode()
    )
    sock.sendall(b"1\r\n" + body[:1] + b"\r\n" if chunked else body[:1])
    return sock


def _chunked_post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for i in range(0, len(body), 65536):
        part = body[i : i + 65536]
        conn.send(b"%x\r\n%s\r\n" % (len(part), part))
    conn.send(b"0\r\n\r\n")
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def test_trickling_clients_hold_threads_not_workers_and_chunked_bodies_are_bounded() -> None:
    """With the shipped serving model, 64 connections that stall mid-request leave /healthz and the
    calculators answering; a chunked body over the route's limit is a 413 problem, one within it is served."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc, base = _serve([str(gunicorn), "-c", "gunicorn.conf.py", "api:create_app()"], ROOT, {"LIQRISK_WORKERS": "2"})
    port = int(base.rsplit(":", 1)[1])
    body = json.dumps({"side": "long", "entry_price": 100000, "quantity": 0.5, "leverage": 20}).encode()
    stalled = []
    try:
        _wait(base + "/healthz", proc)
        _wait_for_workers(base, proc, 2)  # both light workers up: the stalled connections spread over them
        stalled = [_trickle(port, body, chunked=i % 2 == 1) for i in range(64)]
        for _ in range(10):
            with urllib.request.urlopen(base + "/healthz", timeout=30) as resp:
                assert resp.status == 200
        assert _post(base + "/v1/liquidation-price", json.loads(body))[0] == 200
        status, data = _chunked_post(port, "/v1/liquidation-price", body + b" " * 1000)
        assert status == 200 and json.loads(data)["liquidation_price"] > 0
        status, data = _chunked_post(port, "/v1/liquidation-price", body + b" " * (1024 * 1024))
        assert status == 413 and "body" in json.loads(data)["errors"]
    finally:
        for sock in stalled:
            sock.close()
        _stop(proc)


def test_a_server_notes_its_start_up_files_and_reads_them_ahead_at_the_next_start(tmp_path) -> None:
    """A worker writes the files the master's start-up read (compiled modules, numba's LLVM library, the engine's
    kernel cache) to ``LIQRISK_START_FILES``; the next start reads that list ahead, and a list naming missing files
    or holding garbage does not stop it."""
    listing = tmp_path / "start-files.txt"
    gunicorn = [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "api:create_app()"]
    env = {"LIQRISK_WORKERS": "1", "LIQRISK_HEAVY_WORKERS": "0", "LIQRISK_START_FILES": str(listing)}
    proc, base = _serve(gunicorn, ROOT, env)
    try:
        _wait(base + "/healthz", proc)
        deadline = time.monotonic() + 30
        while not listing.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        _stop(proc)
    paths = listing.read_text().splitlines()
    assert len(paths) == len(set(paths)) > 100 and all(Path(p).is_file() for p in paths)
    names = [Path(p).name for p in paths]
    assert "libllvmlite.so" in names and any(n.startswith("calculators.") and n.endswith(".pyc") for n in names)
    assert any(n.endswith(".nbi") for n in names) and any(n.endswith(".nbc") for n in names)
    assert not any("/vectorbt/" in p or "/pandas/" in p for p in paths)  # the API never loads the backtester
    listing.write_text("\n".join([str(tmp_path / "gone.pyc"), str(tmp_path), "\0garbage", *paths[:5]]))
    proc, base = _serve(gunicorn, ROOT, env)
    try:
        _wait(base + "/healthz", proc)
        status, _ = _post(
            base + "/v1/liquidation-price", {"side": "long", "entry_price": 1e5, "quantity": 1, "leverage": 5}
        )
        assert status == 200
    finally:
        _stop(proc)
    assert "Traceback" not in _output(proc)


_READ_AHEAD = """
import json, os, runpy, sys, tempfile
os.environ.update(LIQRISK_START_FILES="", PROMETHEUS_MULTIPROC_DIR=tempfile.mkdtemp())
read_ahead = runpy.run_path("gunicorn.conf.py")["_read_ahead"]
read_ahead.__globals__["_READ_AHEAD_LIMITS"] = (1 << 20, 1000, 1500)  # bytes: list, one file, in all
advised = []
os.posix_fadvise = lambda fd, offset, length, advice: advised.append(os.readlink(f"/proc/self/fd/{fd}"))
read_ahead(sys.argv[1])
print(json.dumps(advised))
"""


def test_the_read_ahead_opens_only_regular_files_within_its_limits(tmp_path) -> None:
    """The start-up list is written by a worker and read by the master: a FIFO (as the list or in it), a device,
    a link, a directory or a missing path is passed over without blocking; files past the size limits are not
    read ahead; the rest are, in order."""
    small, second, big = tmp_path / "a.pyc", tmp_path / "b.pyc", tmp_path / "big.so"
    small.write_bytes(b"x" * 600)
    second.write_bytes(b"y" * 600)
    big.write_bytes(b"z" * 2000)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link.pyc"
    link.symlink_to(small)
    third = tmp_path / "c.pyc"
    third.write_bytes(b"w" * 600)
    listing = tmp_path / "start-files.txt"
    entries = [fifo, "/dev/null", link, tmp_path, tmp_path / "gone.pyc", "\0", small, big, second, third]
    listing.write_text("\n".join(map(str, entries)))

    def advised(list_path: Path) -> list[str]:
        run = subprocess.run([sys.executable, "-c", _READ_AHEAD, str(list_path)], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)

    assert advised(listing) == [str(small), str(second)]  # big: over one file's limit; third: over the total
    assert advised(fifo) == [] and advised(tmp_path / "none.txt") == []


_ARENAS = """
import ctypes, os, runpy, sys, tempfile, threading
os.environ.update(LIQRISK_START_FILES="", PROMETHEUS_MULTIPROC_DIR=tempfile.mkdtemp())
if sys.argv[1] == "conf":
    runpy.run_path("gunicorn.conf.py")
libc = ctypes.CDLL(None)
libc.malloc.restype = libc.fopen.restype = ctypes.c_void_p
libc.fclose.argtypes = [ctypes.c_void_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
threads = [threading.Thread(target=libc.malloc, args=(1 << 16,)) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
path = os.path.join(tempfile.mkdtemp(), "info.xml")
out = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, out)
libc.fclose(out)
print(open(path).read().count("<heap nr="))
"""


def test_the_server_config_keeps_one_malloc_arena_per_process() -> None:
    """gunicorn.conf.py limits glibc to one malloc arena (inherited by the workers), so the memory a large request
    freed on one thread is reused by the next on another; without it each new thread gets an arena."""
    import ctypes

    if not hasattr(ctypes.CDLL(None), "malloc_info"):
        pytest.skip("the C library is not glibc (no malloc_info): the setting does nothing there")

    def heaps(mode: str) -> int:
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
        run = subprocess.run([sys.executable, "-c", _ARENAS, mode], cwd=ROOT, env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return int(run.stdout)

    assert heaps("conf") == 1
    assert heaps("bare") > 1


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_calculator_routes_do_not_import_the_backtester() -> None:
    code = (
        "import sys; from api import create_app, TestConfig; c = create_app(TestConfig).test_client(); "
        "c.post('/v1/liquidation-price', json={'side': 'long', 'entry_price': 1e5, 'quantity': 1, 'leverage': 5}); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('vectorbt', 'backtest', 'pandas')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_job_routes_import_no_simulator() -> None:
    """Validating and listing jobs loads only the light strategy fields, dataset listing and queue client."""
    code = (
        "import sys; from api import create_app, TestConfig; c = create_app(TestConfig).test_client(); "
        "c.post('/v1/backtests', json={'dataset': {'name': 'synthetic'}, 'strategy': {'leverage': 3}}); "
        "c.post('/v1/sweeps', json={'dataset': {'name': 'synthetic'}, 'grid': {'leverage': [2, 3]}}); "
        "c.get('/v1/datasets'); c.get('/v1/jobs/' + '0' * 32); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('vectorbt', 'backtest', 'pandas')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert set(eval(out)) <= {"backtest", "backtest.params", "backtest.datasets", "backtest.queue"}  # noqa: S307


def _dockerfile() -> tuple[list[str], list[str], list[str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    copies = re.findall(r"^COPY\s+(.+)$", text, re.M)
    runs = re.findall(r"^RUN\s+(.+)$", text, re.M)
    cmd = json.loads(re.search(r"^CMD\s+(\[.+\])$", text, re.M).group(1))
    return copies, runs, cmd


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to list the tracked files")
def test_dockerfile_install_and_start_replayed_outside_docker(tmp_path) -> None:
    """Copy what the Dockerfile copies, run its pip/warm-up commands in a fresh virtualenv and start its
    CMD; /healthz must answer. (`make test` needs no Docker engine; `scripts/compose-smoke.sh` builds and
    runs the image and docker-compose.yml where one is installed; `make lint` checks the file with hadolint.)"""
    copies, runs, cmd = _dockerfile()
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    for line in copies:
        *sources, dest = line.split()
        for src in sources:
            target = app_dir / dest if dest not in ("./", ".") else app_dir / Path(src).name
            path = ROOT / src
            if path.is_dir():
                shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(path, target)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "NUMBA_CACHE_DIR": str(tmp_path / "nb"),
        "VIRTUAL_ENV": str(venv),
    }
    env.pop("PYTHONPATH", None)
    for run in runs:
        for step in run.split("&&"):
            argv = shlex.split(step)
            if argv[:1] in (["useradd"], ["chown"]):
                continue  # user management needs root inside an image; not part of the install
            subprocess.run(argv, cwd=app_dir, env=env, check=True, capture_output=True, timeout=1200)
    proc, base = _serve(
        cmd, app_dir, {k: env[k] for k in ("PATH", "NUMBA_CACHE_DIR", "VIRTUAL_ENV")} | {"LIQRISK_WORKERS": "1"}
    )
    try:
        _wait(base + "/healthz", proc, timeout=120)
        status, body = _post(
            base + "/v1/pnl", {"side": "long", "entry_price": 100, "exit_price": 110, "quantity": 1, "leverage": 10}
        )
        assert status == 200 and body["roe"] == pytest.approx(1.0)
        with urllib.request.urlopen(base + "/openapi.yaml") as resp:
            assert resp.read().startswith(b"openapi: 3.1")
    finally:
        _stop(proc)


_GC = """
import gc, os, runpy, tempfile, types
os.environ.update(LIQRISK_START_FILES="", PROMETHEUS_MULTIPROC_DIR=tempfile.mkdtemp())
conf = runpy.run_path("gunicorn.conf.py")
print(gc.isenabled())
conf["pre_fork"](types.SimpleNamespace(WORKERS={}, num_workers=1), types.SimpleNamespace())
print(gc.isenabled(), gc.get_freeze_count() > 0)
"""


def test_the_master_imports_without_the_cyclic_collector_and_the_workers_fork_with_it() -> None:
    """gunicorn.conf.py turns the cyclic garbage collector off while the master imports the app (a shorter
    start-up) and ``pre_fork`` turns it on again, so every worker collects as usual."""
    run = subprocess.run([sys.executable, "-c", _GC], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "True", "True"]
