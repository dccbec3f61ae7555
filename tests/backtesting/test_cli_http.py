"""``liqrisk backtest`` / ``liqrisk sweep`` end to end, and ``POST /v1/backtests`` rejecting bad input before
queueing (the queued runs themselves: tests/jobs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from api.cli import main
from backtest import load_dataset, run_backtest, synthetic_market
from backtest.metrics import METRICS


def test_backtest_cli_json_report_png_and_trades(tmp_path, capsys):
    html, png, trades = tmp_path / "r.html", tmp_path / "r.png", tmp_path / "t.csv"
    argv = ["backtest", "--bars", "3000", "--leverage", "5", "--stop-pct", "off", "--json", "--report", str(html),
            "--png", str(png), "--trades", str(trades)]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    metrics = out["metrics"]
    assert set(metrics) == set(METRICS)
    # the command line runs the library: the same seeded market (seed 7) and strategy give the same numbers
    library = run_backtest(synthetic_market(bars=3000, seed=7), {"leverage": 5, "stop_pct": None})
    assert metrics == pytest.approx(library["metrics"], rel=1e-12, nan_ok=True)
    assert out["warnings"] == library["warnings"]
    assert "Plotly.newPlot" in html.read_text() and "<table>" in html.read_text()
    assert png.read_bytes()[:4] == b"\x89PNG"
    rows = trades.read_text().splitlines()
    assert rows[0].startswith("column,side,entry_time") and len(rows) == 1 + metrics["trades"] > 1


def test_backtest_cli_rejects_bad_options(capsys):
    assert main(["backtest", "--bars", "500", "--leverage", "0.5"]) == 2
    assert "leverage" in capsys.readouterr().err
    assert main(["backtest", "--data", "/nonexistent/folder"]) == 2
    with pytest.raises(SystemExit):
        main(["backtest", "--leverage", "lots"])


def test_sweep_cli_json(capsys):
    assert main(["sweep", "--bars", "3000", "--leverage", "2,5", "--surge-mult", "0,3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["results"]) == 4 and "is_sharpe" in out["results"][0] and "oos_sharpe" in out["results"][0]
    assert set(out["overfitting"]) >= {"rank_correlation", "best_in_sample", "its_out_of_sample"}


def test_sweep_cli_table_with_progress(capsys, tmp_path):
    assert main(["sweep", "--bars", "2000", "--breakout-window", "24,48", "--split", "0", "--csv",
                 str(tmp_path / "s.csv")]) == 0  # fmt: skip
    cap = capsys.readouterr()
    assert "breakout_window" in cap.out and "sharpe" in cap.out and cap.err.count("combo") == 1
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 3


def test_backtest_cli_on_real_data(shared_data, capsys):
    folder = shared_data / "binance_um_perp_btc_eth_sol_2025"
    argv = ["backtest", "--data", str(folder), "--symbol", "SOL", "--timeframe", "1h", "--json", "--start",
            "2025-09-01", "--end", "2025-11-30", "--funding-threshold", "-0.0005", "--surge-mult", "0"]  # fmt: skip
    assert main(argv) == 0
    got = json.loads(capsys.readouterr().out)["metrics"]
    frame, _, _ = load_dataset(str(folder), "SOL", "1h")
    frame = frame[(frame.index >= "2025-09-01") & (frame.index <= "2025-11-30")]
    library = run_backtest(frame, {"symbol": "SOLUSDT", "funding_threshold": -0.0005, "surge_mult": 0.0})["metrics"]
    assert got["trades"] == library["trades"] > 0
    assert got["total_return"] == pytest.approx(library["total_return"], rel=1e-12)


def bars(n=300, seed=0):
    rng = np.random.default_rng(seed)
    p = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.r_[100.0, p[:-1]]
    return {
        "time": [1.7e12 + i * 3.6e6 for i in range(n)],
        "open": o.tolist(),
        "high": (np.maximum(o, p) * 1.002).tolist(),
        "low": (np.minimum(o, p) * 0.998).tolist(),
        "close": p.tolist(),
        "funding_rate": [(-0.001 if i % 8 == 0 else None) for i in range(n)],
    }


@pytest.mark.parametrize(
    "payload,status,field",
    [
        ({"dataset": {"name": "synthetic", "bars": 50_000}}, 413, "dataset.bars"),
        ({"dataset": {"name": "synthetic"}, "bars": bars()}, 422, "dataset"),
        ({}, 422, "dataset"),
        ({"dataset": {"name": "binance"}}, 422, "dataset.name"),
        ({"dataset": {"name": "synthetic"}, "strategy": {"leverage": 200}}, 422, "strategy.leverage"),
        ({"dataset": {"name": "synthetic"}, "strategy": {"leverage": "5"}}, 422, "strategy.leverage"),
        ({"dataset": {"name": "synthetic"}, "strategy": {"hold_bars": 1.5}}, 422, "strategy.hold_bars"),
        ({"dataset": {"name": "synthetic"}, "strategy": {"bogus": 1}}, 422, "strategy.bogus"),
        ({"dataset": {"name": "synthetic"}, "strategy": {"size_mode": "risk", "stop_pct": None}}, 422,
         "strategy.stop_pct"),
        ({"dataset": {"name": "synthetic", "bars": 500}, "strategy": {"symbol": "NOPEUSDT"}}, 404, "strategy.symbol"),
        ({"bars": {**bars(), "close": bars()["close"][:-1]}}, 422, "bars.close"),
        ({"bars": {**bars(), "time": bars()["time"][::-1]}}, 422, "bars.time"),
        ({"bars": {**bars(), "low": [0.0] * 300}}, 422, "bars.low"),
        ({"dataset": {"name": "synthetic"}, "include_trades": "yes"}, 422, "include_trades"),
    ],
)  # fmt: skip
def test_http_backtest_bad_input(client, payload, status, field):
    r = client.post("/v1/backtests", json=payload)
    assert r.status_code == status, r.json
    assert r.headers["Content-Type"] == "application/problem+json"
    assert field in r.json["errors"], r.json
