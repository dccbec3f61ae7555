"""Benchmarks of the serving paths whose cost grows with the input (``make bench``): the batch route's
grouping with 1,000,000 rows of 1,000,000 distinct symbols, the liquidation summary with 100,000 events of
100,000 assets, and string sides in ``core.liquidation_price``. No timing is asserted (the figures go into
the benchmark report, `make bench`); each case checks its result so that a fast wrong answer cannot pass.
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest

import core
from api import Config, create_app
from api import batch as api_batch
from core import market

N_BATCH = 1_000_000
N_EVENTS = 100_000


@pytest.fixture(scope="module")
def app():
    return create_app(Config)


@pytest.fixture(scope="module")
def distinct_symbol_batch() -> bytes:
    """The JSON body of 1,000,000 positions in 1,000,000 distinct symbols the ruleset does not know, with
    the maintenance margin rate given (so every row is valid)."""
    rng = np.random.default_rng(11)
    cols = {
        "side": np.where(rng.random(N_BATCH) < 0.5, "long", "short").tolist(),
        "entry_price": rng.uniform(20_000, 120_000, N_BATCH).round(2).tolist(),
        "quantity": rng.uniform(0.001, 2.0, N_BATCH).round(6).tolist(),
        "leverage": rng.uniform(1.5, 50, N_BATCH).round(2).tolist(),
        "symbol": [f"X{i}USDT" for i in range(N_BATCH)],
        "maintenance_margin_rate": 0.005,
    }
    return orjson.dumps({"positions": cols})


def _batch(app, raw: bytes) -> dict:
    with app.test_request_context():
        positions = orjson.loads(raw)["positions"]
        return api_batch.price(positions, N_BATCH, ["liquidation_price", "tier"], app.config["MAX_BATCH_GROUPS"])


@pytest.mark.benchmark(group="batch-1M-distinct-symbols")
def test_batch_1m_distinct_symbols(benchmark, app, distinct_symbol_batch) -> None:
    """Parse (orjson) + validate + group + price: the work of the route between the body and the response."""
    out = benchmark.pedantic(_batch, args=(app, distinct_symbol_batch), rounds=3, iterations=1)
    assert out["count"] == out["valid"] == N_BATCH and np.isfinite(out["liquidation_price"]).all()


@pytest.fixture(scope="module")
def events() -> dict:
    rng = np.random.default_rng(12)
    return {
        "time_ms": (1.7e12 + rng.uniform(0, 8.6e7, N_EVENTS)).round().tolist(),
        "side": np.where(rng.random(N_EVENTS) < 0.5, "long", "short").tolist(),
        "notional": rng.uniform(1e3, 1e6, N_EVENTS).round(2).tolist(),
        "asset": [f"A{i}" for i in range(N_EVENTS)],
    }


@pytest.mark.benchmark(group="summary-100k-assets")
def test_summary_100k_events_of_100k_assets(benchmark, events) -> None:
    out = benchmark.pedantic(market.liquidation_summary, kwargs={"events": events}, rounds=3, iterations=1)
    assert len(out["assets"]) == N_EVENTS and out["total"] == pytest.approx(sum(events["notional"]))


@pytest.mark.benchmark(group="summary-100k-assets")
def test_summary_route_100k_events_of_100k_assets(benchmark, app, events) -> None:
    """The whole route through the Flask test client: parse, schema, core, serialise."""
    client = app.test_client()
    raw = orjson.dumps({"events": events})

    def post():
        return client.post("/v1/market/liquidation-summary", data=raw, content_type="application/json")

    resp = benchmark.pedantic(post, rounds=3, iterations=1)
    assert resp.status_code == 200 and len(resp.get_json()["assets"]) == N_EVENTS


@pytest.fixture(scope="module")
def string_sides():
    rng = np.random.default_rng(13)
    sides = np.where(rng.random(N_BATCH) < 0.5, "long", "short")
    entry = rng.uniform(20_000, 120_000, N_BATCH)
    quantity = rng.uniform(0.001, 2.0, N_BATCH)
    return sides, entry, quantity


@pytest.mark.benchmark(group="side-strings-1M")
def test_side_baseline_memory_pass(benchmark, string_sides) -> None:
    """A copy of the inputs (side as ±1 floats, entry, quantity): the least a per-position pass costs."""
    sides, entry, quantity = string_sides
    signs = np.where(sides == "long", 1.0, -1.0)
    out = benchmark(lambda: [signs.copy(), entry.copy(), quantity.copy()])
    assert len(out) == 3


@pytest.mark.benchmark(group="side-strings-1M")
def test_side_as_floats(benchmark, string_sides) -> None:
    sides, entry, quantity = string_sides
    signs = np.where(sides == "long", 1.0, -1.0)
    kw = dict(entry_price=entry, quantity=quantity, leverage=10.0, fields=("liquidation_price",))
    res = benchmark(core.liquidation_price, side=signs, **kw)
    assert np.isfinite(res["liquidation_price"]).all()


@pytest.mark.benchmark(group="side-strings-1M")
def test_side_as_strings(benchmark, string_sides) -> None:
    sides, entry, quantity = string_sides
    kw = dict(entry_price=entry, quantity=quantity, leverage=10.0, fields=("liquidation_price",))
    res = benchmark(core.liquidation_price, side=sides, **kw)
    floats = core.liquidation_price(side=np.where(sides == "long", 1.0, -1.0), **kw)
    np.testing.assert_array_equal(res["liquidation_price"], floats["liquidation_price"])


@pytest.mark.benchmark(group="side-strings-1M")
def test_side_parse_only(benchmark, string_sides) -> None:
    from core._inputs import side_array

    sides = string_sides[0]
    out = benchmark(side_array, sides)
    assert (out == np.where(sides == "long", 1.0, -1.0)).all()
