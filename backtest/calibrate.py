"""Is the liquidation probability right? Replay a market, predict, and count what happened.

:func:`calibrate` replays one market or several (:func:`backtest.replay.calibration_samples`: a hypothetical
isolated position opened at every ``step``-th close, its liquidation price from :func:`core.liquidation_price`,
the probability of reaching it from :func:`core.liquidation_probability`, and whether the mark price did) and
scores the predictions (:mod:`backtest.forecast_scores`: Brier score and skill, log loss, reliability tables,
Murphy's decomposition, isotonic band cut-offs) in :func:`calibration_report`; :func:`write_json` and
:func:`reliability_png` write the report. The models, the scores and their sources: docs/risk-models.md §8.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .forecast_scores import (
    BAND_EDGES,
    BAND_NAMES,
    DECILE_EDGES,
    LOG_LOSS_EPS,
    band_cutoffs,
    brier_score,
    check_band_edges,
    isotonic_fit,
    log_loss,
    murphy_decomposition,
    reliability_table,
    score,
)
from .replay import MODELS, calibration_samples, ewma_window, trailing_volatility

__all__ = [
    "BAND_EDGES", "BAND_NAMES", "DECILE_EDGES", "LOG_LOSS_EPS", "MODELS", "band_cutoffs", "brier_score",
    "calibrate", "calibration_report", "calibration_samples", "check_band_edges", "ewma_window", "isotonic_fit",
    "log_loss", "murphy_decomposition", "reliability_png", "reliability_table", "score", "trailing_volatility",
    "write_json",
]  # fmt: skip


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
    """The run's settings: the options given, else :func:`calibration_samples`'s own defaults."""
    defaults = {k: v.default for k, v in inspect.signature(calibration_samples).parameters.items()}
    opt = {**defaults, **options}
    lam = opt["lam"]
    return {
        "exchange": opt["exchange"],
        "timeframe": opt["timeframe"],
        "start": str(samples["time"].min()) if len(samples) else None,
        "end": str(samples["time"].max()) if len(samples) else None,
        "predictions": int(len(samples)),
        "horizons_hours": [float(h) for h in opt["horizons_hours"]],
        "leverages": [float(v) for v in opt["leverages"]],
        "sides": list(opt["sides"]),
        "step": int(opt["step"]),
        "notional": float(opt["notional"]),
        "volatility": {"method": "ewma", "lambda": lam, "window_bars": ewma_window(lam), "series": "mark_close"},
        "warmup_bars": ewma_window(lam) if opt["warmup"] is None else int(opt["warmup"]),
        "monitoring_minutes": opt["monitoring_minutes"],
        "paths": int(opt["paths"]),
        "seed": int(opt["seed"]),
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
