"""``POST /v1/backtests``: run the squeeze backtester on a built-in dataset or uploaded bars.

The backtester (pandas, vectorbt) is imported on the first request, not when the app starts, so the
calculator routes never load it; under gunicorn the master imports it and compiles its kernels before the
workers fork (see gunicorn.conf.py), so the first request is not slow either. Bounded by
``LIQRISK_BACKTEST_MAX_BARS`` (413 beyond) and ``LIQRISK_BACKTEST_TIMEOUT`` seconds of run time (422 beyond).
"""

from __future__ import annotations

import time
from functools import cache

from flask import Blueprint, current_app

from ..errors import ApiError, from_value_error
from ..jsonio import respond
from ..observability import BACKTEST_BARS, BACKTEST_SECONDS
from ._common import load

bp = Blueprint("backtests", __name__, url_prefix="/v1")


@cache
def _schema():
    """Built on first use: it reads the strategy fields from the backtest package, which the calculator
    routes never import."""
    from ..schemas.backtests import BacktestSchema

    return BacktestSchema()


@bp.post("/backtests")
def backtests():
    data = load(_schema())
    max_bars = current_app.config["BACKTEST_MAX_BARS"]
    budget = current_app.config["BACKTEST_TIMEOUT"]
    source = data.get("dataset") or data["bars"]
    n = source.get("bars", 8760) if "dataset" in data else len(source["time"])
    if n > max_bars:
        field = "dataset.bars" if "dataset" in data else "bars.time"
        raise ApiError(413, f"a backtest takes at most {max_bars} bars", {field: [f"{n} bars; at most {max_bars}"]})
    from backtest import data as D
    from backtest.run import downsample, run_backtest
    from backtest.synthetic import synthetic_market

    started = time.monotonic()
    try:
        if "dataset" in data:
            ds = data["dataset"]
            frame = synthetic_market(bars=n, timeframe=ds.get("timeframe", "1h"), seed=ds.get("seed", 7))
            warnings: list[str] = []
        else:
            frame, warnings = D.frame_from_columns(data["bars"])
        result = run_backtest(frame, data["strategy"], deadline=started + budget)
    except TimeoutError:
        raise ApiError(
            422,
            f"the backtest needs more than the {budget:g} s run-time budget",
            {"bars": [f"send fewer bars (this run stopped after {time.monotonic() - started:.1f} s)"]},
        ) from None
    except ValueError as exc:
        prefix = "" if str(exc).startswith("bars.") else "strategy"
        raise from_value_error(exc, prefix) from None
    BACKTEST_SECONDS.observe(result["seconds"])
    BACKTEST_BARS.observe(len(frame))
    trades = result["trades"] if data.get("include_trades", True) else []
    return respond(
        {
            "metrics": result["metrics"],
            "trades": trades,
            "equity": downsample(frame.index, result["equity"], data.get("equity_points", 500)),
            "bars": len(frame),
            "start": frame.index[0].isoformat(),
            "end": frame.index[-1].isoformat(),
            "warnings": warnings + result["warnings"],
            "strategy": result["config"],
            "seconds": result["seconds"],
        }
    )
