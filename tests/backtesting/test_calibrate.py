"""The liquidation probability checked against outcomes: on a market that is geometric Brownian motion with a
known volatility the closed form is calibrated; predictions never use later bars; the report is well formed; and
on BTC/ETH/SOL 1h 2025 the scores are sane."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from backtest import calibrate
from backtest.data import load_dataset

SOL_BTC_ETH = "binance_um_perp_btc_eth_sol_2025"


def gbm_frame(n: int = 6000, sub: int = 20, sigma: float = 0.8, seed: int = 1) -> pd.DataFrame:
    """Hourly bars of a GBM with zero drift (log drift −σ²/2) simulated in ``sub`` steps per bar, so that the
    bars' highs and lows are those of a nearly continuous path; mark = last."""
    rng = np.random.default_rng(seed)
    dt = 1.0 / (8760 * sub)
    steps = -0.5 * sigma**2 * dt + sigma * math.sqrt(dt) * rng.standard_normal(n * sub)
    price = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(steps)]))
    opens = price[:-1:sub][:n]
    path = price[1:].reshape(n, sub)
    frame = pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(path.max(axis=1), opens),
            "low": np.minimum(path.min(axis=1), opens),
            "close": path[:, -1],
        },
        index=pd.date_range("2025-01-01", periods=n, freq="1h", tz="UTC", name="time"),
    )
    for k in ("open", "high", "low", "close"):
        frame["mark_" + k] = frame[k]
    return frame


GBM_OPTIONS = dict(
    symbol="BTCUSDT",
    horizons_hours=(24.0,),
    leverages=(5.0, 10.0, 15.0, 20.0, 30.0, 50.0),
    models=("gbm", "gbm_bgk"),
    lam=0.98,
    monitoring_minutes=3.0,  # the simulated path's step
    maintenance_margin_rate=0.005,
)


@pytest.fixture(scope="module")
def gbm_samples():
    return calibrate.calibration_samples(gbm_frame(), **GBM_OPTIONS)


def test_scores_by_hand():
    p, y = np.array([0.1, 0.9, 0.5, 0.0]), np.array([0, 1, 1, 0])
    assert calibrate.brier_score(p, y) == pytest.approx((0.01 + 0.01 + 0.25 + 0.0) / 4)
    expected = -(math.log(0.9) + math.log(0.9) + math.log(0.5) + math.log(1 - 1e-6)) / 4
    assert calibrate.log_loss(p, y) == pytest.approx(expected)
    table = calibrate.reliability_table(p, y, (0.0, 0.5, 1.0))
    assert [r["count"] for r in table] == [2, 2]  # 0.5 belongs to the upper bin, 1.0 to the last
    assert table[1]["mean_predicted"] == pytest.approx(0.7) and table[1]["observed_frequency"] == 1.0
    s = calibrate.score(p, y)
    assert (
        s["base_rate"] == 0.5 and s["brier_reference"] == 0.25 and s["brier_skill"] == pytest.approx(1 - 0.0675 / 0.25)
    )
    assert math.isnan(calibrate.reliability_table([0.2], [0], (0.0, 0.1, 1.0))[0]["observed_frequency"])


def test_isotonic_fit_and_band_cutoffs_by_hand():
    x, fit = calibrate.isotonic_fit([0.1, 0.2, 0.3, 0.3], [1, 0, 1, 0])
    assert x.tolist() == [0.1, 0.2, 0.3] and fit.tolist() == [0.5, 0.5, 0.5]  # all pooled: 2 of 4
    x, fit = calibrate.isotonic_fit([0.3, 0.1, 0.2, 0.4], [1, 1, 0, 1])
    assert fit.tolist() == [0.5, 0.5, 1.0, 1.0]
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20_000)
    y = rng.uniform(0, 1, p.size) < p  # perfectly calibrated: the cut-offs are the targets
    x, fit = calibrate.isotonic_fit(p, y)
    assert np.all(np.diff(fit) >= 0) and np.average(fit, weights=np.ones(x.size)) == pytest.approx(y.mean(), abs=0.01)
    assert calibrate.band_cutoffs(p, y, (0.15, 0.35)) == pytest.approx([0.15, 0.35], abs=0.04)
    assert math.isnan(calibrate.band_cutoffs([0.1, 0.2], [0, 0], (0.5,))[0])


def test_gbm_market_is_calibrated(gbm_samples):
    samples, skipped = gbm_samples
    assert skipped["refused_by_tiers"] == 0 and len(samples) > 20_000
    y = samples["liquidated"].to_numpy(float)
    for model in ("gbm", "gbm_bgk"):
        s = calibrate.score(samples[f"p_{model}"], y)
        # better than forecasting the base rate for everyone, by a wide margin, and unbiased on average
        assert s["brier"] < 0.75 * s["brier_reference"]
        assert abs(s["mean_predicted"] - s["base_rate"]) < 0.03
        table = calibrate.reliability_table(samples[f"p_{model}"], y)
        populated = [r for r in table if r["count"] >= 1000]
        assert len(populated) >= 3
        for r in populated:  # overlapping 24 h windows: ~count/24 independent cases, hence the tolerance
            assert abs(r["observed_frequency"] - r["mean_predicted"]) < 0.12, r
    # continuous-path outcomes: the 3-minute BGK shift is tiny, the two models nearly agree
    assert np.max(np.abs(samples["p_gbm"] - samples["p_gbm_bgk"])) < 0.05


def test_wrong_volatility_is_caught(gbm_samples):
    """The check has power: the same positions priced with half the volatility are visibly miscalibrated."""
    import core

    samples, _ = gbm_samples
    half = core.liquidation_probability(
        side=samples["side"].to_numpy(),
        mark_price=samples["mark_price"].to_numpy(),
        liquidation_price=samples["liquidation_price"].to_numpy(),
        volatility=0.5 * samples["volatility"].to_numpy(),
        horizon_hours=samples["horizon_hours"].to_numpy(),
    )["probability"]
    y = samples["liquidated"].to_numpy(float)
    good, bad = calibrate.score(samples["p_gbm"], y), calibrate.score(half, y)
    assert bad["brier"] > good["brier"] + 0.02
    assert bad["mean_predicted"] < bad["base_rate"] - 0.05
    worst = max(
        abs(r["observed_frequency"] - r["mean_predicted"])
        for r in calibrate.reliability_table(half, y)
        if r["count"] >= 1000
    )
    assert worst > 0.15


def test_no_look_ahead():
    frame = gbm_frame(n=900, seed=3)
    opts = dict(symbol="BTCUSDT", horizons_hours=(24.0, 48.0), leverages=(10.0, 50.0), step=7, warmup=100,
                paths=200, maintenance_margin_rate=0.005)  # fmt: skip
    base, _ = calibrate.calibration_samples(frame, **opts)
    cut = 600
    changed = frame.copy()
    rng = np.random.default_rng(9)
    later = changed.index[cut + 1 :]
    for k in ("close", "mark_close", "mark_high", "mark_low"):
        changed.loc[later, k] = changed.loc[later, k] * rng.uniform(0.5, 1.5, len(later))
    after, _ = calibrate.calibration_samples(changed, **opts)
    cols = ["bar", "horizon_hours", "leverage", "side", "entry_price", "mark_price", "liquidation_price",
            "volatility", "p_gbm", "p_gbm_bgk", "p_student_t"]  # fmt: skip
    before_cut = base[base["bar"] <= cut][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(before_cut, after[after["bar"] <= cut][cols].reset_index(drop=True))
    assert len(before_cut) > 0
    # the volatility at a bar is the core estimate from closes up to that bar only
    from core.risk import estimate_volatility

    v = calibrate.trailing_volatility(frame["mark_close"].to_numpy(), 8760.0, 0.94, bars=[cut])[cut]
    window = frame["mark_close"].to_numpy()[max(0, cut - calibrate.ewma_window(0.94)) : cut + 1]
    assert v == estimate_volatility(window, 8760.0, "ewma", 0.94)


def test_report_is_well_formed(tmp_path, gbm_samples):
    samples, _ = gbm_samples
    rep = calibrate.calibration_report(samples)
    assert set(rep["models"]) == {"gbm", "gbm_bgk"}
    for s in rep["models"].values():
        assert sum(r["count"] for r in s["reliability"]) == s["count"] == len(samples)
        assert sum(r["count"] for r in s["bands"]) == s["count"]
        assert sum(r["liquidated"] for r in s["reliability"]) == s["liquidated"] == int(samples["liquidated"].sum())
        assert [r["band"] for r in s["bands"]] == list(calibrate.BAND_NAMES)
        d = s["decomposition"]
        # Murphy: BS = REL − RES + UNC up to the within-bin variance of the forecasts
        assert d["reliability"] - d["resolution"] + d["uncertainty"] == pytest.approx(s["brier"], abs=0.01)
    assert sum(r["count"] for r in rep["by_leverage"]) == len(samples)
    cut = rep["by_horizon"][0]["gbm"]["band_cutoffs"]
    assert list(cut) == list(calibrate.BAND_NAMES[1:]) and all(math.isnan(v) or 0 <= v <= 1 for v in cut.values())
    assert {r["leverage"] for r in rep["by_leverage"]} == set(GBM_OPTIONS["leverages"])
    path = calibrate.write_json({"symbol": "X", **rep}, str(tmp_path / "r.json"))
    back = json.loads(open(path, encoding="utf-8").read())
    assert back["models"]["gbm"]["brier"] == pytest.approx(rep["models"]["gbm"]["brier"])
    png = calibrate.reliability_png({"GBM": rep}, str(tmp_path / "r.png"))
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_bad_options_name_the_argument():
    frame = gbm_frame(n=400)
    for kw, word in [
        ({"models": ("gbm", "magic")}, "model"),
        ({"leverages": (0.5,)}, "leverage"),
        ({"horizons_hours": (1.5,)}, "horizon"),
        ({"step": 0}, "step"),
        ({"sides": ("up",)}, "side"),
        ({"lam": 1.0}, "lam"),
    ]:
        with pytest.raises(ValueError, match=word):
            calibrate.calibration_samples(frame, symbol="BTCUSDT", **kw)


def test_missing_bars_are_left_out():
    frame = gbm_frame(n=700, seed=4)
    holed = frame.drop(frame.index[500])
    opts = dict(symbol="BTCUSDT", horizons_hours=(24.0,), leverages=(20.0,), models=("gbm",), warmup=50)
    s, skipped = calibrate.calibration_samples(holed, **opts)
    assert skipped["incomplete_history"] > 0  # the volatility window holds the gap
    assert not ((s["bar"] >= 500 - 24) & (s["bar"] < 500)).any()  # the horizon holds the gap
    assert (s["bar"] < 500 - 24).any()


def test_positions_the_tiers_refuse_are_counted_not_scored():
    frame = gbm_frame(n=400, seed=5)
    calls = []
    s, skipped = calibrate.calibration_samples(
        frame,
        symbol="SOLUSDT",
        horizons_hours=(24.0,),
        leverages=(10.0, 150.0),
        warmup=100,
        step=10,
        paths=100,
        progress=lambda k, n: calls.append((k, n)),
    )
    assert set(s["leverage"]) == {10.0} and skipped["refused_by_tiers"] == len(s)  # 150x is above SOLUSDT's cap
    assert calls[-1][0] == calls[-1][1] == len(range(100, 400, 10))  # one call per bar of the Monte Carlo
    empty = calibrate.calibrate(frame.iloc[:120], symbol="SOLUSDT", models=("gbm",), warmup=100)
    assert empty["predictions"] == 0 and math.isnan(empty["models"]["gbm"]["brier"])


def test_real_btc_eth_sol_1h(shared_data):
    folder = str(shared_data / SOL_BTC_ETH)
    frames = {}
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
        frame, _, warnings = load_dataset(folder, symbol, "1h")
        assert not any("mark" in w for w in warnings)
        frames[symbol] = frame
    rep = calibrate.calibrate(frames, step=72, leverages=(2.0, 5.0, 10.0, 20.0, 50.0), paths=200)
    assert rep["symbols"] == list(frames) and set(rep["by_symbol"]) == set(frames)
    assert rep["predictions"] == sum(r["predictions"] for r in rep["by_symbol"].values())
    for symbol, one in [*rep["by_symbol"].items(), ("all", rep)]:
        n_pred = one["predictions"]
        # the bars replayed (the 1h files have no gaps) × horizons × leverages × sides
        bars = sum(len(range(calibrate.ewma_window(0.94), len(frames[s]), 72)) for s in frames if symbol in (s, "all"))
        assert bars > 120 and n_pred + sum(one["skipped"].values()) == bars * 2 * 5 * 2
        assert one["skipped"]["horizon_beyond_data"] > 0 and one["skipped"]["incomplete_history"] == 0
        assert sum(r["count"] for r in one["by_horizon"]) == n_pred
        for model, s in one["models"].items():
            assert 0.0 <= s["brier"] <= 0.25, (symbol, model)
            assert s["brier"] < s["brier_reference"], (symbol, model)  # more skill than the base rate
            assert sum(r["count"] for r in s["reliability"]) == n_pred
            assert 0.0 < s["base_rate"] < 1.0
        low = [r for r in one["by_leverage"] if r["leverage"] == 2.0 and r["horizon_hours"] == 24.0]
        high = [r for r in one["by_leverage"] if r["leverage"] == 50.0 and r["horizon_hours"] == 24.0]
        assert max(r["base_rate"] for r in low) < min(r["base_rate"] for r in high)


def test_cli_on_real_data(shared_data, tmp_path, capsys):
    from api.cli import main

    folder = str(shared_data / SOL_BTC_ETH)
    png, out = str(tmp_path / "sol.png"), str(tmp_path / "sol.json")
    argv = ["calibrate", "--data", folder, "--symbol", "SOLUSDT", "--timeframe", "1h", "--horizon", "24,168",
            "--leverage", "2,5,10,20", "--model", "gbm,gbm_bgk", "--step", "48", "--json", "--png", png,
            "--out", out, "--start", "2025-06-01", "--bands", "0.001,0.02,0.1,0.35"]  # fmt: skip
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["symbols"] == ["SOLUSDT"] and set(printed["models"]) == {"gbm", "gbm_bgk"}
    assert printed["band_edges"] == [0.0, 0.001, 0.02, 0.1, 0.35, 1.0]
    assert printed["horizons_hours"] == [24.0, 168.0] and printed["leverages"] == [2.0, 5.0, 10.0, 20.0]
    assert json.loads(open(out, encoding="utf-8").read())["predictions"] == printed["predictions"]
    assert open(png, "rb").read(4) == b"\x89PNG"
    assert main(["calibrate", "--data", folder, "--symbol", "SOLUSDT", "--model", "nope"]) == 2
    assert "model" in capsys.readouterr().err
    assert main(["calibrate", "--data", folder, "--symbol", "SOLUSDT", "--bands", "0.2,0.1,0.3,0.4"]) == 2
    assert "bands" in capsys.readouterr().err
