"""``liqrisk calibrate``: predicted liquidation probability against what the mark price did."""

from __future__ import annotations

import json

import numpy as np
import pytest

import core
from api.cli import main
from backtest import calibrate as C
from backtest.synthetic import synthetic_market


def test_outcomes_brier_and_reliability_by_hand():
    frame = synthetic_market(bars=1500, seed=5)
    res = C.calibrate(frame, leverages=(10.0, 50.0), horizon_hours=12, models=("gbm",), step=12)
    s = res["samples"]
    assert len(s) == 2 * 2 * len(range(48, 1500 - 12 - 1, 12))
    row = s[(s["side"] == "long") & (s["leverage"] == 50.0)].iloc[3]
    t = frame.index.get_loc(row["time"])
    px = frame["mark_close"].iloc[t]
    lp = core.liquidation_price(side=1, entry_price=px, quantity=1000 / px, leverage=50.0)["liquidation_price"]
    assert row["outcome"] == float(frame["mark_low"].iloc[t + 1 : t + 13].min() <= lp)
    y, p = s["outcome"].to_numpy(), s["gbm"].to_numpy()
    assert res["brier"]["gbm"] == pytest.approx(np.mean((p - y) ** 2))
    table = res["reliability"]["gbm"]
    assert sum(r["count"] for r in table) == len(s)
    first = [r for r in table if r["count"]][0]
    in_bin = p < 0.1
    assert first["observed"] == pytest.approx(y[in_bin].mean()) and first["count"] == in_bin.sum()
    assert 0 < res["base_rate"] < 1  # 50x positions are liquidated within 12 h now and then, 10x rarely


def test_calibrate_cli_on_shared_data(shared_data, tmp_path, capsys):
    png = tmp_path / "r.png"
    argv = ["calibrate", "--data", str(shared_data / "binance_um_perp_btc_eth_sol_2025"), "--symbols", "SOL",
            "--start", "2025-09-01", "--end", "2025-10-31", "--leverage", "10,25", "--json", "--png",
            str(png)]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)["SOLUSDT"]
    assert set(out["brier"]) == {"gbm", "student_t"} and out["samples"] > 100
    assert all(0 <= b < out["reference_brier"] * 2 for b in out["brier"].values())
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["calibrate", "--data", str(tmp_path), "--symbols", "SOL"]) == 2
