"""Is the liquidation probability right? Replay a market, predict, and count what happened.

At every ``step``-th bar ``t`` of a market frame, and for each leverage and side, a hypothetical isolated
position is opened at the close (``entry_price`` = last close, ``notional`` quote). Its liquidation price comes
from :func:`core.liquidation_price` (the exchange's ruleset and tiers), and :func:`core.liquidation_probability`
predicts the probability that the mark price reaches it within each horizon, for each model:

* ``gbm``: the closed form, continuous monitoring;
* ``gbm_bgk``: the same with the Broadie–Glasserman–Kou correction for a barrier checked every
  ``monitoring_minutes`` (default: the bar length);
* ``student_t``: the seeded Monte Carlo with variance-matched Student-t steps of ``monitoring_minutes``.

The volatility is RiskMetrics' EWMA (:func:`core.risk.estimate_volatility`) of the mark closes up to and
including bar ``t`` (never later bars), over a trailing window long enough that the weight left out is below
1e-8. The outcome is whether the mark low (long) or mark high (short) of bars ``t+1 … t+h`` reached the
liquidation price, ``h`` = horizon / bar length. Bars whose horizon runs past the data, or whose volatility
window or horizon has a missing bar, are left out; so are positions the tier table refuses (leverage above the
tier's maximum).

Scores (docs/risk-models.md §8):

* Brier score ``BS = mean((p − y)²)`` — G. W. Brier, "Verification of forecasts expressed in terms of
  probability", *Monthly Weather Review* 78(1), 1950, 1–3; against the climatological forecast (the base rate
  ``ȳ`` for every case, ``BS_ref = ȳ(1 − ȳ)``) as the skill ``1 − BS/BS_ref``;
* log loss ``−mean(y ln p + (1 − y) ln(1 − p))`` with ``p`` clipped to ``[ε, 1 − ε]``, ``ε = 1e-6``;
* the reliability table (mean predicted probability against observed frequency per probability bin) and
  Murphy's decomposition ``BS ≈ reliability − resolution + uncertainty`` — A. H. Murphy, "A new vector
  partition of the probability score", *J. Applied Meteorology* 12(4), 1973, 595–600; the reliability
  diagram as in A. H. Murphy and R. L. Winkler, "Reliability of subjective probability forecasts of
  precipitation and temperature", *J. Royal Statistical Society C* 26(1), 1977, 41–47.

Windows of consecutive bars overlap, so the outcomes are strongly autocorrelated: the number of independent
cases per leverage and side is about (bars × bar length / horizon), far fewer than the count of predictions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

MODELS = ("gbm", "gbm_bgk", "student_t")
#: equal-width probability bins (the deciles of the probability scale) for the reliability table
DECILE_EDGES = tuple(np.round(np.linspace(0.0, 1.0, 11), 10))
#: the probability bands whose meaning the calibration checks (minimal, low, moderate, high, extreme)
BAND_EDGES = (0.0, 0.01, 0.05, 0.15, 0.35, 1.0)
BAND_NAMES = ("minimal", "low", "moderate", "high", "extreme")
LOG_LOSS_EPS = 1e-6
#: weight of the EWMA left out by the trailing window
EWMA_TAIL = 1e-8


def ewma_window(lam: float) -> int:
    """Bars of history after which the EWMA weights left out sum to less than 1e-8 (λ^w < 1e-8)."""
    if not 0 < lam < 1:
        raise ValueError("lam: must be a decimal in (0, 1)")
    return int(math.ceil(math.log(EWMA_TAIL) / math.log(lam)))


def trailing_volatility(
    closes: Any, periods_per_year: float, lam: float = 0.94, bars: Sequence[int] | np.ndarray | None = None
) -> np.ndarray:
    """Annualised EWMA volatility (decimal) at each bar, from the closes up to and including that bar only.

    Each value is :func:`core.risk.estimate_volatility` of the trailing ``ewma_window(lam) + 1`` closes (all of
    them near the start), so a later price never changes an earlier value. NaN before the third close and where
    the window holds a missing (non-finite) close. ``bars``: compute only these bar indices (others NaN).
    """
    from core.risk import estimate_volatility

    c = np.asarray(closes, dtype=float)
    out = np.full(c.shape[0], np.nan)
    w = ewma_window(lam)
    bad = np.concatenate([[0], np.cumsum(~np.isfinite(c) | (c <= 0))])  # bad closes before index i
    for t in range(c.shape[0]) if bars is None else np.asarray(bars, dtype=int):
        lo = max(0, t - w)
        if t - lo >= 2 and bad[t + 1] == bad[lo]:
            out[t] = estimate_volatility(c[lo : t + 1], periods_per_year, "ewma", lam)
    return out


def _forward_extreme(x: np.ndarray, h: int, high: bool) -> np.ndarray:
    """max (or min) of x[t+1 … t+h] for every t (NaN where the window runs past the end or holds a NaN)."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if n > h:
        win = np.lib.stride_tricks.sliding_window_view(x[1:], h)  # row t covers x[t+1 : t+1+h]
        out[: n - h] = win.max(axis=1) if high else win.min(axis=1)  # NaN propagates
    return out


def _predict(model, side_sign, mark, lp, vol, hz, minutes, dof, paths, seed, progress) -> np.ndarray:
    """``core.liquidation_probability`` of every position, shape (horizon, bar, leverage, side): the closed
    forms in one call; the Monte Carlo one bar at a time (each bar has its own volatility, hence its own paths)."""
    import core

    if model in ("gbm", "gbm_bgk"):
        return core.liquidation_probability(
            side=side_sign[None, None, None, :],
            mark_price=mark[None, :, None, None],
            liquidation_price=lp[None],
            volatility=vol[None, :, None, None],
            horizon_hours=hz[:, None, None, None],
            model="gbm",
            monitoring_minutes=minutes if model == "gbm_bgk" else None,
        )["probability"]
    out = np.empty((hz.size, *lp.shape))
    for j in range(mark.size):
        out[:, j] = core.liquidation_probability(
            side=side_sign[None, None, :],
            mark_price=mark[j],
            liquidation_price=lp[j][None],
            volatility=vol[j],
            horizon_hours=hz[:, None, None],
            model="student_t",
            monitoring_minutes=minutes,
            degrees_of_freedom=dof,
            paths=paths,
            seed=seed,
        )["probability"]
        if progress is not None:
            progress(j + 1, mark.size)
    return out


def calibration_samples(
    frame: pd.DataFrame,
    *,
    symbol: str,
    exchange: str = "binance",
    timeframe: str = "1h",
    horizons_hours: Sequence[float] = (24.0, 168.0),
    leverages: Sequence[float] = (2.0, 3.0, 5.0, 10.0, 20.0, 50.0),
    sides: Sequence[str] = ("long", "short"),
    models: Sequence[str] = MODELS,
    step: int = 1,
    notional: float = 10_000.0,
    lam: float = 0.94,
    warmup: int | None = None,
    monitoring_minutes: float | None = None,
    paths: int = 1_000,
    degrees_of_freedom: float = 4.0,
    seed: int = 0,
    maintenance_margin_rate: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Predictions and outcomes, one row per (bar, horizon, leverage, side).

    Parameters
    ----------
    frame : a market frame (:func:`backtest.data.load_dataset`): ``close`` and ``mark_close``, ``mark_high``,
        ``mark_low`` (quote per base unit) on a regular UTC bar index.
    symbol, exchange : instrument and ruleset for :func:`core.liquidation_price` (tiers).
    timeframe : bar interval (``1h``); sets the bars per horizon and the annualisation (bars per year).
    horizons_hours : horizons in hours, each a whole number of bars.
    leverages : initial leverages of the hypothetical isolated positions.
    sides : ``long`` and/or ``short``.
    models : any of :data:`MODELS`.
    step : predict at every ``step``-th bar (1 = every bar).
    notional : position size in quote currency at entry (selects the tier).
    lam : EWMA decay λ (RiskMetrics: 0.94 for daily data; the same default here).
    warmup : bars skipped at the start (default: the EWMA window, so that the seed no longer matters).
    monitoring_minutes : barrier check interval for ``gbm_bgk`` and the Monte Carlo step (default: bar length).
    paths, degrees_of_freedom, seed : the Student-t Monte Carlo (seeded, common random numbers).
    maintenance_margin_rate : override the tier table (then no leverage cap applies).
    progress : called as ``progress(done, total)`` after each bar of the Monte Carlo (the slow part).

    Returns
    -------
    (samples, skipped)
        ``samples``: columns ``time``, ``bar``, ``horizon_hours``, ``leverage``, ``side``, ``entry_price``,
        ``mark_price``, ``liquidation_price``, ``volatility`` (annualised, decimal), ``liquidated`` (bool) and
        ``p_<model>`` (probability, 0–1); ``skipped``: counts of predictions left out, by reason.
    """
    import core
    from core.risk import HOURS_PER_YEAR

    from .data import timeframe_seconds

    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ValueError(f"model: must be among {', '.join(MODELS)}, not {unknown or 'nothing'}")
    bad_sides = [s for s in sides if s not in ("long", "short")]
    if bad_sides or not sides:
        raise ValueError(f"side: must be long or short, not {bad_sides or 'nothing'}")
    lev = np.asarray(leverages, dtype=float)
    if lev.ndim != 1 or lev.size == 0 or not np.all(np.isfinite(lev) & (lev >= 1)):
        raise ValueError("leverage: one or more numbers >= 1")
    if not (isinstance(step, int | np.integer) and step >= 1):
        raise ValueError("step: must be a whole number >= 1")
    if warmup is not None and not (isinstance(warmup, int | np.integer) and warmup >= 0):
        raise ValueError("warmup: must be a whole number of bars >= 0")
    if not (math.isfinite(notional) and notional > 0):
        raise ValueError("notional: must be a finite number > 0")
    bar_s = timeframe_seconds(timeframe)
    bar_h = bar_s / 3600.0
    hz = np.asarray(horizons_hours, dtype=float)
    if hz.ndim != 1 or hz.size == 0 or not np.all(np.isfinite(hz) & (hz > 0)):
        raise ValueError("horizon: one or more numbers of hours > 0")
    h_bars = np.rint(hz / bar_h).astype(int)
    if np.any(h_bars < 1) or np.any(np.abs(h_bars * bar_h - hz) > 1e-9):
        raise ValueError(f"horizon: must be whole multiples of the {timeframe} bar")
    minutes = bar_s / 60.0 if monitoring_minutes is None else float(monitoring_minutes)
    if not (math.isfinite(minutes) and minutes > 0):
        raise ValueError("monitoring_minutes: must be a finite number > 0")
    for col in ("close", "mark_close", "mark_high", "mark_low"):
        if col not in frame:
            raise ValueError(f"data: the frame needs a {col!r} column")

    # a regular grid, so that "h bars later" is "h × bar length later"; missing bars become NaN
    idx = frame.index
    if len(idx) and isinstance(idx, pd.DatetimeIndex):
        grid = pd.date_range(idx[0], idx[-1], freq=pd.Timedelta(seconds=bar_s))
        if len(grid) != len(idx) or not grid.equals(idx):
            frame = frame.reindex(grid)
            idx = frame.index
    close = frame["close"].to_numpy(float)
    mark = frame["mark_close"].to_numpy(float)
    n = close.shape[0]
    w = ewma_window(lam)
    start = w if warmup is None else int(warmup)
    bars = np.arange(max(start, 2), n, step)
    vol = trailing_volatility(mark, HOURS_PER_YEAR / bar_h, lam, bars=bars)[bars]
    ahead_low = np.stack([_forward_extreme(frame["mark_low"].to_numpy(float), h, False)[bars] for h in h_bars])
    ahead_high = np.stack([_forward_extreme(frame["mark_high"].to_numpy(float), h, True)[bars] for h in h_bars])
    entry, mk = close[bars], mark[bars]
    ok_bar = np.isfinite(vol) & (vol > 0) & np.isfinite(entry) & np.isfinite(mk)
    skipped = {"incomplete_history": int(np.sum(~ok_bar) * hz.size * lev.size * len(sides))}
    bars, vol, entry, mk = bars[ok_bar], vol[ok_bar], entry[ok_bar], mk[ok_bar]
    ahead_low, ahead_high = ahead_low[:, ok_bar], ahead_high[:, ok_bar]

    side_sign = np.array([1.0 if s == "long" else -1.0 for s in sides])
    # shape (bars, leverage, side)
    e3 = entry[:, None, None]
    lp_res = core.liquidation_price(
        exchange=exchange,
        symbol=symbol,
        side=side_sign[None, None, :],
        entry_price=e3,
        quantity=notional / e3,
        leverage=lev[None, :, None],
        maintenance_margin_rate=maintenance_margin_rate,
        fields=("liquidation_price",),
        raise_errors=False,
    )
    lp = np.broadcast_to(lp_res["liquidation_price"], (bars.size, lev.size, side_sign.size))
    refused = np.broadcast_to(
        np.asarray(lp_res["error_code"]).reshape(lp_res["liquidation_price"].shape) != 0, lp.shape
    )
    lp_ok = np.where(refused, np.nan, lp)

    # outcome, shape (horizon, bars, leverage, side): the mark path beyond the liquidation price
    low4 = ahead_low[:, :, None, None]
    high4 = ahead_high[:, :, None, None]
    with np.errstate(invalid="ignore"):
        hit = np.where(side_sign > 0, low4 <= lp_ok[None], high4 >= lp_ok[None])
    complete = np.where(side_sign > 0, np.isfinite(low4), np.isfinite(high4))
    complete = np.broadcast_to(complete, hit.shape)

    probs = {
        m: np.broadcast_to(
            _predict(m, side_sign, mk, lp_ok, vol, hz, minutes, degrees_of_freedom, paths, seed, progress), hit.shape
        )
        for m in models
    }
    keep = complete & ~np.broadcast_to(refused[None], hit.shape)
    skipped["horizon_beyond_data"] = int(np.sum(~complete))
    skipped["refused_by_tiers"] = int(np.sum(complete & ~keep))
    H, B, L, S = np.meshgrid(np.arange(hz.size), np.arange(bars.size), np.arange(lev.size), np.arange(len(sides)),
                             indexing="ij")  # fmt: skip
    sel = keep.ravel()
    hi, bi, li, si = (a.ravel()[sel] for a in (H, B, L, S))
    times = pd.Index(idx).take(bars).take(bi)
    samples = pd.DataFrame(
        {
            "time": times,
            "bar": bars[bi],
            "horizon_hours": hz[hi],
            "leverage": lev[li],
            "side": np.asarray(sides)[si],
            "entry_price": entry[bi],
            "mark_price": mk[bi],
            "liquidation_price": lp_ok[bi, li, si],
            "volatility": vol[bi],
            "liquidated": hit.ravel()[sel].astype(bool),
            **{f"p_{m}": probs[m].ravel()[sel] for m in models},
        }
    )
    return samples, skipped


# ---------------------------------------------------------------------------------------------------------------
# Scores


def brier_score(p: Any, y: Any) -> float:
    """Brier (1950) score: mean squared difference between the predicted probability and the 0/1 outcome."""
    p, y = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    return float(np.mean((p - y) ** 2)) if p.size else math.nan


def log_loss(p: Any, y: Any, eps: float = LOG_LOSS_EPS) -> float:
    """Mean negative log-likelihood of the outcomes (nats), ``p`` clipped to ``[eps, 1 − eps]``."""
    p = np.clip(np.asarray(p, dtype=float), eps, 1.0 - eps)
    y = np.asarray(y, dtype=float)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p))) if p.size else math.nan


def reliability_table(p: Any, y: Any, edges: Sequence[float] = DECILE_EDGES) -> list[dict[str, Any]]:
    """Per probability bin ``[lower, upper)`` (the last bin includes 1): ``count``, ``mean_predicted`` and
    ``observed_frequency`` (NaN in an empty bin), and ``liquidated`` (outcomes that were 1)."""
    p, y = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    e = np.asarray(edges, dtype=float)
    k = np.clip(np.searchsorted(e, p, side="right") - 1, 0, e.size - 2)
    rows = []
    for i in range(e.size - 1):
        m = k == i
        c = int(m.sum())
        rows.append(
            {
                "lower": float(e[i]),
                "upper": float(e[i + 1]),
                "count": c,
                "liquidated": int(y[m].sum()),
                "mean_predicted": float(p[m].mean()) if c else math.nan,
                "observed_frequency": float(y[m].mean()) if c else math.nan,
            }
        )
    return rows


def murphy_decomposition(table: list[dict[str, Any]], base_rate: float) -> dict[str, float]:
    """Murphy (1973) terms from a reliability table: ``reliability`` = Σ nₖ(p̄ₖ − ōₖ)²/N (0 is perfect),
    ``resolution`` = Σ nₖ(ōₖ − ō)²/N (higher is better), ``uncertainty`` = ō(1 − ō)."""
    n = sum(r["count"] for r in table)
    if n == 0:
        return {"reliability": math.nan, "resolution": math.nan, "uncertainty": math.nan}
    rel = sum(r["count"] * (r["mean_predicted"] - r["observed_frequency"]) ** 2 for r in table if r["count"]) / n
    res = sum(r["count"] * (r["observed_frequency"] - base_rate) ** 2 for r in table if r["count"]) / n
    return {"reliability": rel, "resolution": res, "uncertainty": base_rate * (1.0 - base_rate)}


def score(p: Any, y: Any) -> dict[str, Any]:
    """Brier score, its climatological reference and skill, log loss, base rate and count."""
    p, y = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    base = float(y.mean()) if y.size else math.nan
    bs = brier_score(p, y)
    ref = base * (1.0 - base)
    return {
        "count": int(y.size),
        "liquidated": int(y.sum()),
        "base_rate": base,
        "mean_predicted": float(p.mean()) if p.size else math.nan,
        "brier": bs,
        "brier_reference": ref,
        "brier_skill": 1.0 - bs / ref if ref > 0 else math.nan,
        "log_loss": log_loss(p, y),
    }


def isotonic_fit(p: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Observed frequency as a non-decreasing function of the predicted probability, by the pool-adjacent-
    violators algorithm (Ayer, Brunk, Ewing, Reid and Silverman, "An empirical distribution function for
    sampling with incomplete information", *Annals of Mathematical Statistics* 26(4), 1955, 641–647; used to
    recalibrate forecasts by Zadrozny and Elkan, KDD 2002). Returns (the distinct predicted probabilities in
    increasing order, the fitted frequency at each)."""
    p, y = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    x, inv = np.unique(p, return_inverse=True)
    w = np.bincount(inv, minlength=x.size).astype(float)
    v = np.bincount(inv, weights=y, minlength=x.size) / np.maximum(w, 1.0)
    # blocks: (sum of weights, weighted mean, number of distinct x); merge while a block is below its left one
    bw, bv, bn = [], [], []
    for wi, vi in zip(w.tolist(), v.tolist(), strict=True):
        bw.append(wi)
        bv.append(vi)
        bn.append(1)
        while len(bv) > 1 and bv[-2] >= bv[-1]:
            w2, v2, n2 = bw.pop(), bv.pop(), bn.pop()
            total = bw[-1] + w2
            bv[-1] = (bw[-1] * bv[-1] + w2 * v2) / total
            bw[-1] = total
            bn[-1] += n2
    return x, np.repeat(np.asarray(bv), np.asarray(bn, dtype=int))


def band_cutoffs(p: Any, y: Any, targets: Sequence[float] = BAND_EDGES[1:-1]) -> list[float]:
    """The predicted probability from which the observed frequency (isotonic fit, :func:`isotonic_fit`)
    reaches each target frequency: cut-offs on the model's output that make a band mean the same observed
    frequency. NaN where the data never reach the target."""
    x, fit = isotonic_fit(p, y)
    out = []
    for target in targets:
        i = int(np.searchsorted(fit, target, side="left"))
        out.append(float(x[i]) if i < x.size else math.nan)
    return out


def check_band_edges(edges: Sequence[float]) -> tuple[float, ...]:
    """Band edges as (0, c₁, c₂, c₃, c₄, 1): four increasing cut-offs strictly inside (0, 1) (or all six)."""
    e = [float(v) for v in edges]
    if len(e) == len(BAND_NAMES) - 1:
        e = [0.0, *e, 1.0]
    if len(e) != len(BAND_NAMES) + 1 or e[0] != 0.0 or e[-1] != 1.0 or bool(np.any(np.diff(e) <= 0)):
        raise ValueError(f"bands: four increasing probabilities in (0, 1), one per boundary of {', '.join(BAND_NAMES)}")
    return tuple(e)


def calibration_report(
    samples: pd.DataFrame, models: Sequence[str] | None = None, band_edges: Sequence[float] = BAND_EDGES
) -> dict[str, Any]:
    """Scores of every model overall, by horizon, and by horizon × leverage × side, with reliability tables
    by probability decile and by band (``band_edges``, default :data:`BAND_EDGES`), and per horizon the
    ``band_cutoffs``: the predicted probabilities from which the observed frequency reaches 1 %, 5 %, 15 % and
    35 % (the meaning of :data:`BAND_EDGES`)."""
    models = [m for m in MODELS if f"p_{m}" in samples] if models is None else list(models)
    edges = check_band_edges(band_edges)
    y = samples["liquidated"].to_numpy(float)
    out: dict[str, Any] = {"band_edges": list(edges), "models": {}, "by_horizon": [], "by_leverage": []}
    for m in models:
        p = samples[f"p_{m}"].to_numpy(float)
        s = score(p, y)
        deciles = reliability_table(p, y, DECILE_EDGES)
        bands = reliability_table(p, y, edges)
        for row, name in zip(bands, BAND_NAMES, strict=True):
            row["band"] = name
        s["decomposition"] = murphy_decomposition(deciles, s["base_rate"])
        s["reliability"] = deciles
        s["bands"] = bands
        out["models"][m] = s
    for h, g in samples.groupby("horizon_hours", sort=True):
        gy = g["liquidated"].to_numpy(float)
        row: dict[str, Any] = {"horizon_hours": float(h), "count": int(gy.size), "base_rate": float(gy.mean())}
        for m in models:
            gp = g[f"p_{m}"].to_numpy(float)
            row[m] = {"brier": brier_score(gp, gy), "log_loss": log_loss(gp, gy), "mean_predicted": float(gp.mean())}
            bands = reliability_table(gp, gy, edges)
            row[m]["band_cutoffs"] = dict(zip(BAND_NAMES[1:], band_cutoffs(gp, gy), strict=True))
            row[m]["bands"] = [
                {"band": name, "count": b["count"], "mean_predicted": b["mean_predicted"],
                 "observed_frequency": b["observed_frequency"]}
                for b, name in zip(bands, BAND_NAMES, strict=True)
            ]  # fmt: skip
        out["by_horizon"].append(row)
    for (h, lev, side), g in samples.groupby(["horizon_hours", "leverage", "side"], sort=True):
        gy = g["liquidated"].to_numpy(float)
        row = {"horizon_hours": float(h), "leverage": float(lev), "side": side, "count": int(gy.size),
               "base_rate": float(gy.mean())}  # fmt: skip
        for m in models:
            gp = g[f"p_{m}"].to_numpy(float)
            row[m] = {"brier": brier_score(gp, gy), "mean_predicted": float(gp.mean())}
        out["by_leverage"].append(row)
    return out


def _settings(samples: pd.DataFrame, skipped: dict[str, int], options: dict[str, Any]) -> dict[str, Any]:
    lam = options.get("lam", 0.94)
    return {
        "exchange": options.get("exchange", "binance"),
        "timeframe": options.get("timeframe", "1h"),
        "start": str(samples["time"].min()) if len(samples) else None,
        "end": str(samples["time"].max()) if len(samples) else None,
        "predictions": int(len(samples)),
        "horizons_hours": [float(h) for h in options.get("horizons_hours", (24.0, 168.0))],
        "leverages": [float(v) for v in options.get("leverages", (2.0, 3.0, 5.0, 10.0, 20.0, 50.0))],
        "sides": list(options.get("sides", ("long", "short"))),
        "step": int(options.get("step", 1)),
        "notional": float(options.get("notional", 10_000.0)),
        "volatility": {"method": "ewma", "lambda": lam, "window_bars": ewma_window(lam), "series": "mark_close"},
        "warmup_bars": ewma_window(lam) if options.get("warmup") is None else int(options["warmup"]),
        "monitoring_minutes": options.get("monitoring_minutes"),
        "paths": int(options.get("paths", 1_000)),
        "seed": int(options.get("seed", 0)),
        "skipped": skipped,
    }


def calibrate(
    frames: pd.DataFrame | dict[str, pd.DataFrame], *, band_edges: Sequence[float] = BAND_EDGES, **options: Any
) -> dict[str, Any]:
    """Replay one market, or several (``{symbol: frame}``), and score the predictions (options: see
    :func:`calibration_samples`; with one frame, give ``symbol``).

    Returns the :func:`calibration_report` of all predictions together with the run's settings (``symbols``,
    ``timeframe``, ``start``, ``end``, ``horizons_hours``, ``leverages``, ``step``, ``notional``, the
    ``volatility`` method) and ``skipped``; with several markets also ``by_symbol``, each market's own report.
    """
    if isinstance(frames, pd.DataFrame):
        if not options.get("symbol"):
            raise ValueError("symbol: required (the instrument whose tiers price the liquidation)")
        frames = {options.pop("symbol"): frames}
    else:
        options.pop("symbol", None)
    if not frames:
        raise ValueError("data: no market to replay")
    check_band_edges(band_edges)
    parts, per_symbol = [], {}
    total_skipped: dict[str, int] = {}
    for symbol, frame in frames.items():
        samples, skipped = calibration_samples(frame, symbol=symbol, **options)
        parts.append(samples.assign(symbol=symbol))
        for k, v in skipped.items():
            total_skipped[k] = total_skipped.get(k, 0) + v
        per_symbol[symbol] = {**_settings(samples, skipped, options),
                              **calibration_report(samples, options.get("models"), band_edges)}  # fmt: skip
    every = pd.concat(parts, ignore_index=True)
    out = {"symbols": list(frames), **_settings(every, total_skipped, options)}
    out.update(calibration_report(every, options.get("models"), band_edges))
    if len(frames) > 1:
        out["by_symbol"] = per_symbol
    return out


# ---------------------------------------------------------------------------------------------------------------
# Writers


def write_json(report: dict[str, Any], path: str) -> str:
    """Write the report as JSON (NaN as null) and return the path."""
    from core.jsonable import to_jsonable

    with open(path, "w", encoding="utf-8") as fh:
        json.dump(to_jsonable(report), fh, indent=1)
    return path


def reliability_png(reports: dict[str, dict[str, Any]], path: str) -> str:
    """A reliability diagram (Murphy and Winkler 1977) per report (e.g. per symbol): observed frequency against
    mean predicted probability per decile bin for each model, the diagonal of perfect calibration, and the count
    per bin (log scale) below. Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(reports)
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 6.4), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1]}, sharex=True)  # fmt: skip
    for col, name in enumerate(names):
        rep = reports[name]
        ax, hist = axes[0, col], axes[1, col]
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect")
        for i, (model, s) in enumerate(rep["models"].items()):
            rows = [r for r in s["reliability"] if r["count"]]
            x = [r["mean_predicted"] for r in rows]
            ax.plot(x, [r["observed_frequency"] for r in rows], marker="o", ms=4,
                    label=f"{model} (Brier {s['brier']:.4f})")  # fmt: skip
            centres = [(r["lower"] + r["upper"]) / 2 + (i - 1) * 0.025 for r in rows]
            hist.bar(centres, [r["count"] for r in rows], width=0.025, log=True, label=model)
        base = next(iter(rep["models"].values()))["base_rate"]
        ax.axhline(base, color="0.8", lw=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{name}: base rate {base:.3f}", fontsize=10)
        ax.set_ylabel("observed frequency")
        ax.legend(fontsize=7, loc="upper left")
        hist.set_xlabel("predicted probability of liquidation")
        hist.set_ylabel("count")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
