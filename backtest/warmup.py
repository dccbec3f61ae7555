"""Import vectorbt and compile (or load from numba's on-disk cache) the backtester's kernels by running a small
synthetic backtest, so that neither a CLI run nor the first ``POST /v1/backtests`` pays numba's compile time.
``python -m backtest.warmup`` runs at ``make install`` and in the Dockerfile; gunicorn's master calls
:func:`warm_up` before forking workers (the loop is serial: no thread pool exists before the fork)."""

from __future__ import annotations

import sys
import time


def warm_up() -> float:
    """Seconds taken to import and run one 500-bar backtest (both sides)."""
    start = time.perf_counter()
    from .run import run_backtest
    from .synthetic import synthetic_market

    frame = synthetic_market(bars=500, seed=1)
    for side in ("long", "short"):
        run_backtest(frame, {"side": side, "surge_mult": 0.0, "funding_threshold": None})
    return time.perf_counter() - start


if __name__ == "__main__":  # pragma: no cover
    print(f"backtest kernels ready in {warm_up():.1f} s", file=sys.stderr)
