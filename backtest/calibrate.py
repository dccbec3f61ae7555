"""The liquidation-probability score checked against what happened: replay a market, and for each sampled bar,
side and leverage compare :func:`core.liquidation_probability` (each model) with whether the mark price reached
the position's liquidation price within the horizon.

At bar ``t`` (every ``step`` bars, so that horizons barely overlap): a position of ``notional`` quote opened at
the mark close, its liquidation price from :func:`core.liquidation_price`; volatility estimated causally from the
closes up to ``t`` (RiskMetrics EWMA, λ = 0.94, J.P. Morgan/Reuters *RiskMetrics — Technical Document*, 1996,
§5.2.1), annualised with the bar frequency; the outcome is 1 when the mark low (long) or mark high (short) of
one of the next ``horizon_hours`` of bars reaches the liquidation price. Scores:

* Brier score ``mean((p − y)²)`` (Brier 1950, *Monthly Weather Review* 78(1)), lower is better, next to the
  climatological reference ``ȳ(1 − ȳ)`` (always predicting the base rate);
* a reliability table: predictions in ten bins of width 0.1, each with its count, mean prediction and observed
  frequency (Murphy & Winkler 1977, *Applied Statistics* 26(1)).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

import core

EWMA_LAMBDA = 0.94


def ewma_volatility(close: np.ndarray, periods_per_year: float, lam: float = EWMA_LAMBDA) -> np.ndarray:
    """Annualised EWMA volatility at each bar from log returns up to and including that bar (decimal)."""
    r = np.diff(np.log(close), prepend=np.nan)
    r[0] = 0.0
    var = pd.Series(r * r).ewm(alpha=1.0 - lam, adjust=False).mean().to_numpy()
    return np.sqrt(var * periods_per_year)


def _hits(frame: pd.DataFrame, at: np.ndarray, horizon: int, side: float, lp: np.ndarray) -> np.ndarray:
    low = frame["mark_low"].to_numpy(float)
    high = frame["mark_high"].to_numpy(float)
    fut_low = pd.Series(low[::-1]).rolling(horizon, min_periods=1).min().to_numpy()[::-1]
    fut_high = pd.Series(high[::-1]).rolling(horizon, min_periods=1).max().to_numpy()[::-1]
    nxt = at + 1  # the bars after t: t+1 .. t+horizon
    return (fut_low[nxt] <= lp) if side > 0 else (fut_high[nxt] >= lp)


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Count, mean prediction and observed frequency per prediction bin of width ``1/bins``."""
    k = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        m = k == b
        out.append({
            "bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}",
            "count": int(m.sum()),
            "mean_predicted": float(p[m].mean()) if m.any() else math.nan,
            "observed": float(y[m].mean()) if m.any() else math.nan,
        })  # fmt: skip
    return out


def calibrate(
    frame: pd.DataFrame,
    symbol: str = "BTCUSDT",
    exchange: str = "binance",
    leverages: tuple[float, ...] = (5.0, 10.0, 20.0, 50.0),
    horizon_hours: float = 24.0,
    models: tuple[str, ...] = ("gbm", "student_t"),
    step: int | None = None,
    notional: float = 1_000.0,
    paths: int = 4_000,
) -> dict[str, Any]:
    """Predicted vs observed liquidation within ``horizon_hours`` on ``frame`` (a market frame with mark
    OHLC). Returns ``samples`` (the rows: time, side, leverage, predicted per model, outcome), ``brier`` per
    model, ``base_rate``, ``reference_brier`` and ``reliability`` per model."""
    idx = frame.index
    bar_s = int(np.median(np.diff(idx.as_unit("ns").asi8)) // 1_000_000_000) if len(idx) > 2 else 3600
    horizon = max(1, int(round(horizon_hours * 3600 / bar_s)))
    step = step or horizon
    n = len(frame)
    warm = 48
    if n < warm + horizon + 2:
        raise ValueError(f"bars: at least {warm + horizon + 2} bars for a {horizon_hours:g} h horizon")
    at = np.arange(warm, n - horizon - 1, step)
    mark = frame["mark_close"].to_numpy(float)
    vol = ewma_volatility(frame["close"].to_numpy(float), 365 * 86400 / bar_s)
    rows = []
    for side in (1.0, -1.0):
        for lev in leverages:
            px = mark[at]
            lp = np.asarray(
                core.liquidation_price(side=side, entry_price=px, quantity=notional / px, leverage=lev,
                                       exchange=exchange, symbol=symbol)["liquidation_price"], dtype=float,
            )  # fmt: skip
            got = {"time": idx[at], "side": "long" if side > 0 else "short", "leverage": lev,
                   "outcome": _hits(frame, at, horizon, side, lp).astype(float)}  # fmt: skip
            for m in models:
                kw = {"monitoring_minutes": bar_s / 60} if m == "gbm" else {"paths": paths, "seed": 0}
                pr = core.liquidation_probability(side=side, mark_price=px, liquidation_price=lp, volatility=vol[at],
                                                  horizon_hours=horizon_hours, model=m, **kw)  # fmt: skip
                got[m] = np.asarray(pr["probability"], dtype=float)
            rows.append(pd.DataFrame(got))
    samples = pd.concat(rows, ignore_index=True)
    y = samples["outcome"].to_numpy()
    base = float(y.mean())
    return {
        "samples": samples,
        "horizon_hours": horizon_hours,
        "base_rate": base,
        "reference_brier": base * (1 - base),
        "brier": {m: float(np.mean((samples[m].to_numpy() - y) ** 2)) for m in models},
        "reliability": {m: reliability(samples[m].to_numpy(), y) for m in models},
    }


def plot(results: dict[str, dict[str, Any]], path: str) -> None:
    """A reliability diagram (observed vs predicted per bin), one line per dataset and model, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    for name, res in results.items():
        for model, table in res["reliability"].items():
            pts = [(r["mean_predicted"], r["observed"]) for r in table if r["count"] > 0]
            ax.plot(*zip(*pts, strict=True), marker="o", label=f"{name} {model} (Brier {res['brier'][model]:.4f})")
    ax.set_xlabel("predicted probability of liquidation within the horizon")
    ax.set_ylabel("observed frequency")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
