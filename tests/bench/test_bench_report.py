"""The backtest report of SOL 5 m over 2025 (105,120 bars; synthetic bars of that length without ../shared/data):
its size in bytes, the time to write it, and the time Chromium takes from opening the file to the chart drawn
(Debian's chromium through Playwright; skipped where either is missing). Goal: <= 2 MB and <= 3 s."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from .test_bench_backtest import sol_5m  # noqa: F401 - the shared fixture


@pytest.fixture(scope="module")
def sol_report(sol_5m, tmp_path_factory):  # noqa: F811
    from backtest.report import html_report
    from backtest.run import run_backtest

    frame, source = sol_5m
    result = run_backtest(frame, {"symbol": "SOLUSDT"})
    path = tmp_path_factory.mktemp("report") / "sol.html"
    start = time.perf_counter()
    html_report(frame, result, str(path), about={"data": source, "symbol": "SOLUSDT", "timeframe": "5m"})
    return path, source, time.perf_counter() - start


def test_report_size_and_write_time(benchmark, sol_report) -> None:
    path, source, seconds = sol_report
    benchmark.extra_info.update({"data": source, "bytes": path.stat().st_size, "write_seconds": round(seconds, 3)})
    benchmark.pedantic(path.stat, rounds=1, iterations=1)
    assert path.stat().st_size > 0


def test_report_renders_in_chromium(benchmark, sol_report) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed")
    path, source, _ = sol_report
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def render() -> None:
            page.goto(Path(path).resolve().as_uri())
            page.wait_for_selector(".main-svg", timeout=60_000)
            page.wait_for_function("() => document.querySelectorAll('.scatterlayer .trace').length >= 3")

        render()  # the browser's own start-up and first parse are not the report's cost
        benchmark.extra_info.update({"data": source, "bytes": path.stat().st_size})
        benchmark.pedantic(render, rounds=3, iterations=1)
        browser.close()
