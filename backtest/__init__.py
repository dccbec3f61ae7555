"""The squeeze backtester (leveraged perpetual-futures simulation on vectorbt); see ``docs/data.md``. Imported
lazily by its own API route and CLI command only.

The public surface, importable from ``backtest`` itself (each loads its module on first use, so that
``import backtest`` stays light)::

    from backtest import load_dataset, run_backtest, strategy, sweep, synthetic_market

    frame, reports, warnings = load_dataset("path/to/folder", "SOL", "5m")   # or synthetic_market()
    result = run_backtest(frame, {"leverage": 5, "stop_pct": 0.03})        # metrics, trades, equity
    table = sweep(frame, {"leverage": [2, 5, 10]})                          # one row per combination

* :func:`strategy` fills in the defaults of :mod:`backtest.params` and checks a config (ValueError naming the
  field); :func:`run_backtest` and :func:`sweep` are :mod:`backtest.run`'s;
* :func:`load_dataset` reads a folder (or one file) of market data into the aligned frame (:mod:`backtest.data`);
* :func:`synthetic_market` builds the seeded synthetic market (:mod:`backtest.synthetic`).

Also public: :mod:`backtest.data` (the loaders of single files, :func:`~backtest.data.frame_from_columns`),
:mod:`backtest.params` (every strategy field declared once), :mod:`backtest.datasets` (dataset names and file
names; standard library only), :mod:`backtest.calibrate` (the liquidation probability scored against a replayed
market), :mod:`backtest.report` (HTML/PNG reports), :mod:`backtest.queue` (the job queue the API submits to) and
the command lines :mod:`backtest.cli` and :mod:`backtest.calibrate_cli`.

Private (their names may change; use the surface above): :mod:`backtest.engine` (the simulator) and
:mod:`backtest.engine_nb` (its compiled loop), :mod:`backtest.signals`, :mod:`backtest.expressions`,
:mod:`backtest.metrics`, :mod:`backtest.formatting`, :mod:`backtest.loaders`, :mod:`backtest.alignment`,
:mod:`backtest.liquidation_proxy`, :mod:`backtest.uploads`, :mod:`backtest.replay`, :mod:`backtest.forecast_scores`,
:mod:`backtest.tasks` (the workers' tasks) and :mod:`backtest.warmup`.
"""

from __future__ import annotations

import importlib
from typing import Any

#: each public name and the module that defines it
_SURFACE = {
    "run_backtest": "backtest.run",
    "sweep": "backtest.run",
    "strategy": "backtest.run",
    "load_dataset": "backtest.data",
    "synthetic_market": "backtest.synthetic",
}
__all__ = sorted(_SURFACE)


def __getattr__(name: str) -> Any:
    """Load a public name's module on first use (PEP 562), so that ``import backtest`` imports neither pandas nor
    vectorbt."""
    if name in _SURFACE:
        value = getattr(importlib.import_module(_SURFACE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'backtest' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SURFACE))
