from __future__ import annotations

import numpy as np
import pytest

N = 1_000_000


@pytest.fixture(scope="session")
def positions() -> dict[str, np.ndarray]:
    """1,000,000 random Binance BTCUSDT positions (seeded): sides ±1, entries 20k-120k, notionals up to
    ~2.4M USDT (tiers 1-3 reached), leverage within the tier's maximum."""
    rng = np.random.default_rng(20261122)
    entry = rng.uniform(20_000, 120_000, N)
    quantity = rng.uniform(0.001, 20.0, N)
    notional = entry * quantity
    max_lev = np.where(notional < 300_000, 150.0, np.where(notional < 800_000, 100.0, 75.0))
    return {
        "side": np.where(rng.random(N) < 0.5, 1.0, -1.0),
        "entry_price": entry,
        "quantity": quantity,
        "leverage": rng.uniform(1.0, 1.0, N) + rng.random(N) * (max_lev - 1.0),
    }
