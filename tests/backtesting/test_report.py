"""Reports a trader reads: the backtest HTML says what was tested (data source, a synthetic label, period,
symbol, timeframe, every setting, warnings), formats its metrics, lists the trades and stays small; the
sweep report has a sortable table and a heatmap; the sweep table fits 100 columns."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from api.cli import main
from backtest import run_backtest, synthetic_market
from backtest.formatting import metric, setting, sweep_table
from backtest.params import DEFAULTS
from backtest.report import downsample

MB = 1024 * 1024


def _visible(page: str) -> str:
    text = re.sub(r"<script.*?</script>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


def test_backtest_report_and_json_state_what_was_tested(tmp_path, capsys) -> None:
    html = tmp_path / "r.html"
    argv = ["backtest", "--bars", "3000", "--timeframe", "1h", "--leverage", "5", "--stop-pct", "off",
            "--json", "--report", str(html)]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["synthetic"] is True and "synthetic" in out["data"]
    assert out["bars"] == 3000 and out["start"] < out["end"] and out["timeframe"] == "1h"
    assert out["strategy"]["leverage"] == 5 and out["strategy"]["stop_pct"] is None
    library = run_backtest(synthetic_market(bars=3000, timeframe="1h", seed=7), {"leverage": 5, "stop_pct": None})
    assert out["warnings"] == library["warnings"] and out["metrics"]["trades"] == library["metrics"]["trades"]
    page = html.read_text()
    text = _visible(page)
    assert "SYNTHETIC DATA" in text and "not market history" in text
    for label in ("data source", "symbol", "timeframe", "period", "Data warnings", "Settings", "Trades ("):
        assert label in text, label
    for name in DEFAULTS:  # every setting, formatted ("off" for the stop switched off)
        assert f" {name} " in text, name
    assert " stop_pct off " in text and " leverage 5 " in text
    assert re.search(r"total_return .*? -?\d+\.\d\d % ", text)
    assert not re.search(r"\d\.\d{5,}|e-0\d", text)  # no raw decimals in the readable part
    for column in ("entry time", "entry price", "exit time", "exit price", "reason", "net PnL", "fees", "funding"):
        assert column in text, column
    assert (
        page.count("<script src='plotly-") == 1 and (tmp_path / page.split("<script src='")[1].split("'")[0]).is_file()
    )
    assert html.stat().st_size < 2 * MB


def test_report_of_a_real_year_of_5m_bars_is_small(shared_data, tmp_path, capsys) -> None:
    """SOL 5m over 2025 (105,120 bars): the page stays under 2 MB with every trade listed."""
    html = tmp_path / "sol.html"
    argv = ["backtest", "--data", str(shared_data / "binance_um_perp_btc_eth_sol_2025"), "--symbol", "SOL",
            "--timeframe", "5m", "--start", "2025-01-01", "--end", "2025-12-31T23:59", "--report", str(html),
            "--json"]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bars"] == 105_120 and out["synthetic"] is False
    text = _visible(html.read_text())
    assert "SYNTHETIC" not in text and "binance_um_perp_btc_eth_sol_2025" in text and "SOLUSDT" in text
    assert "2025-01-01 00:00 UTC → 2025-12-31 23:55 UTC" in text
    assert all(w in text for w in out["warnings"])
    assert f"Trades ({out['metrics']['trades']:,d})" in text
    assert html.stat().st_size < 2 * MB


def test_downsample_keeps_the_extremes() -> None:
    rng = np.random.default_rng(3)
    y = np.cumsum(rng.normal(size=100_000))
    y[54_321] = 1e3  # a wick
    x = np.arange(y.size)
    xs, ys = downsample(x, y, 3000)
    assert len(ys) <= 3000 and np.all(np.diff(xs) > 0)
    assert ys.max() == y.max() and ys.min() == y.min() and 54_321 in xs
    assert downsample(x[:10], y[:10], 3000)[1].tolist() == y[:10].tolist()


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [("total_return", -0.0509869, "-5.10 %"), ("sharpe", 2.50576e-05, "0.00"), ("fees_paid", 1234.5, "1,234.50"),
     ("trades", 12, "12"), ("profit_factor", math.inf, "∞"), ("win_rate", None, "—"), ("cagr", math.nan, "—"),
     ("entry_price", 101516.5, "101,516.50"), ("exit_price", 0.00123456, "0.00123456")],
)  # fmt: skip
def test_metric_formats(name, value, text) -> None:
    assert metric(name, value) == text


def test_settings_read_off_and_percent() -> None:
    assert setting("stop_pct", None) == "off" and setting("funding_threshold", math.nan) == "off"
    assert setting("stop_pct", 0.04) == "4 %" and setting("leverage", 3.0) == "3"


def test_sweep_table_fits_100_columns_and_says_what_is_cut() -> None:
    rng = np.random.default_rng(0)
    n = 48
    table = pd.DataFrame({"breakout_window": np.repeat([24, 48, 96, 192], 12), "stop_pct": [None, 0.02, 0.04] * 16,
                          "funding_threshold": [math.nan, -0.0003] * 24,
                          "leverage": np.tile([2.0, 3.0, 5.0, 10.0], 12)})  # fmt: skip
    for prefix in ("is_", "oos_"):
        for m in ("sharpe", "total_return", "max_drawdown", "trades", "win_rate", "liquidations", "cagr", "sortino"):
            table[prefix + m] = rng.normal(size=n) if m != "trades" else rng.integers(0, 50, n)
    text = sweep_table(table.sort_values("is_sharpe", ascending=False), list(table.columns[:4]), "is_sharpe", 20)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "NaN" not in text and "None" not in text and " off " in f" {text} "
    assert "20 of 48 rows" in text and "IS sharpe" in lines[0] and "--csv" in text
    assert re.search(r"-?\d+\.\d\d %", text)


def test_sweep_cli_report_has_a_heatmap_and_a_sortable_table(tmp_path, capsys) -> None:
    html = tmp_path / "s.html"
    argv = ["sweep", "--bars", "2000", "--leverage", "2,5", "--surge-mult", "0,3", "--stop-pct", "off,0.04",
            "--report", str(html), "--heatmap", "leverage,stop_pct"]  # fmt: skip
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert max(len(line) for line in cap.out.splitlines()) <= 100
    assert "8 of 8 rows" in cap.out and "NaN" not in cap.out and cap.err.count("combos") == 1
    page = html.read_text()
    text = _visible(page)
    assert "SYNTHETIC DATA" in text and "by leverage and stop_pct" in text
    heat = page.split("by leverage and stop_pct")[1].split("All 8 combinations")[0]
    assert heat.count("<td style='background:") == 4 and "off" in heat  # 2 leverages × 2 stops
    assert page.count("<tr>") >= 8 + 4 and "table class=sortable" in page and "addEventListener('click'" in page
    assert (
        main(["sweep", "--bars", "2000", "--leverage", "2,5", "--report", str(html), "--heatmap", "leverage,nope"]) == 2
    )
