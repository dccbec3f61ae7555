"""The simulator never writes past its trade buffer: a 50-combination sweep that once overflowed runs to the end,
random grids and bar counts keep every column's records, and the compiled kernels run once with numba's bounds
checking on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest import engine

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def test_a_50_combination_sweep_runs_to_the_end():
    # the grid of the report (50 combinations); fewer bars keep it quick, the pattern of pauses is the same
    cmd = [sys.executable, "-m", "api.cli", "sweep", "--json", "--no-progress", "--bars", "6000",
           "--breakout-window", "12,24,36,48,60,72,84,96,108,120", "--surge-mult", "1,2,3,4,5"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout)["results"]
    assert len(rows) == 50
    assert {(r["breakout_window"], r["surge_mult"]) for r in rows} == {
        (float(b), float(m)) for b in range(12, 121, 12) for m in range(1, 6)
    }


def _churn_market(n: int, funding_every: int = 8) -> dict[str, np.ndarray]:
    """Every entry is stopped out on its own bar (the low reaches 5 % down, mark only 0.5 %): one record per
    column every other bar, the case that filled the buffer while columns waited for their liquidation price."""
    o = np.full(n, 100.0)
    fund = np.where(np.arange(n) % funding_every == 0, 0.0001, np.nan)
    return {"open": o, "high": o + 1, "low": o - 5, "close": o.copy(), "mark_open": o.copy(),
            "mark_high": o + 1, "mark_low": o - 0.5, "funding_rate": fund}  # fmt: skip


BOUNDSCHECK = """
import sys, numpy as np
sys.path.insert(0, ROOT)
from tests.backtesting.test_memory_safety import _churn_market
import core

def isolated_linear(side, entry_price, quantity, leverage, margin, **_):
    # Binance's one-position isolated formula at a 0.5 % rate: keeps core's own kernels out of this
    # bounds-checked compile (they take minutes); the engine's kernels are the ones under test
    side, mmr = np.asarray(side), 0.005
    lp = (np.asarray(quantity) * entry_price * side - margin) / (np.asarray(quantity) * (side - mmr))
    return {"liquidation_price": lp, "error_code": np.zeros(np.shape(lp), dtype=np.int64)}

core.liquidation_price = isolated_linear
from backtest import engine
n = 300
m = _churn_market(n)
on = np.ones((n, 1), bool)
r = engine.simulate(m, on, ~on, side=1, leverage=np.linspace(2, 5, 40), stop_pct=0.02, size_value=0.5,
               symbol="BTCUSDT")
held = np.zeros((n, 1), bool); held[::50] = True  # held positions: funding changes margin, re-priced
r2 = engine.simulate(m, held, np.zeros((n, 1), bool), side=np.tile([1.0, -1.0], 20), leverage=10.0, size_value=0.5,
                time_stop=30, symbol="BTCUSDT")
print(r.trades.shape[0], int(r.state[:, engine.S_TRADES].sum()), r2.trades.shape[0],
      int(r2.trades[:, engine.T_STALE].sum()))
"""


def test_kernels_with_numba_bounds_checking(tmp_path):
    code = BOUNDSCHECK.replace("ROOT", repr(str(ROOT)), 1)
    env = _env(NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    written, counted, held, reprices = map(int, out.stdout.split())
    assert written == counted > 40 * 100  # every column traded about every other bar
    assert held > 0 and reprices > 0


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(12, 400),
    ncol=st.integers(1, 70),
    every=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_random_grids_keep_every_record(n, ncol, every, seed):
    rng = np.random.default_rng(seed)
    m = _churn_market(n, funding_every=int(rng.integers(1, 10)))
    m["low"] = m["open"] - rng.uniform(0.1, 6.0, n)
    m["mark_low"] = np.maximum(m["low"], m["open"] - rng.uniform(0.0, 12.0, n))
    m["funding_rate"] = np.where(np.isnan(m["funding_rate"]), np.nan, rng.normal(0, 0.002, n))
    entries = rng.random((n, 3)) < 1.0 / every
    exits = rng.random((n, 3)) < 0.2
    lev = rng.choice([1.0, 2.0, 5.0, 20.0, 50.0], ncol)
    stop = rng.choice([np.nan, 0.01, 0.03], ncol)
    side = rng.choice([1.0, -1.0], ncol)
    sig = rng.integers(0, 3, ncol)
    tst = rng.integers(0, 6, ncol)
    kw = {"size_value": 0.5, "symbol": "BTCUSDT"}
    r = engine.simulate(m, entries, exits, sig_col=sig, side=side, leverage=lev, stop_pct=stop, time_stop=tst, **kw)
    assert r.trades.shape[0] == int(r.state[:, engine.S_TRADES].sum())
    assert np.all(r.state[:, engine.S_STATUS] == engine.DONE)
    cols = r.trades[:, engine.T_COL].astype(int)
    assert np.array_equal(np.bincount(cols, minlength=ncol), r.state[:, engine.S_TRADES].astype(int))
    assert np.all(r.equity >= 0)
    c = int(rng.integers(0, ncol))  # one column alone gives the same trades and curve
    one = engine.simulate(m, entries[:, [sig[c]]], exits[:, [sig[c]]], side=side[c], leverage=lev[c], stop_pct=stop[c],
                     time_stop=tst[c], **kw)  # fmt: skip
    mine = r.trades[cols == c][:, engine.T_SIDE :]
    np.testing.assert_allclose(one.trades[:, engine.T_SIDE :], mine, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(one.equity[:, 0], r.equity[:, c], rtol=1e-12)
