"""The package's public surface: each name is its module's function, and ``import backtest`` stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import backtest
from backtest import data, run, synthetic

ROOT = Path(__file__).resolve().parents[2]


def test_surface_names_are_the_modules_functions() -> None:
    assert backtest.__all__ == ["load_dataset", "run_backtest", "strategy", "sweep", "synthetic_market"]
    assert backtest.run_backtest is run.run_backtest
    assert backtest.sweep is run.sweep
    assert backtest.strategy is run.strategy
    assert backtest.load_dataset is data.load_dataset
    assert backtest.synthetic_market is synthetic.synthetic_market
    with pytest.raises(AttributeError, match="no attribute 'simulate'"):
        _ = backtest.simulate


def test_import_backtest_loads_no_pandas() -> None:
    code = "import sys, backtest; print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'vectorbt')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_surface_runs_a_backtest() -> None:
    frame = backtest.synthetic_market(bars=600, seed=3)
    cfg = backtest.strategy({"leverage": 4})
    assert cfg["leverage"] == 4.0 and cfg["size_value"] == 0.25
    res = backtest.run_backtest(frame, cfg)
    assert res["equity"].shape == (600,)
    assert res["metrics"]["trades"] == len(res["trades"])
