"""Benchmarks of a backtest upload's checks (``make bench``): 250,000 bars of 16 columns (``LIQRISK_BACKTEST_MAX_BARS``,
39 MB of JSON) loaded by the bars schema, whose columns are checked in bulk (:class:`api.schemas.base.NumberList`),
and one such column loaded as marshmallow's ``fields.List(Number())`` did before, one field per element. No timing
is asserted; each case checks what it loaded."""

from __future__ import annotations

import numpy as np
import pytest
from marshmallow import fields

from api.schemas.backtests import BAR_COLUMNS, BarsSchema
from api.schemas.base import Number

N = 250_000


@pytest.fixture(scope="module")
def bars() -> dict[str, list]:
    rng = np.random.default_rng(3)
    mid = 60_000 * np.exp(np.cumsum(rng.normal(0, 0.001, N)))
    out: dict[str, list] = {"time": (1.7e12 + np.arange(N) * 6e4).tolist()}
    for prefix in ("", "mark_"):
        o = mid * (1 + rng.normal(0, 1e-4, N))
        out |= {prefix + "open": o.round(2).tolist(), prefix + "close": mid.round(2).tolist(),
                prefix + "high": (np.maximum(o, mid) * 1.0005).round(2).tolist(),
                prefix + "low": (np.minimum(o, mid) * 0.9995).round(2).tolist()}  # fmt: skip
    for name, _required, nulls in BAR_COLUMNS:
        if name not in out:
            out[name] = [None if nulls and i % 8 else 0.0001 for i in range(N)] if nulls else [1000.0] * N
    return out


def test_bars_load_in_bulk(benchmark, bars) -> None:
    loaded = benchmark(BarsSchema().load, bars)
    assert len(loaded) == 16 and loaded["close"].shape == (N,) and np.isnan(loaded["funding_rate"][1])


def test_one_column_per_element(benchmark, bars) -> None:
    field = fields.List(Number())
    loaded = benchmark(field.deserialize, bars["close"])
    assert len(loaded) == N
