"""Risk analytics of one or many positions: the probability of being liquidated within a horizon, and
position sizing for a fixed risk at a stop.

Sources: ``docs/risk-models.md`` §1–2 — first passage of geometric Brownian motion with drift
(reflection principle + Girsanov), the Broadie–Glasserman–Kou continuity correction for discrete
monitoring (Mathematical Finance 7(4) 1997, 325–348, β = −ζ(1/2)/√(2π) ≈ 0.5826), variance-matched
Student-t increments for fat tails (Monte Carlo), and RiskMetrics' EWMA volatility (λ = 0.94).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import budget
from ._inputs import as_float, broadcast, check, choice, number, positive, rate, side_array
from .errors import InputError
from .liquidation import liquidation_price as _liquidation_price

BGK_BETA = 0.5825971579390106  # -zeta(1/2) / sqrt(2 pi)
HOURS_PER_YEAR = 365.0 * 24.0
MODELS = ("gbm", "student_t")
VOL_METHODS = ("ewma", "realized")
#: bands of the probability of liquidation within the horizon asked about. A band names how often such a
#: prediction comes true: minimal < 1 %, low 1–5 %, moderate 5–15 %, high 15–35 %, extreme ≥ 35 % (1 % and 5 %
#: are the tails of 99 % and 95 % value-at-risk: RiskMetrics Technical Document, J.P. Morgan/Reuters 1996).
#: The cut-offs on the model's probability are calibrated against outcomes (``liqrisk calibrate``; Brier 1950,
#: Murphy & Winkler 1977; docs/risk-models.md §8): replaying Binance BTC/ETH/SOL USDⓈ-M 1 h bars of 2025 at
#: 2–50x, the observed frequency of every band falls inside its meaning at both 24 h and 168 h when the GBM
#: probability is cut at 0.05 %, 1.5 %, 9 % and 38 % (small probabilities come true more often than GBM says).
BAND_CUTOFFS = (0.0005, 0.015, 0.09, 0.38)
BANDS = ("minimal", "low", "moderate", "high", "extreme")


def probability_band(probability: Any) -> Any:
    """The band of a probability of liquidation (0–1, within whatever horizon): ``minimal`` < 0.0005 ≤ ``low``
    < 0.015 ≤ ``moderate`` < 0.09 ≤ ``high`` < 0.38 ≤ ``extreme`` (:data:`BAND_CUTOFFS`, calibrated so that each
    band's predictions come true < 1 %, 1–5 %, 5–15 %, 15–35 % and ≥ 35 % of the time). A string for a scalar, an
    array of strings for an array."""
    p = np.asarray(probability, dtype=np.float64)
    out = np.array(BANDS)[np.searchsorted(np.asarray(BAND_CUTOFFS), p, side="right")]
    return str(out) if out.ndim == 0 else out


#: Monte Carlo defaults of :func:`liquidation_probability` (``model="student_t"``)
DEFAULT_PATHS = 20_000
DEFAULT_STEP_MINUTES = 60.0


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(x)


def estimate_volatility(closes: Any, periods_per_year: float, method: str = "ewma", lam: float = 0.94) -> float:
    """Annualised volatility (decimal) of log returns of ``closes``.

    ``ewma``: RiskMetrics exponentially weighted variance, ``σ²_t = λσ²_{t−1} + (1 − λ) r²_t`` seeded with
    the first return's square, λ = 0.94; ``realized``: sample standard deviation. Both scaled by
    ``√periods_per_year`` (8,760 for hourly bars, 365 for daily).
    """
    choice("volatility_method", method, VOL_METHODS)
    c = number("closes", closes, positive)
    if c.ndim != 1 or c.size < 3:
        raise InputError("closes", "need a 1-D series of at least 3 prices")
    if not (np.isfinite(periods_per_year) and periods_per_year > 0):
        raise InputError("periods_per_year", "must be a finite number > 0")
    r = np.diff(np.log(c))
    if method == "realized":
        var = float(np.var(r, ddof=1))
    else:
        weights = (1 - lam) * lam ** np.arange(r.size - 1, -1, -1, dtype=float)
        var = float(np.sum(weights * r**2) + lam**r.size * r[0] ** 2)
    return math.sqrt(var * periods_per_year)


def _gbm_first_passage(b: np.ndarray, nu: np.ndarray, sigma: np.ndarray, t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """P(the log price moves ``b`` > 0 towards the barrier within ``t`` years); ``s`` = +1 long (barrier
    below), −1 short (barrier above); ``nu`` = μ − σ²/2 (docs/risk-models.md §1.1)."""
    vol = sigma * np.sqrt(t)
    drift = -s * nu  # drift towards the barrier
    with np.errstate(over="ignore", invalid="ignore"):
        expo = np.exp(np.minimum(2.0 * drift * b / sigma**2, 700.0))
        p = _norm_cdf((-b + drift * t) / vol) + expo * _norm_cdf((-b - drift * t) / vol)
    return np.clip(np.where(np.isfinite(p), p, 1.0), 0.0, 1.0)


def liquidation_probability(
    *,
    side: Any,
    mark_price: Any,
    liquidation_price: Any = None,
    volatility: Any = None,
    closes: Any = None,
    periods_per_year: float | None = None,
    volatility_method: str = "ewma",
    horizon_hours: Any = 24.0,
    drift: Any = 0.0,
    model: str = "gbm",
    monitoring_minutes: Any = None,
    degrees_of_freedom: float = 4.0,
    paths: int = DEFAULT_PATHS,
    seed: int = 0,
    **position: Any,
) -> dict[str, Any]:
    """Probability that the mark price reaches the liquidation price within a horizon.

    Parameters
    ----------
    side : "long"/"short" (or ±1).
    mark_price : current mark price (quote per base unit).
    liquidation_price : the position's liquidation price; or give the position's fields
        (``entry_price``, ``quantity``, ``leverage``, ``exchange``, ``symbol``, ...) and it is computed with
        :func:`core.liquidation_price`. NaN (no liquidation price) gives probability 0.
    volatility : annualised volatility of the mark price (decimal, 0.6 = 60 %); or
    closes, periods_per_year, volatility_method : a close-price series to estimate it from (``ewma``,
        RiskMetrics λ = 0.94, or ``realized``); the estimate is returned as ``volatility``.
    horizon_hours : horizon (> 0).
    drift : annualised μ in dS = μS dt + σS dW (decimal; default 0).
    model : ``gbm`` (closed form) or ``student_t`` (seeded Monte Carlo, variance-matched t increments with
        ``degrees_of_freedom`` > 2, ``paths`` paths, steps of ``monitoring_minutes`` (default 60)).
    monitoring_minutes : for ``gbm``, apply the Broadie–Glasserman–Kou correction for a barrier checked
        every that many minutes (bar-by-bar checks); default: continuous monitoring.

    Returns
    -------
    dict
        ``probability`` (0–1), ``standard_error`` (Monte Carlo only, else 0), ``distance_sigmas``
        (ln-distance to liquidation / (σ√T); NaN without a liquidation price), ``score`` (0–100,
        = 100 × probability), ``band`` of the probability, the same cut-offs at every horizon, calibrated against
        outcomes (minimal < 0.05 % ≤ low < 1.5 % ≤ moderate < 9 % ≤ high < 38 % ≤ extreme; see
        ``BAND_CUTOFFS``), ``volatility``, ``liquidation_price``.
    """
    choice("model", model, MODELS)
    if liquidation_price is None:
        if not position:
            raise InputError("liquidation_price", "give it, or the position (entry_price, quantity, leverage, ...)")
        for key in ("entry_price", "quantity"):
            if position.get(key) is None:
                raise InputError(key, "required to compute the liquidation price (or give liquidation_price)")
        try:
            lp = _liquidation_price(side=side, mark_price=mark_price, fields=("liquidation_price",), **position)[
                "liquidation_price"
            ]
        except TypeError as exc:  # an argument liquidation_price does not take
            raise InputError("body", str(exc)) from None
    else:
        if position:
            raise InputError(sorted(position)[0], "give either liquidation_price or the position, not both")
        lp = as_float("liquidation_price", liquidation_price)
        with np.errstate(invalid="ignore"):
            check("liquidation_price", lp, np.isnan(lp) | (np.isfinite(lp) & (lp > 0)), "must be a finite number > 0")
    if volatility is None:
        if closes is None:
            raise InputError("volatility", "give the annualised volatility, or closes and periods_per_year")
        if periods_per_year is None:
            raise InputError("periods_per_year", "required with closes (8760 for hourly bars, 365 for daily)")
        volatility = estimate_volatility(closes, float(periods_per_year), volatility_method)
    shape, a = broadcast(
        {
            "side": side_array(side),
            "mark_price": number("mark_price", mark_price, positive),
            "liquidation_price": np.asarray(lp, dtype=float),
            "volatility": number("volatility", volatility, positive),
            "horizon_hours": number("horizon_hours", horizon_hours, positive),
            "drift": as_float("drift", drift),
        }
    )
    check("side", a["side"], (a["side"] == 1) | (a["side"] == -1), "must be long or short (+1 / -1)")
    check("drift", a["drift"], np.isfinite(a["drift"]) & (np.abs(a["drift"]) <= 100), "must be a finite number")
    n = int(np.prod(shape)) if shape else 1
    s, mk, liq, sigma = (np.broadcast_to(a[k], n) for k in ("side", "mark_price", "liquidation_price", "volatility"))
    t = np.broadcast_to(a["horizon_hours"], n) / HOURS_PER_YEAR
    mu = np.broadcast_to(a["drift"], n)
    nu = mu - sigma**2 / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        b = s * np.log(mk / liq)  # log-distance to the barrier; > 0 while it is ahead of the mark price
    has_lp = ~np.isnan(liq)
    reached = has_lp & (b <= 0)
    stderr = np.zeros(n)
    if model == "gbm":
        b_eff = b
        if monitoring_minutes is not None:
            dt = float(number("monitoring_minutes", monitoring_minutes, positive)) / (60.0 * HOURS_PER_YEAR)
            b_eff = b + BGK_BETA * sigma * math.sqrt(dt)  # barrier shifted away from the price
        prob = _gbm_first_passage(np.where(has_lp & ~reached, b_eff, 1.0), nu, sigma, t, s)
    else:
        prob, stderr = _student_t_first_passage(
            b,
            nu,
            sigma,
            t,
            s,
            has_lp & ~reached,
            degrees_of_freedom,
            int(paths),
            int(seed),
            DEFAULT_STEP_MINUTES if monitoring_minutes is None else float(monitoring_minutes),
        )
    prob = np.where(~has_lp, 0.0, np.where(reached, 1.0, prob))
    stderr = np.where(has_lp & ~reached, stderr, 0.0)
    with np.errstate(invalid="ignore"):
        dist = np.where(has_lp, np.maximum(b, 0.0) / (sigma * np.sqrt(t)), np.nan)
    score = 100.0 * prob
    out = {
        "probability": prob,
        "standard_error": stderr,
        "distance_sigmas": dist,
        "score": score,
        "band": probability_band(prob),
        "volatility": sigma,
        "liquidation_price": liq,
    }
    if shape == ():
        return {k: (str(v[0]) if k == "band" else float(v[0])) for k, v in out.items()}
    return {k: np.asarray(v).reshape(shape) for k, v in out.items()}


def monte_carlo_steps(horizon_hours: float, monitoring_minutes: float | None = None) -> int:
    """Time steps of the ``student_t`` Monte Carlo: horizon / step length, at least 1 (the work and memory
    of a run grow with ``paths`` × this)."""
    minutes = DEFAULT_STEP_MINUTES if monitoring_minutes is None else monitoring_minutes
    return max(1, int(round(horizon_hours * 60.0 / minutes)))


def _student_t_first_passage(b, nu, sigma, t, s, live, dof, paths, seed, step_minutes):
    """Monte Carlo first passage with variance-matched Student-t log-return steps
    (scale σ√Δt·√((ν−2)/ν)), common random numbers across positions, checked at every step."""
    if not (math.isfinite(dof) and dof > 2):
        raise InputError("degrees_of_freedom", "must be > 2 (variance-matched t needs a finite variance)")
    if not 100 <= paths <= 1_000_000:
        raise InputError(
            "paths", "must be between 100 and 1,000,000", kind="too_large" if paths > 1_000_000 else "invalid"
        )
    if not (math.isfinite(step_minutes) and step_minutes > 0):
        raise InputError("monitoring_minutes", "must be a finite number > 0")
    n = b.shape[0]
    prob = np.zeros(n)
    stderr = np.zeros(n)
    rng = np.random.default_rng(seed)
    scale = math.sqrt((dof - 2.0) / dof)
    groups: dict[tuple[float, float, float], list[int]] = {}
    for i in np.flatnonzero(live):
        groups.setdefault((float(sigma[i]), float(nu[i]), float(t[i])), []).append(int(i))
    for (sig, drift, horizon), rows in groups.items():
        steps = monte_carlo_steps(horizon * HOURS_PER_YEAR, step_minutes)
        dt = horizon / steps
        low = np.full(paths, np.inf)  # running minimum of the log path (longs)
        high = np.full(paths, -np.inf)  # running maximum (shorts)
        x = np.zeros(paths)
        chunk = max(1, 4_000_000 // paths)  # bound memory: at most ~32 MB of increments at a time
        for start in range(0, steps, chunk):
            budget.check("monitoring_minutes")
            k = min(chunk, steps - start)
            inc = drift * dt + sig * math.sqrt(dt) * scale * rng.standard_t(dof, size=(k, paths))
            path = x + np.cumsum(inc, axis=0)
            np.minimum(low, path.min(axis=0), out=low)
            np.maximum(high, path.max(axis=0), out=high)
            x = path[-1]
        low.sort()
        high.sort()
        rows_a = np.asarray(rows)
        for side_sign, extreme in ((1.0, low), (-1.0, high)):
            sel = rows_a[s[rows_a] == side_sign]
            if sel.size == 0:
                continue
            if side_sign > 0:  # long: hit when min x <= -b
                hits = np.searchsorted(extreme, -b[sel], side="right")
            else:  # short: hit when max x >= b
                hits = paths - np.searchsorted(extreme, b[sel], side="left")
            p = hits / paths
            prob[sel] = p
            stderr[sel] = np.sqrt(p * (1 - p) / paths)
    return prob, stderr


def position_size(
    *,
    equity: Any,
    risk_fraction: Any,
    side: Any,
    entry_price: Any,
    stop_price: Any,
    exchange: str = "binance",
    symbol: str | None = None,
    leverage: Any = None,
    open_fee_rate: Any = 0.0,
    close_fee_rate: Any = 0.0,
    liquidation_buffer: float = 0.005,
    maintenance_margin_rate: Any = None,
    maintenance_amount: Any = None,
) -> dict[str, Any]:
    """Size a linear position so that a stop-out loses exactly ``risk_fraction`` of ``equity``, and find
    the leverage that keeps the liquidation price beyond the stop.

    Loss at the stop per unit (fees included): ``|EP − stop| + EP·f_open + stop·f_close``;
    ``quantity = equity·risk_fraction / loss per unit``. ``max_leverage_beyond_stop`` is the highest
    leverage (≤ the tier's maximum) whose isolated liquidation price still lies beyond the stop by
    ``liquidation_buffer`` (decimal of the stop price); ``recommended_leverage`` (our convention, not an
    exchange's) is the highest whole leverage at which the liquidation price is at least twice as far from
    entry as the stop. ``liquidation_price`` is at ``leverage`` if given, else at the recommended one.

    Raises
    ------
    ValueError
        ``stop_price`` on the wrong side of entry; ``leverage`` whose liquidation price comes before the
        stop (the position would be liquidated first); the usual range errors.
    """
    eq = number("equity", equity, positive)
    rf = as_float("risk_fraction", risk_fraction)
    with np.errstate(invalid="ignore"):
        check("risk_fraction", rf, np.isfinite(rf) & (rf > 0) & (rf <= 1), "must be a decimal in (0, 1]")
    s = side_array(side)
    ep = number("entry_price", entry_price, positive)
    stop = number("stop_price", stop_price, positive)
    fo = number("open_fee_rate", open_fee_rate, rate, default=0.0)
    fc = number("close_fee_rate", close_fee_rate, rate, default=0.0)
    shape, a = broadcast(
        {
            "equity": eq,
            "risk_fraction": rf,
            "side": np.asarray(s, dtype=float),
            "entry_price": ep,
            "stop_price": stop,
            "open_fee_rate": fo,
            "close_fee_rate": fc,
        }
    )
    n = int(np.prod(shape)) if shape else 1
    eq, rf, s, ep, stop, fo, fc = (
        np.broadcast_to(a[k], n)
        for k in ("equity", "risk_fraction", "side", "entry_price", "stop_price", "open_fee_rate", "close_fee_rate")
    )
    check(
        "stop_price",
        stop,
        (s * (ep - stop) > 0).reshape(shape),
        "must be below entry_price for a long and above it for a short",
    )
    if not (0 <= liquidation_buffer < 1):
        raise InputError("liquidation_buffer", "must be a decimal in [0, 1)")
    loss_per_unit = np.abs(ep - stop) + ep * fo + stop * fc
    with np.errstate(over="ignore"):  # overflow gives inf, which the caller reports as out of range
        qty = eq * rf / loss_per_unit
    common = dict(
        exchange=exchange,
        symbol=symbol,
        side=s,
        entry_price=ep,
        quantity=qty,
        maintenance_margin_rate=maintenance_margin_rate,
        maintenance_amount=maintenance_amount,
    )
    cap = _liquidation_price(**common, leverage=1.0, fields=("max_leverage",))["max_leverage"]
    cap = np.where(np.isnan(cap), 125.0, cap)  # an MMR override has no tier cap: search up to 125x

    def lp_at(lev: np.ndarray) -> np.ndarray:
        return _liquidation_price(**common, leverage=lev, fields=("liquidation_price",))["liquidation_price"]

    def highest(limit_distance: np.ndarray) -> np.ndarray:
        """Largest leverage in [1, cap] with |EP − LP| >= limit_distance (LP moves toward entry as leverage
        rises, so bisection)."""
        lo, hi = np.ones(n), cap.astype(float).copy()
        ok_hi = _beyond(lp_at(hi), ep, s, limit_distance)
        ok_lo = _beyond(lp_at(lo), ep, s, limit_distance)
        for _ in range(60):
            mid = (lo + hi) / 2
            ok = _beyond(lp_at(mid), ep, s, limit_distance)
            lo = np.where(ok, mid, lo)
            hi = np.where(ok, hi, mid)
        return np.where(ok_hi, cap, np.where(ok_lo, lo, np.nan))

    stop_gap = np.abs(ep - stop) + stop * liquidation_buffer
    max_lev = highest(stop_gap)
    recommended = np.floor(highest(2.0 * np.abs(ep - stop)))
    recommended = np.where(np.isnan(recommended), np.nan, np.maximum(recommended, 1.0))
    if leverage is not None:
        lev = as_float("leverage", leverage)
        with np.errstate(invalid="ignore"):
            check("leverage", lev, np.isfinite(lev) & (lev >= 1), "must be a finite number >= 1")
        lev = np.broadcast_to(lev, n)
        liq = lp_at(lev)
        bad = ~_beyond(liq, ep, s, stop_gap)
        if bad.any():
            i = int(np.argmax(bad))
            where = "" if shape == () else f" (first at index {i})"
            advice = (
                f"use at most {max_lev[i]:.4g}x"
                if np.isfinite(max_lev[i])
                else "no leverage keeps liquidation beyond the stop with these margin settings"
            )
            raise InputError(
                "leverage",
                f"at {lev[i]:g}x the position is liquidated at {liq[i]:.8g}, before the stop at "
                f"{stop[i]:.8g}; {advice}{where}",
            )
    else:
        liq = np.where(np.isnan(recommended), np.nan, lp_at(np.where(np.isnan(recommended), 1.0, recommended)))
    out = {
        "quantity": qty,
        "notional": qty * ep,
        "risk_amount": eq * rf,
        "max_leverage_beyond_stop": max_lev,
        "recommended_leverage": recommended,
        "liquidation_price": liq,
    }
    if shape == ():
        return {k: float(v[0]) for k, v in out.items()}
    return {k: np.asarray(v).reshape(shape) for k, v in out.items()}


def _beyond(lp: np.ndarray, ep: np.ndarray, s: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """True where the liquidation price is at least ``distance`` from entry on the losing side (or absent)."""
    return np.isnan(lp) | (s * (ep - lp) >= distance)
