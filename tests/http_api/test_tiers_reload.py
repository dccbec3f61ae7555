"""gunicorn (the repository's config) serves the tiers directory's tables and reloads them on SIGHUP to the master:
new workers fork with the new tables and the kernels are not recompiled."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from core.tier_parsers import hyperliquid
from core.tiers import document

ROOT = Path(__file__).resolve().parents[2]
META = ROOT / "tests" / "fixtures" / "tiers" / "hyperliquid_info_meta.json"
POSITION = {
    "exchange": "hyperliquid",
    "symbol": "BTC",
    "side": "long",
    "entry_price": 100_000,
    "quantity": 1,
    "leverage": 10,
}


def _write_tables(tiers_dir: Path, as_of: str) -> None:
    tables = hyperliquid(json.loads(META.read_text()), as_of=as_of)
    (tiers_dir / "hyperliquid.json").write_text(json.dumps(document(tables, "hyperliquid")))


def _tiers_as_of(base: str) -> str | None:
    req = urllib.request.Request(
        base + "/v1/liquidation-price", data=json.dumps(POSITION).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["tiers_as_of"]


def _until(check, timeout: float, proc: subprocess.Popen):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "gunicorn exited"
        try:
            value = check()
            if value:
                return value
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s")


def test_sighup_reloads_tier_tables(tmp_path) -> None:
    _write_tables(tmp_path, "2026-11-30")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "LIQRISK_BIND": f"127.0.0.1:{port}",
        "LIQRISK_WORKERS": "1",
        "LIQRISK_BACKTEST_WARMUP": "0",
        "LIQRISK_TIERS_DIR": str(tmp_path),
        "LIQRISK_RATE_LIMIT_ENABLED": "0",
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen(
        [str(gunicorn), "-c", "gunicorn.conf.py", "api:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert _until(lambda: _tiers_as_of(base), 240, proc) == "2026-11-30"
        _write_tables(tmp_path, "2026-12-01")
        os.kill(proc.pid, signal.SIGHUP)
        assert _until(lambda: _tiers_as_of(base) == "2026-12-01", 60, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert "tier tables reloaded" in out
