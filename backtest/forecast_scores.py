"""Scores of probability forecasts against 0/1 outcomes (docs/risk-models.md §8):

* Brier score ``BS = mean((p − y)²)`` — G. W. Brier, "Verification of forecasts expressed in terms of
  probability", *Monthly Weather Review* 78(1), 1950, 1–3; against the climatological forecast (the base rate
  ``ȳ`` for every case, ``BS_ref = ȳ(1 − ȳ)``) as the skill ``1 − BS/BS_ref``;
* log loss ``−mean(y ln p + (1 − y) ln(1 − p))`` with ``p`` clipped to ``[ε, 1 − ε]``, ``ε = 1e-6``;
* the reliability table (mean predicted probability against observed frequency per probability bin) and
  Murphy's decomposition ``BS ≈ reliability − resolution + uncertainty`` — A. H. Murphy, "A new vector
  partition of the probability score", *J. Applied Meteorology* 12(4), 1973, 595–600; the reliability
  diagram as in A. H. Murphy and R. L. Winkler, "Reliability of subjective probability forecasts of
  precipitation and temperature", *J. Royal Statistical Society C* 26(1), 1977, 41–47.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: equal-width probability bins (the deciles of the probability scale) for the reliability table
DECILE_EDGES = tuple(np.round(np.linspace(0.0, 1.0, 11), 10))
#: the probability bands whose meaning the calibration checks (minimal, low, moderate, high, extreme)
BAND_EDGES = (0.0, 0.01, 0.05, 0.15, 0.35, 1.0)
BAND_NAMES = ("minimal", "low", "moderate", "high", "extreme")
LOG_LOSS_EPS = 1e-6


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
