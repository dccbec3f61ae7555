"""Liquidation map and cascade simulator."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import core

SEED = dict(
    start_price=100_000,
    shock_pct=2.0,
    cluster_price=[102_000, 103_000, 104_000, 106_000],
    cluster_notional=[100e6] * 4,
    cluster_side=["short"] * 4,
    depth_per_pct=100e6,
)


def test_seed_example_short_cluster_carries_price_to_about_105k() -> None:
    # BTC at 100k pushed to 102k into a short cluster; forced buying (100M per cluster, 100M depth per 1 %)
    # walks through 102k, 103k and 104k and stops short of 106k: about 105.1k
    r = core.cascade(**SEED)
    assert r["final_price"] == pytest.approx(105_090.7, abs=1)
    assert r["liquidated_short_notional"] == 300e6 and r["steps"] == 3
    assert r["amplification"] == pytest.approx(2.545, abs=1e-3)


def test_deeper_books_give_smaller_moves_and_absorption_helps() -> None:
    moves = [core.cascade(**dict(SEED, depth_per_pct=d))["move_pct"] for d in (50e6, 100e6, 200e6, 400e6)]
    assert moves == sorted(moves, reverse=True)
    absorbed = core.cascade(**dict(SEED, absorbed_share=0.5))
    assert absorbed["move_pct"] < core.cascade(**SEED)["move_pct"] and absorbed["absorbed_notional"] > 0


def test_no_cluster_crossed_moves_by_the_shock_alone() -> None:
    r = core.cascade(**dict(SEED, shock_pct=1.0))
    assert r["final_price"] == pytest.approx(101_000) and r["steps"] == 0 and r["amplification"] == 1.0


@pytest.mark.parametrize("model", ["linear", "sqrt"])
def test_liquidated_never_exceeds_the_clusters(model) -> None:
    rng = np.random.default_rng(4)
    n = 2000
    side = np.where(rng.random(n) < 0.5, "long", "short")
    price = np.where(side == "long", rng.uniform(70_000, 99_000, n), rng.uniform(101_000, 130_000, n))
    notional = rng.uniform(1e5, 5e7, n)
    r = core.cascade(
        start_price=100_000,
        shock_pct=-5,
        cluster_price=price,
        cluster_notional=notional,
        cluster_side=side,
        depth_per_pct=30e6,
        impact_model=model,
        resilience=0.5,
    )
    assert r["liquidated_long_notional"] <= notional[side == "long"].sum() * (1 + 1e-12)
    assert r["liquidated_short_notional"] <= notional[side == "short"].sum() * (1 + 1e-12)
    assert r["final_price"] < 95_000  # a downside shock into long clusters goes further down


def test_cascade_bad_input() -> None:
    with pytest.raises(ValueError, match="^cluster_side"):
        core.cascade(**dict(SEED, cluster_side=["up"] * 4))
    with pytest.raises(ValueError, match="^cluster_notional"):
        core.cascade(**dict(SEED, cluster_notional=[1.0]))


def test_map_opens_consumes_and_reduces() -> None:
    close = np.array([100_000, 100_000, 100_000, 95_000, 95_000], dtype=float)
    oi = np.array([1e9, 1.1e9, 1.1e9, 1.1e9, 1.05e9])
    r = core.liquidation_map(
        close=close, open_interest=oi, leverage=[10, 100], leverage_weights=[0.5, 0.5], bucket_size=100
    )
    # bar 1 opens 100M: 50M long at 10x/100x (~90.4k, ~99.4k), 50M short; bar 3's close 95k consumes the 100x
    # long (25M); bar 4's OI drop of 50M reduces the remaining 75M proportionally
    assert r["total_long_notional"] + r["total_short_notional"] == pytest.approx(75e6 - 50e6, rel=1e-9)
    assert r["total_long_notional"] == pytest.approx(25e6 * 25 / 75, rel=1e-9)
    lp10 = core.liquidation_price(side="long", entry_price=100_000, quantity=0.1, leverage=10)["liquidation_price"]
    assert r["bucket_price"][np.argmax(r["long_notional"])] == pytest.approx(np.floor(lp10 / 100) * 100)
    assert r["cumulative_long_below"].max() == pytest.approx(r["total_long_notional"])


def test_map_taker_split_and_assumptions() -> None:
    close = np.array([100.0, 101.0, 102.0])
    r = core.liquidation_map(
        close=close,
        open_interest=[1e6, 2e6, 2e6],
        taker_buy_volume=[1, 3, 1],
        leverage=[5],
        leverage_weights=[1],
        taker_sell_volume=[1, 1, 1],
        symbol=None,
        exchange="generic",
        maintenance_margin_rate=0.005,
    )
    assert r["total_long_notional"] == pytest.approx(0.75e6) and r["total_short_notional"] == pytest.approx(0.25e6)
    assert r["assumptions"]["long_share"] == "taker buy share per bar"


def test_map_on_real_binance_open_interest(shared_data) -> None:
    folder = shared_data / "binance_btcusdt_perp_1h_2023_2025"
    with open(folder / "BTCUSDT_openInterestHist_1h.csv") as fh:
        oi_rows = {r["timestamp"]: float(r["sumOpenInterestValue"]) for r in csv.DictReader(fh)}
    with open(folder / "BTCUSDT_fapi_klines_1h.csv") as fh:
        bars = [r for r in csv.DictReader(fh) if r["open_time"] in oi_rows]
    assert len(bars) > 400
    r = core.liquidation_map(
        close=[float(b["close"]) for b in bars],
        high=[float(b["high"]) for b in bars],
        low=[float(b["low"]) for b in bars],
        open_interest=[oi_rows[b["open_time"]] for b in bars],
        taker_buy_volume=[float(b["taker_buy_base"]) for b in bars],
        taker_sell_volume=[float(b["volume"]) - float(b["taker_buy_base"]) for b in bars],
    )
    price = r["current_price"]
    longs_above = r["long_notional"][r["bucket_price"] > price * 1.0025].sum()
    shorts_below = r["short_notional"][r["bucket_price"] + 200 < price].sum()
    assert r["total_long_notional"] > 0 and r["total_short_notional"] > 0
    assert longs_above == 0 and shorts_below == 0  # crossed levels were consumed


def test_map_and_cascade_over_http(client) -> None:
    r = client.post("/v1/market/cascade", json=SEED).get_json()
    assert r["final_price"] == pytest.approx(105_090.7, abs=1)
    resp = client.post("/v1/market/liquidation-map", json={"close": [1.0, 2.0], "open_interest": [1.0]})
    assert resp.status_code == 422 and "open_interest" in resp.get_json()["errors"]


def test_cascade_from_a_liquidation_map() -> None:
    close = np.array([100_000, 100_000, 100_000], dtype=float)
    m = core.liquidation_map(close=close, open_interest=[1e9, 2e9, 2e9], leverage=[50], leverage_weights=[1])
    r = core.cascade(start_price=100_000, shock_pct=-2.0, liquidation_map=m, depth_per_pct=100e6)
    assert r["liquidated_long_notional"] == pytest.approx(m["total_long_notional"])  # the 50x longs at ~98.4k
    assert r["final_price"] < 98_000 * 0.96  # 500M of forced selling into 100M per 1 % of depth
    with pytest.raises(ValueError, match="^liquidation_map"):
        core.cascade(start_price=1, shock_pct=1, liquidation_map=m, cluster_price=[1])
