"""``make serve``: Redis (unless ``LIQRISK_BROKER_URL`` points at one), the job workers and the HTTP API, started
together and stopped together.

* Redis: ``redis-server`` on loopback (``LIQRISK_REDIS_PORT``, default 6379), data under ``.run/redis`` with the
  append-only file on (queued jobs survive a restart). Skipped when ``LIQRISK_BROKER_URL`` is set: the processes
  then use that Redis, which is how several machines share one queue.
* Workers: ``liqrisk worker`` with one pool process per core (``LIQRISK_JOB_WORKERS`` to change).
* API: gunicorn with gunicorn.conf.py on ``LIQRISK_BIND``.

Ctrl-C (or SIGTERM) stops all three; so does any one of them exiting.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _wait_port(host: str, port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve: redis-server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"serve: redis-server did not listen on {host}:{port} within {timeout:g} s")


def main() -> int:
    env = dict(os.environ)
    procs: list[tuple[str, subprocess.Popen]] = []
    if not env.get("LIQRISK_BROKER_URL"):
        server = shutil.which("redis-server")
        if server is None:
            print("serve: redis-server not found (scripts/ensure-redis.sh installs it)", file=sys.stderr)
            return 1
        port = int(env.get("LIQRISK_REDIS_PORT", "6379"))
        data = ROOT / ".run" / "redis"
        data.mkdir(parents=True, exist_ok=True)
        argv = [server, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data), "--appendonly", "yes",
                "--appendfsync", "everysec", "--save", "", "--protected-mode", "yes"]  # fmt: skip
        redis = subprocess.Popen(argv, start_new_session=True)
        procs.append(("redis", redis))
        _wait_port("127.0.0.1", port, redis)
        env["LIQRISK_BROKER_URL"] = f"redis://127.0.0.1:{port}/0"
    worker = [str(BIN / "liqrisk"), "worker"]
    if env.get("LIQRISK_JOB_WORKERS"):
        worker += ["--concurrency", env["LIQRISK_JOB_WORKERS"]]
    procs.append(("worker", subprocess.Popen(worker, env=env, cwd=ROOT, start_new_session=True)))
    api = [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "api:create_app()"]
    procs.append(("api", subprocess.Popen(api, env=env, cwd=ROOT, start_new_session=True)))
    print(f"serve: API on {env.get('LIQRISK_BIND', '127.0.0.1:8000')}, jobs on {env['LIQRISK_BROKER_URL']}",
          file=sys.stderr)  # fmt: skip

    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        for name, p in procs:
            if p.poll() is not None:
                print(f"serve: {name} exited with {p.returncode}; stopping the others", file=sys.stderr)
                code, stopping = p.returncode or 1, True
                break
        time.sleep(0.2)
    for _name, p in reversed(procs):  # the API first, Redis last (workers finish writing results)
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
