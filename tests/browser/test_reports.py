"""The backtest and sweep HTML reports as a trader sees them, in Debian's Chromium: they draw, they say the data
is synthetic, and screenshots of both at desktop and phone width go to ``reports/screenshots/``."""

from __future__ import annotations

from pathlib import Path

import pytest

from backtest.report import html_report, sweep_report
from backtest.run import run_backtest, strategy, sweep
from backtest.synthetic import synthetic_market

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("reports")
    frame = synthetic_market(bars=3000, seed=7)
    about = {
        "data": "synthetic (seed 7)",
        "synthetic": True,
        "symbol": "BTCUSDT",
        "timeframe": "1h",
        "bars": len(frame),
        "start": frame.index[0].isoformat(),
        "end": frame.index[-1].isoformat(),
    }
    cfg = {"leverage": 5, "surge_mult": 2.0}
    html_report(frame, run_backtest(frame, cfg), str(folder / "backtest.html"), about=about)
    grid = {"breakout_window": [24, 48], "leverage": [2.0, 3.0, 5.0]}
    table = sweep(frame, grid, cfg, split=0.7)
    sweep_report(table, list(grid), str(folder / "sweep.html"), sort="is_sharpe", heatmap=list(grid), about=about,
                 strategy=strategy(cfg))  # fmt: skip
    return {"backtest": folder / "backtest.html", "sweep": folder / "sweep.html"}


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
@pytest.mark.parametrize("kind", ["backtest", "sweep"])
def test_report_draws_and_is_screenshotted(browser, reports, screenshots, kind, viewport) -> None:
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(reports[kind].resolve().as_uri())
    if kind == "backtest":
        page.wait_for_selector(".main-svg", timeout=60_000)
    text = page.inner_text("body").lower()
    assert "synthetic" in text and not errors, errors
    page.screenshot(path=str(screenshots / f"report-{kind}-{viewport}.png"), full_page=True)
    context.close()
