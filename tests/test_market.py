"""Squeeze score and liquidation summary."""

from __future__ import annotations

import numpy as np
import pytest

import core
from core.market import wilder_rsi

N = 60


def _series(funding_end: float, oi_growth: float, ls_end: float, drift: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(drift + 0.002 * rng.standard_normal(N)))
    funding = 0.0001 + 0.00002 * rng.standard_normal(N)
    funding[-1] = funding_end
    oi = 1e9 * np.linspace(1.0, 1.0 + oi_growth, N)
    ls = 1.0 + 0.05 * rng.standard_normal(N)
    ls[-1] = ls_end
    return dict(close=close, funding_rate=funding, open_interest=oi, long_short_ratio=ls)


def test_short_squeeze_setup() -> None:
    r = core.squeeze_score(**_series(funding_end=-0.0004, oi_growth=0.3, ls_end=0.7, drift=-0.01))
    assert r["regime"] == "short_squeeze_setup"
    assert r["short_squeeze_score"] > 80 > r["long_squeeze_score"]
    assert r["components"]["funding_z"] < -3 and r["components"]["rsi_band"] == "below_70"


def test_long_squeeze_risk_and_rsi_band() -> None:
    r = core.squeeze_score(**_series(funding_end=0.0006, oi_growth=0.3, ls_end=1.4, drift=0.01))
    assert r["regime"] == "long_squeeze_risk" and r["long_squeeze_score"] > 80
    assert r["components"]["rsi"] > 90 and r["components"]["rsi_band"] == "above_90"


def test_neutral_and_underway_with_liquidations() -> None:
    calm = _series(funding_end=0.0001, oi_growth=0.0, ls_end=1.0, drift=0.0, seed=5)
    assert core.squeeze_score(**calm)["regime"] == "neutral"
    s = _series(funding_end=-0.0004, oi_growth=0.3, ls_end=0.7, drift=-0.01)
    s["close"][-1] = s["close"][-2] * 1.03  # the break up
    short_liq = np.full(N, 1e6)
    short_liq[-1] = 8e6
    r = core.squeeze_score(**s, long_liquidations=np.full(N, 1e6), short_liquidations=short_liq)
    assert r["regime"] == "short_squeeze_underway" and r["components"]["short_liquidation_surge"] == pytest.approx(8)


def test_funding_is_normalised_per_interval() -> None:
    base = _series(funding_end=-0.0004, oi_growth=0.3, ls_end=0.7, drift=-0.01)
    hourly = dict(base, funding_rate=base["funding_rate"] / 8)
    a = core.squeeze_score(**base)
    b = core.squeeze_score(**hourly, funding_interval_hours=1.0)
    assert a["components"]["funding_rate_annualized"] == pytest.approx(b["components"]["funding_rate_annualized"])
    assert a["components"]["funding_z"] == pytest.approx(b["components"]["funding_z"])


def test_squeeze_bad_input() -> None:
    s = _series(0.0001, 0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="^open_interest"):
        core.squeeze_score(**dict(s, open_interest=s["open_interest"][:-1]))
    with pytest.raises(ValueError, match="^close"):
        core.squeeze_score(**{k: v[:10] for k, v in s.items()})
    with pytest.raises(ValueError, match="^long_liquidations"):
        core.squeeze_score(**s, long_liquidations=np.ones(N))


def test_wilder_rsi_known_values() -> None:
    assert wilder_rsi(np.arange(1.0, 30.0))[-1] == 100.0
    assert np.isnan(wilder_rsi(np.arange(1.0, 30.0))[:14]).all()
    alternating = np.cumsum(np.tile([1.0, -1.0], 40)) + 100
    assert wilder_rsi(alternating)[-1] == pytest.approx(50.0, abs=2.0)


def test_liquidation_summary_short_squeeze_example() -> None:
    # BTC 294M liquidated with 92.06 % shorts -> short squeeze
    r = core.liquidation_summary(
        long_liquidations=[294e6 * 0.0794], short_liquidations=[294e6 * 0.9206], assets=["BTC"]
    )
    assert r["label"] == "short_squeeze" and r["dominant_side"] == "short"
    assert r["short_share"] == pytest.approx(0.9206) and r["total"] == pytest.approx(294e6)
    assert r["assets"][0]["asset"] == "BTC"


def test_liquidation_summary_windows() -> None:
    day = 86_400_000
    events = {
        "time_ms": [day * 10 + 1000, day * 10 + 5000, day * 11 - 10, day * 11 + 500],
        "side": ["long", "short", "short", "long"],
        "notional": [1e6, 5e6, 4e6, 9e6],
        "asset": ["BTC", "BTC", "ETH", "BTC"],
    }
    rolling = core.liquidation_summary(events=events, window="rolling_24h")
    assert rolling["total"] == pytest.approx(1e6 + 5e6 + 4e6 + 9e6)  # all within 24 h of the last event
    calendar = core.liquidation_summary(events=events, window="calendar_day", end_time_ms=day * 10 + 6000)
    assert calendar["total"] == pytest.approx(1e6 + 5e6 + 4e6) and calendar["label"] == "short_squeeze"
    assert {a["asset"] for a in calendar["assets"]} == {"BTC", "ETH"}
    with pytest.raises(ValueError, match="^events.side"):
        core.liquidation_summary(events=dict(events, side=["up"] * 4))


def test_market_routes_over_http(client) -> None:
    s = _series(funding_end=-0.0004, oi_growth=0.3, ls_end=0.7, drift=-0.01)
    body = client.post("/v1/market/squeeze-score", json={"series": {k: list(v) for k, v in s.items()}}).get_json()
    assert body["regime"] == "short_squeeze_setup"
    body = client.post(
        "/v1/market/liquidation-summary",
        json={"long_liquidations": [23.3e6], "short_liquidations": [270.7e6], "assets": ["BTC"]},
    ).get_json()
    assert body["label"] == "short_squeeze"
    resp = client.post("/v1/market/squeeze-score", json={"series": {"close": [1, 2]}})
    assert resp.status_code == 422
