"""Benchmarks of the core engine (``make bench``; pytest-benchmark). No timing is asserted: the figures
and the ratios printed by ``tests/bench/report.py`` are read by people, on the machine that ran them.

Baseline ("plain memory pass"): copy every input array into a new array — one read and one write of
the same input data, which is the least any function that returns per-position arrays costs.
"""

from __future__ import annotations

import bisect
import math

import numpy as np
import pytest

import core

LP_FIELDS = ("liquidation_price", "tier", "error_code")


def _copy_inputs(arrays):
    return [a.copy() for a in arrays]


@pytest.mark.benchmark(group="isolated-1M")
def test_baseline_copy_pass(benchmark, positions) -> None:
    arrays = list(positions.values())
    out = benchmark(_copy_inputs, arrays)
    assert len(out) == 4


@pytest.mark.benchmark(group="isolated-1M")
def test_isolated_full_result(benchmark, positions) -> None:
    res = benchmark(core.liquidation_price, **positions)
    assert not res["error_code"].any() and np.isfinite(res["liquidation_price"]).mean() > 0.9


@pytest.mark.benchmark(group="isolated-1M")
def test_isolated_price_and_tier(benchmark, positions) -> None:
    res = benchmark(core.liquidation_price, **positions, fields=LP_FIELDS)
    assert set(res) == {*LP_FIELDS, "tiers_as_of", "tiers_source"} and not res["error_code"].any()


@pytest.mark.benchmark(group="isolated-1M")
def test_isolated_full_result_907_symbols_loaded(benchmark, positions) -> None:
    """The same call with every packaged Binance table built first: a symbol's table is looked up by name
    (a dict), so the other 906 cost nothing per position."""
    from core.tiers import symbol_list

    assert len(symbol_list("binance")) > 900
    res = benchmark(core.liquidation_price, **positions)
    assert not res["error_code"].any()


@pytest.mark.benchmark(group="cross-1M")
def test_cross_full_result(benchmark, positions) -> None:
    wallet = positions["entry_price"] * positions["quantity"] / positions["leverage"] * 1.5
    kwargs = {k: v for k, v in positions.items() if k != "leverage"}
    res = benchmark(core.liquidation_price, **kwargs, margin_mode="cross", wallet_balance=wallet)
    assert np.isfinite(res["liquidation_price"]).mean() > 0.5


@pytest.mark.benchmark(group="inverse-1M")
def test_inverse_full_result(benchmark, positions) -> None:
    contracts = np.maximum(1.0, np.round(positions["quantity"] * positions["entry_price"] / 100.0 / 50.0))
    res = benchmark(
        core.liquidation_price,
        side=positions["side"],
        entry_price=positions["entry_price"],
        quantity=contracts,
        leverage=np.minimum(positions["leverage"], 20.0),
        exchange="binance",
        symbol="BTCUSD_PERP",
    )
    assert np.isfinite(res["liquidation_price"]).mean() > 0.5


# --- per-position cost: the same Binance isolated formula as a pure-Python scalar loop ----------------

_TABLE = core.tiers_for("binance", "BTCUSDT")["tiers"]
_FLOORS = [t["notional_floor"] for t in _TABLE]


def _python_liquidation(side, entry, quantity, leverage):
    """Binance one-way isolated LP with bracket lookup and re-tiering, one position at a time."""
    out = []
    for s, ep, q, lev in zip(side, entry, quantity, leverage, strict=True):
        tier = _TABLE[bisect.bisect_right(_FLOORS, q * ep) - 1]
        margin = q * ep / lev
        lp = (s * q * ep - tier["maintenance_amount"] - margin) / (q * (s - tier["maintenance_margin_rate"]))
        t_lp = _TABLE[bisect.bisect_right(_FLOORS, q * lp) - 1]
        if t_lp is not tier:
            for t in _TABLE:
                cand = (s * q * ep - t["maintenance_amount"] - margin) / (q * (s - t["maintenance_margin_rate"]))
                if _TABLE[bisect.bisect_right(_FLOORS, q * cand) - 1] is t:
                    lp = cand
                    break
        out.append(lp if lp > 0 else math.nan)
    return out


@pytest.mark.benchmark(group="per-position-20k")
def test_python_scalar_loop_20k(benchmark, positions) -> None:
    cols = [positions[k][:20_000].tolist() for k in ("side", "entry_price", "quantity", "leverage")]
    out = benchmark(_python_liquidation, *cols)
    expected = core.liquidation_price(**{k: v[:20_000] for k, v in positions.items()})["liquidation_price"]
    np.testing.assert_allclose(out, expected, rtol=1e-9)


@pytest.mark.benchmark(group="per-position-20k")
def test_vectorised_20k(benchmark, positions) -> None:
    sub = {k: v[:20_000] for k, v in positions.items()}
    benchmark(core.liquidation_price, **sub)


# --- risk analytics ---------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="risk")
def test_probability_closed_form_1m(benchmark, positions) -> None:
    lp = core.liquidation_price(**positions, fields=("liquidation_price", "error_code"))["liquidation_price"]
    res = benchmark(
        core.liquidation_probability,
        side=positions["side"],
        mark_price=positions["entry_price"],
        liquidation_price=lp,
        volatility=0.6,
        horizon_hours=24.0,
    )
    assert res["probability"].shape == (len(lp),)


@pytest.mark.benchmark(group="risk")
def test_probability_monte_carlo_100k_paths_168_steps(benchmark) -> None:
    res = benchmark.pedantic(
        core.liquidation_probability,
        kwargs=dict(
            side="long",
            mark_price=100_000.0,
            liquidation_price=90452.26,
            volatility=0.6,
            horizon_hours=168.0,
            model="student_t",
            degrees_of_freedom=3.0,
            paths=100_000,
            monitoring_minutes=60.0,
        ),
        rounds=3,
        iterations=1,
    )
    assert 0.15 < res["probability"] < 0.25


@pytest.mark.benchmark(group="risk")
def test_liquidation_map_one_year_hourly(benchmark) -> None:
    rng = np.random.default_rng(11)
    n = 8760
    close = 60_000 * np.exp(np.cumsum(0.006 * rng.standard_normal(n)))
    spread = close * 0.004 * rng.random(n)
    oi = 8e9 * np.exp(np.cumsum(0.01 * rng.standard_normal(n)))
    res = benchmark.pedantic(
        core.liquidation_map,
        kwargs=dict(close=close, high=close + spread, low=close - spread, open_interest=oi),
        rounds=3,
        iterations=1,
    )
    assert res["total_long_notional"] > 0


@pytest.mark.benchmark(group="risk")
def test_cascade_10k_clusters(benchmark) -> None:
    rng = np.random.default_rng(12)
    n = 10_000
    side = np.where(rng.random(n) < 0.5, "long", "short")
    price = np.where(side == "long", rng.uniform(60_000, 99_500, n), rng.uniform(100_500, 140_000, n))
    res = benchmark(
        core.cascade,
        start_price=100_000,
        shock_pct=-3,
        cluster_price=price,
        cluster_notional=rng.uniform(1e5, 2e7, n),
        cluster_side=side,
        depth_per_pct=200e6,
        absorbed_share=0.3,
        resilience=0.5,
    )
    assert res["steps"] > 0
