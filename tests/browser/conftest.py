"""A live app on a free loopback port and Debian's Chromium driven by Playwright (never a downloaded browser).

The tests skip, saying why, when the ``playwright`` package or ``/usr/bin/chromium`` (installed by
``scripts/ensure-chromium.sh`` from ``make test``) is missing. Screenshots go to ``reports/screenshots/``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from serving import served

CHROMIUM = Path(os.environ.get("LIQRISK_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "reports" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@contextlib.contextmanager
def _app(folder: Path):
    """The TestConfig app. Where backtests run as jobs (the app has ``api.jobs``), also a redis-server and one
    ``liqrisk worker`` started as the jobs tests start them (tests/jobs/jobkit.py), so ``POST /v1/backtests``
    answers 202 and the page polls the job; without redis-server the backtest tab's test skips."""
    from api import TestConfig, create_app

    if importlib.util.find_spec("api.jobs") is None:
        yield create_app(TestConfig)
        return
    sys.path.insert(0, str(ROOT / "tests" / "jobs"))
    import jobkit

    if not jobkit.HAVE_REDIS:
        yield create_app(TestConfig)
        return
    data_dir = folder / "data"
    data_dir.mkdir()
    redis = jobkit.RedisServer(folder).start()
    try:
        app = jobkit.make_app(redis.url, data_dir)
        worker = jobkit.Worker("browser", jobkit.worker_env(redis.url, data_dir), folder / "worker.log").wait_ready(app)
        try:
            yield app
        finally:
            worker.stop()
    finally:
        redis.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The app on a free loopback port (with a queue and a worker when redis-server is there); its base URL."""
    with _app(tmp_path_factory.mktemp("browser")) as app, served(app) as url:
        yield url


@pytest.fixture(scope="session")
def keyed_server():
    """The app with ``LIQRISK_API_KEYS=browser-key`` on another free port; yields its base URL."""
    from api import TestConfig, create_app

    with served(create_app(type("KeyedConfig", (TestConfig,), {"API_KEYS": ("browser-key",)}))) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[dev]')")
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: run scripts/ensure-chromium.sh (Debian package chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request) -> str:
    return request.param


@pytest.fixture
def page(browser, server, viewport):
    """A fresh page at the given viewport; fails the test on any script error or CSP violation it logs."""
    context = browser.new_context(viewport=VIEWPORTS[viewport], base_url=server, reduced_motion="reduce")
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    pg.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" and "status of 4" not in m.text  # the API's own 4xx answers are expected
            else None
        ),
    )
    pg.viewport_name = viewport
    yield pg
    context.close()
    assert not problems, problems


@pytest.fixture(scope="session")
def api(server):
    """Call the live server outside the browser: (status, parsed body)."""

    def post(path: str, body: dict | None) -> tuple[int, dict]:
        """POST ``body`` as JSON to ``path``, or GET it when ``body`` is None."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(server + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    return post


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
