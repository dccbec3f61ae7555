"""Liquidation probability and position sizing (the reference values of docs/risk-models.md §1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import core
from core.risk import estimate_volatility

# docs/risk-models.md §1.1: BTC 100,000, 10x, MMR 0.5 %: long LP 90,452.26, short 109,452.74; sigma 60 %, mu 0
MARKET = dict(mark_price=100_000, volatility=0.6)
LP = {"long": 90452.26, "short": 109452.74}
REFERENCE = [
    (24, "long", 0.00147, 3.195),
    (24, "short", 0.00385, None),
    (168, "long", 0.2387, 1.208),
    (168, "short", 0.2647, None),
    (720, "long", 0.5877, 0.583),
    (720, "short", 0.5723, None),
]


@pytest.mark.parametrize(("hours", "side", "expected", "d"), REFERENCE)
def test_closed_form_matches_reference(hours, side, expected, d) -> None:
    r = core.liquidation_probability(**MARKET, side=side, liquidation_price=LP[side], horizon_hours=hours)
    assert r["probability"] == pytest.approx(expected, abs=5e-5 if expected < 0.01 else 5e-4)
    if d is not None:
        assert r["distance_sigmas"] == pytest.approx(d, abs=1e-3)


def test_bgk_correction_matches_hourly_monte_carlo_reference() -> None:
    # docs/risk-models.md §1.2: 7-day long, hourly monitoring: Monte Carlo 0.22144, corrected formula 0.22146
    r = core.liquidation_probability(
        **MARKET, side="long", liquidation_price=LP["long"], horizon_hours=168, monitoring_minutes=60
    )
    assert r["probability"] == pytest.approx(0.22146, abs=2e-5)


@pytest.mark.parametrize("side,lp", LP.items())
def test_monte_carlo_with_thin_tails_agrees_with_bgk_formula(side, lp) -> None:
    kw = dict(MARKET, side=side, liquidation_price=lp, horizon_hours=168)
    mc = core.liquidation_probability(**kw, model="student_t", degrees_of_freedom=1e4, paths=40_000, seed=3)
    cf = core.liquidation_probability(**kw, monitoring_minutes=60)
    assert abs(mc["probability"] - cf["probability"]) < 4 * mc["standard_error"]


def test_fat_tails_raise_short_horizon_risk() -> None:
    # docs/risk-models.md §1.3: 1 day, hourly steps: Gaussian 0.0011 vs t3 0.0038 (about 3.4x)
    kw = dict(MARKET, side="long", liquidation_price=LP["long"], horizon_hours=24)
    t3 = core.liquidation_probability(**kw, model="student_t", degrees_of_freedom=3, paths=100_000, seed=1)
    gauss = core.liquidation_probability(**kw, monitoring_minutes=60)
    assert t3["probability"] == pytest.approx(0.0038, abs=4 * t3["standard_error"])
    assert t3["probability"] > 2.5 * gauss["probability"]
    again = core.liquidation_probability(**kw, model="student_t", degrees_of_freedom=3, paths=100_000, seed=1)
    assert again == t3  # seeded


def test_no_liquidation_and_already_beyond() -> None:
    none = core.liquidation_probability(side="long", mark_price=100, liquidation_price=np.nan, volatility=0.5)
    assert none["probability"] == 0 and math.isnan(none["distance_sigmas"]) and none["band"] == "minimal"
    beyond = core.liquidation_probability(side="short", mark_price=120, liquidation_price=110, volatility=0.5)
    assert beyond["probability"] == 1 and beyond["band"] == "extreme"


def test_probability_from_the_position_and_arrays() -> None:
    r = core.liquidation_probability(
        side=np.array(["long", "short"]),
        mark_price=100_000,
        entry_price=100_000,
        quantity=1.0,
        leverage=10.0,
        volatility=0.6,
        horizon_hours=168,
    )
    lp = core.liquidation_price(side=np.array([1.0, -1.0]), entry_price=100_000, quantity=1.0, leverage=10.0)
    np.testing.assert_allclose(r["liquidation_price"], lp["liquidation_price"])
    assert r["probability"].shape == (2,) and (r["probability"] > 0.2).all()


@settings(max_examples=60, deadline=None)
@given(
    side=st.sampled_from(["long", "short"]),
    lev=st.floats(1.5, 40),
    vol=st.floats(0.1, 2.0),
    hours=st.floats(1, 2000),
    drift=st.sampled_from([0.0, -0.8, -0.2, 0.3, 1.0]),
)
def test_monotonic_in_leverage_volatility_and_horizon(side, lev, vol, hours, drift) -> None:
    def p(lev=lev, vol=vol, hours=hours):
        return core.liquidation_probability(
            side=side,
            mark_price=100_000,
            entry_price=100_000,
            quantity=1.0,
            leverage=lev,
            volatility=vol,
            horizon_hours=hours,
            drift=drift,
        )["probability"]

    base = p()
    assert p(lev=lev * 1.2) >= base - 1e-12
    assert p(hours=hours * 1.2) >= base - 1e-12
    if drift == 0:  # with a drift towards the barrier, more volatility can make a hit less certain
        assert p(vol=vol * 1.2) >= base - 1e-12


def test_volatility_estimates() -> None:
    closes = 100 * np.exp(np.cumsum(np.tile([0.01, -0.01], 200)))
    assert estimate_volatility(closes, 8760, "ewma") == pytest.approx(0.01 * math.sqrt(8760), rel=1e-6)
    realized = estimate_volatility(closes, 365, "realized")
    assert realized == pytest.approx(np.std(np.diff(np.log(closes)), ddof=1) * math.sqrt(365))
    r = core.liquidation_probability(
        side="long", mark_price=100, liquidation_price=90, closes=list(closes), periods_per_year=8760, horizon_hours=24
    )
    assert r["volatility"] == pytest.approx(0.01 * math.sqrt(8760), rel=1e-6)
    with pytest.raises(ValueError, match="^periods_per_year"):
        core.liquidation_probability(side="long", mark_price=100, liquidation_price=90, closes=list(closes))


def test_position_size_loses_the_risk_fraction_at_the_stop() -> None:
    r = core.position_size(
        equity=10_000,
        risk_fraction=0.01,
        side="long",
        entry_price=100_000,
        stop_price=98_000,
        open_fee_rate=0.0005,
        close_fee_rate=0.0005,
    )
    q = r["quantity"]
    loss = q * (100_000 - 98_000) + q * 100_000 * 0.0005 + q * 98_000 * 0.0005
    assert loss == pytest.approx(100.0) and r["risk_amount"] == 100.0
    # at the highest leverage the liquidation price sits just beyond the stop (0.5 % buffer)
    lp = core.liquidation_price(side="long", entry_price=100_000, quantity=q, leverage=r["max_leverage_beyond_stop"])
    assert lp["liquidation_price"] == pytest.approx(98_000 * (1 - 0.005), rel=1e-6)
    # the recommended leverage keeps liquidation at least twice the stop distance away
    rec = core.liquidation_price(side="long", entry_price=100_000, quantity=q, leverage=r["recommended_leverage"])
    assert 100_000 - rec["liquidation_price"] >= 2 * 2_000
    assert r["liquidation_price"] == pytest.approx(rec["liquidation_price"])


def test_position_size_errors_and_short() -> None:
    with pytest.raises(ValueError, match="^stop_price"):
        core.position_size(equity=1000, risk_fraction=0.02, side="short", entry_price=100, stop_price=95)
    with pytest.raises(ValueError, match="^leverage: at 100x"):
        core.position_size(
            equity=1000, risk_fraction=0.02, side="long", entry_price=100_000, stop_price=98_000, leverage=100
        )
    r = core.position_size(
        equity=1000, risk_fraction=0.02, side="short", entry_price=100_000, stop_price=101_000, leverage=5
    )
    assert r["liquidation_price"] > 101_000 and r["quantity"] == pytest.approx(0.02)


def test_risk_routes_over_http(client) -> None:
    body = client.post(
        "/v1/risk/liquidation-probability",
        json={
            "side": "long",
            "mark_price": 100000,
            "liquidation_price": 90452.26,
            "volatility": 0.6,
            "horizon_hours": 168,
        },
    ).get_json()
    assert body["probability"] == pytest.approx(0.2387, abs=5e-4) and body["band"] == "high"
    resp = client.post(
        "/v1/risk/position-size",
        json={"equity": 10000, "risk_fraction": 0.01, "side": "long", "entry_price": 100000, "stop_price": 101000},
    )
    assert resp.status_code == 422 and "stop_price" in resp.get_json()["errors"]
    resp = client.post(
        "/v1/risk/liquidation-probability",
        json={"side": "long", "mark_price": 100000, "entry_price": 100000, "volatility": 0.6},
    )
    assert resp.status_code == 422 and "quantity" in resp.get_json()["errors"]


@pytest.mark.parametrize(
    ("probability", "band"),
    [(0.0, "minimal"), (0.00049, "minimal"), (0.0005, "low"), (0.0149, "low"), (0.015, "moderate"),
     (0.089, "moderate"), (0.09, "high"), (0.23, "high"), (0.379, "high"), (0.38, "extreme"), (1.0, "extreme")],
)  # fmt: skip
def test_band_cut_offs(probability, band) -> None:
    assert core.risk.probability_band(probability) == band
    assert list(core.risk.probability_band(np.array([probability, probability]))) == [band, band]


@pytest.mark.parametrize("hours", [1.0, 24.0, 168.0, 720.0])
def test_band_depends_on_the_probability_only(hours) -> None:
    """The same cut-offs at every horizon: a 23 % chance is "high" whether over a day or over a week."""
    d = np.linspace(0.001, 0.5, 200)
    r = core.liquidation_probability(
        side="long", mark_price=100.0, liquidation_price=100.0 * np.exp(-d), volatility=0.8, horizon_hours=hours
    )
    assert list(r["band"]) == list(core.risk.probability_band(r["probability"]))
