"""The one solver (:mod:`core.solve_nb`): the shared-price solve of one leg is the single-position solve, of
several legs it zeroes the summed equation; a partial table refuses a leg beyond its rows; the kernel's cache
key holds the solver's source digest; warm-up compiles the signatures the callers pass."""

from __future__ import annotations

import numpy as np
import pytest

import core
from core import _kernels, solve_nb, warmup

N = 500


def _legs(seed: int, n: int = N) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "side": np.where(rng.random(n) < 0.5, 1.0, -1.0),
        "q": rng.uniform(0.01, 50.0, n),
        "ep": rng.uniform(100.0, 100_000.0, n),
        "mmr": rng.uniform(0.0, 0.1, n),
        "amount": rng.uniform(0.0, 5_000.0, n),
        "margin": rng.uniform(-20_000.0, 200_000.0, n),
    }


@pytest.mark.parametrize("entry_basis", [False, True])
def test_one_leg_is_the_single_position_solve(entry_basis: bool) -> None:
    """Each leg alone (its margin as ``rest``) gives bit for bit the kernel's linear solve with the kernel's
    ``a``/``b`` for the ruleset family (mark basis: ``a = MMR + fee``, ``b = −amount``; entry basis: ``a = 0``,
    ``b = MMR·value(EP) − amount``)."""
    leg, fee = _legs(1), 0.0005
    one = np.zeros(1, dtype=np.int64)
    got, want = np.empty(N), np.empty(N)
    for i in range(N):
        s, q, ep, mmr, amt, m = (leg[k][i] for k in ("side", "q", "ep", "mmr", "amount", "margin"))
        got[i] = solve_nb.shared_prices_nb(
            one, leg["side"][i : i + 1], leg["q"][i : i + 1], leg["ep"][i : i + 1], entry_basis, fee,
            leg["mmr"][i : i + 1], leg["amount"][i : i + 1], np.array([m]),
        )[0]  # fmt: skip
        if entry_basis:
            a, b = 0.0, solve_nb.maintenance_margin_nb(mmr, solve_nb.position_value_nb(False, q, 1.0, ep), amt)
        else:
            a, b = mmr + fee, -amt
        want[i] = solve_nb.solve_price_nb(False, s, q, 1.0, ep, m, a, b)
    assert np.isfinite(want).sum() > N // 4 and np.isnan(want).sum() > 0  # both outcomes are exercised
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("entry_basis", [False, True])
def test_shared_price_zeroes_the_summed_equation(entry_basis: bool) -> None:
    """At each group's price the margin left equals the legs' maintenance margin:
    ``rest + Σ s·Q·(P − EP) = Σ (a·Q·P + b)``; where no price is returned, the equation's root is not a
    positive price."""
    leg, fee = _legs(2), 0.0004
    group = np.random.default_rng(3).integers(0, 40, N).astype(np.int64)
    rest = np.random.default_rng(4).uniform(-1e5, 1e6, 40)
    p = solve_nb.shared_prices_nb(group, leg["side"], leg["q"], leg["ep"], entry_basis, fee, leg["mmr"],
                                  leg["amount"], rest)  # fmt: skip
    s, q, ep = leg["side"], leg["q"], leg["ep"]
    a = np.zeros(N) if entry_basis else leg["mmr"] + fee
    b = leg["mmr"] * q * ep - leg["amount"] if entry_basis else -leg["amount"]
    slope = np.bincount(group, q * (s - a), minlength=40)
    const = rest - np.bincount(group, s * q * ep + b, minlength=40)
    found = np.isfinite(p)
    assert found.sum() > 5 and (~found).sum() > 0
    scale = np.abs(const) + np.abs(slope * p)
    np.testing.assert_allclose((const + slope * p)[found] / scale[found], 0.0, atol=1e-12)
    root = -const[~found] / slope[~found]
    assert not np.any((root > 0) & np.isfinite(root))


def test_partial_table_refuses_a_leg_beyond_its_rows() -> None:
    """Complete tables keep the last tier past their cap; a partial one names the first leg beyond its rows."""
    floors, caps = np.array([0.0, 100.0]), np.array([100.0, 200.0])
    mmr_t, amt_t = np.array([0.01, 0.02]), np.array([0.0, 1.0])
    q, price = np.array([1.0, 1.0, 1.0]), np.array([50.0, 150.0, 250.0])
    idx = np.arange(3, dtype=np.int64)
    for complete, beyond, tiers in ((True, -1, [1, 2, 2]), (False, 2, [1, 2, 0])):
        mmr, amt, tier = np.full(3, np.nan), np.zeros(3), np.zeros(3, dtype=np.int64)
        got = solve_nb.held_tiers_nb(
            idx, np.zeros(3, dtype=np.int64), np.array([0, 2], dtype=np.int64), floors, caps,
            np.array([complete]), np.array([False]), q, price, mmr_t, amt_t, mmr, amt, tier,
        )  # fmt: skip
        assert got == beyond and tier.tolist() == tiers


def test_kernel_cache_key_holds_the_solver_digest() -> None:
    """numba keys a cached closure by its cell contents but checks only the kernel's own file for edits, so
    the digest of ``core/solve_nb.py`` must be one of the kernel's closure constants."""
    kernel = _kernels.liquidation_kernel(False, True, False, True, True, False, False)
    cells = [c.cell_contents for c in kernel.py_func.__closure__]
    assert solve_nb.SOURCE_DIGEST in cells


def test_warm_up_compiles_the_signatures_the_callers_pass() -> None:
    warmup.compile_solvers()
    core.portfolio_liquidation(
        wallet_balance=10_000.0,
        positions=[
            {"symbol": "BTCUSDT", "side": "long", "entry_price": 60_000.0, "quantity": 1.0},
            {"symbol": "BTCUSDT", "side": "short", "entry_price": 61_000.0, "quantity": 0.5},
            {"symbol": "ETHUSDT", "side": "short", "entry_price": 3_000.0, "quantity": 4.0},
        ],
        position_mode="hedge",
    )
    core.tiers_for("binance", "BTCUSDT", notional=250_000.0)
    core.tiers_for("okx", "BTC-USDT-SWAP", notional=np.array([[1.0, 5.0], [2.0, 3.0]]))
    for dispatcher in (solve_nb.tier_indices_nb, solve_nb.shared_prices_nb, solve_nb.held_tiers_nb):
        assert len(dispatcher.signatures) == 1, dispatcher.signatures


#: the positions the lean-load test prices, per (exchange, symbol, margin mode)
_LEAN_POSITIONS = {
    "side": ["long", "short", "long"],
    "entry_price": [60000.0, 3000.0, 95000.0],
    "quantity": [0.5, 4.0, 2.0],
    "leverage": [10.0, 5.0, 20.0],
    "wallet_balance": [5000.0, 900.0, 20000.0],
}
_LEAN_CASES = [("binance", "BTCUSDT", "isolated"), ("binance", "BTCUSDT", "cross"), ("bybit", "BTCUSDT", "isolated"),
               ("okx", "BTC-USDT-SWAP", "cross")]  # fmt: skip
_LEAN_SCRIPT = """
import json, sys
import numpy as np
from numba import njit
from core import _kernels, lean_cache, warmup
lean_cache.enable()
warmup.warm_up(configs=warmup.first_configurations())
installed = "numba.typed.typeddict" in sys.modules
hits = sum(sum(_kernels.liquidation_kernel(*c).stats.cache_hits.values()) for c in warmup.first_configurations())
import core
positions, cases = json.loads(sys.argv[1]), json.loads(sys.argv[2])
arrays = {k: np.array(v) for k, v in positions.items()}
prices = [core.liquidation_price(exchange=e, symbol=s, margin_mode=m, **arrays)["liquidation_price"].tolist()
          for e, s, m in cases]
sys.path.insert(0, sys.argv[3])
import cached_ufunc  # a cached @vectorize, not marked: numba's own load, with the registries
@njit
def uses_a_typed_dict(x):
    d = {1: x.sum()}
    return d[1]
print(json.dumps({"installed_before": installed, "cache_hits": hits, "prices": prices,
                  "ufunc": cached_ufunc.twice(np.arange(3.0)).tolist(), "compiled": uses_a_typed_dict(np.arange(4.0))}))
"""
_CACHED_UFUNC = """
from numba import vectorize

@vectorize(["float64(float64)"], cache=True)
def twice(x):
    return 2 * x
"""


def test_lean_cache_loads_give_the_same_prices_and_still_compile(tmp_path) -> None:
    """The API server loads the engine's cached kernels without numba's compiler registries
    (:mod:`core.lean_cache`): the prices equal a normal process's, the loads (cache hits) install no registries,
    a cached ``@vectorize`` ufunc (not marked) still loads with numba's own refresh, and a function that is not in
    the cache still compiles (numba's compiler installs the registries itself). Run twice: the first run fills
    the caches if they are cold (a compile installs the registries), the second is the one checked."""
    import json
    import subprocess
    import sys

    (tmp_path / "cached_ufunc.py").write_text(_CACHED_UFUNC)
    argv = [sys.executable, "-c", _LEAN_SCRIPT, json.dumps(_LEAN_POSITIONS), json.dumps(_LEAN_CASES), str(tmp_path)]
    for _ in range(2):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=True)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["cache_hits"] == 2 and got["installed_before"] is False
    assert got["ufunc"] == [0.0, 2.0, 4.0] and got["compiled"] == 6.0
    arrays = {k: np.array(v) for k, v in _LEAN_POSITIONS.items()}
    want = [
        core.liquidation_price(exchange=e, symbol=s, margin_mode=m, **arrays)["liquidation_price"].tolist()
        for e, s, m in _LEAN_CASES
    ]
    assert got["prices"] == want
    assert all(np.isfinite(p).all() for p in want)
