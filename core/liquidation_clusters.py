"""Liquidation map (where the market's own liquidation levels sit) and the liquidation-cascade simulator.

Sources: ``docs/risk-models.md`` §5 (the consensus heat-map algorithm: ΔOI > 0 opens
positions split long/short over a leverage mix at the bar's close, levels are consumed when price crosses
them and reduced proportionally when open interest falls; no vendor publishes its leverage weights, so
ours are a documented default) and §6 (impact: order-book walk with linear depth ρ per 1 %,
ΔP/P ≈ Q/ρ; square-root law ΔP/P = Y·σ_D·√(Q/V_D); non-market absorption by insurance fund / ADL; the
feedback loop total = shock/(1 − k)).
"""

from __future__ import annotations

import heapq
import math
from typing import Any

import numpy as np

from . import budget
from ._inputs import as_float, check, finite, positive
from .errors import InputError
from .liquidation import liquidation_price as _liquidation_price

DEFAULT_LEVERAGE = (10.0, 25.0, 50.0, 100.0)
DEFAULT_LEVERAGE_WEIGHTS = (0.4, 0.3, 0.2, 0.1)


@np.errstate(all="ignore")  # extreme inputs: the API turns non-finite results into 422s
def liquidation_map(
    *,
    close: Any,
    open_interest: Any,
    high: Any = None,
    low: Any = None,
    long_share: float = 0.5,
    taker_buy_volume: Any = None,
    taker_sell_volume: Any = None,
    leverage: Any = DEFAULT_LEVERAGE,
    leverage_weights: Any = DEFAULT_LEVERAGE_WEIGHTS,
    exchange: str = "binance",
    symbol: str | None = "BTCUSDT",
    maintenance_margin_rate: Any = None,
    position_notional: float = 10_000.0,
    bucket_size: float | None = None,
    current_price: float | None = None,
) -> dict[str, Any]:
    """Estimated liquidation levels of the market's open positions, bucketed by price.

    Per bar (oldest first): (1) consume long levels at or above the bar's low and short levels at or below
    its high; (2) if open interest rose, open ``ΔOI`` of notional at the close, split long/short by
    ``long_share`` or, when given, the bar's taker buy share, and over the leverage mix; each level's price
    is :func:`core.liquidation_price` for a ``position_notional`` position at that leverage (the exchange's
    rules and tiers); (3) if open interest fell by more than the notional just consumed, reduce every
    level proportionally.

    Parameters
    ----------
    close, high, low : bar prices (high/low default to close).
    open_interest : open interest as notional in quote currency (e.g. Binance ``sumOpenInterestValue``).
    leverage, leverage_weights : the leverage mix (default 10x/25x/50x/100x weighted 0.4/0.3/0.2/0.1 — a
        convention: no vendor publishes theirs).
    bucket_size : price bucket width (default: 0.25 % of the current price, rounded).

    Returns
    -------
    dict
        ``bucket_price`` (bucket lower edges), ``long_notional``, ``short_notional`` (per bucket),
        ``cumulative_long_below`` (long liquidation notional from the current price downwards) and
        ``cumulative_short_above`` (short notional upwards), totals, ``current_price`` and ``assumptions``.
    """
    c, oi, hi, lo, lev, w, share = _map_inputs(
        close, open_interest, high, low, long_share, taker_buy_volume, taker_sell_volume, leverage, leverage_weights
    )
    lp_long, lp_short = _level_prices(c, lev, exchange, symbol, maintenance_margin_rate, position_notional)
    prices, notional, sides = _replay_levels(lo, hi, oi, share, w, lp_long, lp_short)
    p_now = float(
        c[-1] if current_price is None else positive("current_price", as_float("current_price", current_price))
    )
    size, edges, long_b, short_b = _buckets(prices, notional, sides, bucket_size, p_now)
    below = edges < p_now
    cum_long = np.where(below, np.cumsum(long_b[::-1])[::-1], 0.0)  # from the current price downwards
    cum_short = np.where(~below, np.cumsum(short_b), 0.0)  # upwards
    return {
        "bucket_price": edges,
        "long_notional": long_b,
        "short_notional": short_b,
        "cumulative_long_below": cum_long,
        "cumulative_short_above": cum_short,
        "total_long_notional": float(long_b.sum()),
        "total_short_notional": float(short_b.sum()),
        "current_price": p_now,
        "assumptions": {
            "leverage": lev.tolist(),
            "leverage_weights": w.tolist(),
            "long_share": "taker buy share per bar" if taker_buy_volume is not None else float(long_share),
            "entry": "bar close",
            "exchange": exchange,
            "symbol": symbol,
            "position_notional": position_notional,
            "bucket_size": size,
            "consumption": "long levels at or above the bar low, short levels at or below the bar high",
            "open_interest_decrease": "proportional reduction of all levels, net of liquidated notional",
        },
    }


def _map_inputs(
    close: Any,
    open_interest: Any,
    high: Any,
    low: Any,
    long_share: float,
    taker_buy_volume: Any,
    taker_sell_volume: Any,
    leverage: Any,
    leverage_weights: Any,
) -> tuple[np.ndarray, ...]:
    """The map's series checked and aligned: ``close, open_interest, high, low`` (1-D, one length), the
    leverage mix with weights summing to 1, and each bar's long share of new open interest."""
    c = positive("close", as_float("close", close))
    oi = as_float("open_interest", open_interest)
    check("open_interest", oi, np.isfinite(oi) & (oi >= 0), "must be finite numbers >= 0")
    n = c.size
    hi = c if high is None else positive("high", as_float("high", high))
    lo = c if low is None else positive("low", as_float("low", low))
    for name, arr in (("open_interest", oi), ("high", hi), ("low", lo)):
        if arr.shape != c.shape or arr.ndim != 1:
            raise InputError(name, f"must be a 1-D series aligned with close ({n} values)")
    if n < 2:
        raise InputError("close", "need at least 2 bars")
    lev = positive("leverage", as_float("leverage", leverage)).reshape(-1)
    w = as_float("leverage_weights", leverage_weights).reshape(-1)
    check("leverage", lev, lev >= 1, "must be >= 1")
    if w.shape != lev.shape or not (np.all(w >= 0) and w.sum() > 0):
        raise InputError("leverage_weights", "one weight >= 0 per leverage, not all zero")
    w = w / w.sum()
    if not 0 <= long_share <= 1:
        raise InputError("long_share", "must be in [0, 1]")
    share = np.full(n, float(long_share))
    if (taker_buy_volume is None) != (taker_sell_volume is None):
        raise InputError("taker_buy_volume", "give both taker volumes or neither")
    if taker_buy_volume is not None:
        buy = as_float("taker_buy_volume", taker_buy_volume)
        sell = as_float("taker_sell_volume", taker_sell_volume)
        if buy.shape != c.shape or sell.shape != c.shape:
            raise InputError("taker_buy_volume", "must be aligned with close")
        check("taker_buy_volume", buy, np.isfinite(buy) & (buy >= 0), "must be finite numbers >= 0")
        check("taker_sell_volume", sell, np.isfinite(sell) & (sell >= 0), "must be finite numbers >= 0")
        total = buy + sell
        share = np.where(total > 0, buy / np.where(total > 0, total, 1.0), share)
    return c, oi, hi, lo, lev, w, share


def _level_prices(
    c: np.ndarray,
    lev: np.ndarray,
    exchange: str,
    symbol: str | None,
    maintenance_margin_rate: Any,
    position_notional: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Liquidation prices ``[bar, leverage]`` of a long and of a short ``position_notional`` position
    opened at each bar's close, from :func:`core.liquidation_price` (the exchange's rules and tiers)."""
    n = c.size
    entry = np.broadcast_to(c[:, None], (n, lev.size))
    levs = np.broadcast_to(lev[None, :], (n, lev.size))
    kw = dict(
        exchange=exchange,
        symbol=symbol,
        entry_price=entry,
        quantity=position_notional / entry,
        leverage=levs,
        maintenance_margin_rate=maintenance_margin_rate,
        fields=("liquidation_price",),
    )
    lp_long = _liquidation_price(side=1.0, **kw)["liquidation_price"]
    lp_short = _liquidation_price(side=-1.0, **kw)["liquidation_price"]
    return lp_long, lp_short


def _replay_levels(
    lo: np.ndarray,
    hi: np.ndarray,
    oi: np.ndarray,
    share: np.ndarray,
    w: np.ndarray,
    lp_long: np.ndarray,
    lp_short: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps (1)-(3) of :func:`liquidation_map` over the bars, oldest first: the live levels at the end as
    ``price, notional, side`` (±1) arrays. Levels sit in one heap per side, so a bar consumes its levels in
    O(log n) each; a proportional reduction is one running survival factor, not a pass over the levels."""
    n = lo.size
    longs: list[tuple[float, int]] = []  # max-heap by price: (-price, level id)
    shorts: list[tuple[float, int]] = []  # min-heap by price
    stored: list[float] = []  # notional / survival factor at creation
    price_of: list[float] = []
    side_of: list[int] = []
    alive: list[bool] = []
    epoch_start = 0  # levels before this id were closed by a full open-interest reset
    survival = 1.0  # product of the proportional reductions so far
    active = 0.0  # effective notional of live levels
    # the loop reads Python floats: numpy scalar indexing would cost more than the heap work itself
    lo_l, hi_l, oi_l, share_l, w_l = lo.tolist(), hi.tolist(), oi.tolist(), share.tolist(), w.tolist()
    sides = ((1, lp_long.tolist(), longs, False), (-1, lp_short.tolist(), shorts, True))
    isfinite = math.isfinite
    for t in range(n):
        if not t & 1023:
            budget.check("close")
        consumed = 0.0
        low, high = lo_l[t], hi_l[t]
        while longs and -longs[0][0] >= low:
            _, k = heapq.heappop(longs)
            consumed += stored[k] * survival
            alive[k] = False
        while shorts and shorts[0][0] <= high:
            _, k = heapq.heappop(shorts)
            consumed += stored[k] * survival
            alive[k] = False
        active = max(active - consumed, 0.0)
        d_oi = oi_l[t] - oi_l[t - 1] if t else 0.0
        if d_oi > 0:
            for j, weight in enumerate(w_l):
                for s, lp_rows, heap, short in sides:
                    amount = d_oi * (1.0 - share_l[t] if short else share_l[t]) * weight
                    price = lp_rows[t][j]
                    if amount <= 0 or not isfinite(price):
                        continue
                    k = len(stored)
                    stored.append(amount / survival)
                    price_of.append(price)
                    side_of.append(s)
                    alive.append(True)
                    heapq.heappush(heap, (price, k) if short else (-price, k))
                    active += amount
        elif d_oi < 0 and active > 0:
            closed = max(-d_oi - consumed, 0.0)  # OI that fell beyond what the liquidations removed
            frac = min(closed / active, 1.0)
            survival *= 1.0 - frac
            active *= 1.0 - frac
            if survival < 1e-12:  # everything closed: start a fresh epoch (no pass over the old levels)
                epoch_start = len(stored)
                longs.clear()
                shorts.clear()
                survival, active = 1.0, 0.0
    alive[:epoch_start] = [False] * epoch_start
    live = np.array(alive, dtype=bool)
    prices = np.array(price_of)[live] if live.any() else np.array([])
    notional = np.array(stored)[live] * survival if live.any() else np.array([])
    sides = np.array(side_of)[live] if live.any() else np.array([], dtype=int)
    return prices, notional, sides


def _buckets(
    prices: np.ndarray, notional: np.ndarray, sides: np.ndarray, bucket_size: float | None, p_now: float
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """The levels summed into price buckets: ``bucket size, lower edges, long notional, short notional``."""
    size = bucket_size or _nice(p_now * 0.0025)
    if not (np.isfinite(size) and size > 0):
        raise InputError("bucket_size", "must be a finite number > 0")
    if prices.size:
        lo_edge = np.floor(prices.min() / size) * size
        n_buckets = int(np.floor(prices.max() / size) - np.floor(prices.min() / size)) + 1
        if n_buckets > 200_000:
            raise InputError(
                "bucket_size", "too small for the price range (more than 200,000 buckets)", kind="too_large"
            )
        idx = np.floor((prices - lo_edge) / size).astype(int)
        long_b = np.bincount(idx[sides > 0], weights=notional[sides > 0], minlength=n_buckets)
        short_b = np.bincount(idx[sides < 0], weights=notional[sides < 0], minlength=n_buckets)
        edges = lo_edge + size * np.arange(n_buckets)
    else:
        edges, long_b, short_b = np.array([]), np.array([]), np.array([])
    return size, edges, long_b, short_b


def _nice(x: float) -> float:
    """Round a bucket width to 1, 2 or 5 times a power of ten."""
    if not (np.isfinite(x) and x > 0):
        return 1.0
    exp = np.floor(np.log10(x))
    base = x / 10**exp
    return float((1 if base < 1.5 else 2 if base < 3.5 else 5) * 10**exp)


@np.errstate(all="ignore")
def cascade(
    *,
    start_price: float,
    shock_pct: float,
    cluster_price: Any = None,
    cluster_notional: Any = None,
    cluster_side: Any = None,
    liquidation_map: dict[str, Any] | None = None,
    depth_per_pct: float = 100e6,
    impact_model: str = "linear",
    sqrt_coefficient: float = 1.0,
    daily_volatility: float = 0.03,
    daily_volume: float = 20e9,
    resilience: float = 1.0,
    absorbed_share: float = 0.0,
    max_steps: int = 10_000,
) -> dict[str, Any]:
    """Simulate a liquidation cascade after an initial price shock.

    Each step, the clusters the price has crossed since the last step are liquidated (long clusters at or
    above the price, short clusters at or below it); ``absorbed_share`` of their notional is taken by the
    insurance fund / ADL without touching the book (Binance fills liquidations IOC at the bankruptcy price
    and passes the rest on); the remaining net flow (short liquidations buy, long liquidations sell) moves
    price by the impact model:

    * ``linear``: order-book walk with ``depth_per_pct`` USD per 1 % of price: move % = flow / available
      depth; available depth = depth × (1 − depletion), depletion += flow/(depth × 100) and recovers by the
      ``resilience`` share each step (1 = fully refilled; our convention);
    * ``sqrt``: square-root law, move = sign·Y·σ_D·√(|flow|/V_D) (``sqrt_coefficient`` Y, ``daily_volatility``
      σ_D, ``daily_volume`` V_D in USD).

    Clusters are ``cluster_price``/``cluster_notional``/``cluster_side`` arrays, or a ``liquidation_map``
    result (each bucket's long and short notional at its lower edge). It stops when a step crosses no new
    cluster. Returns the price path, liquidated notional by side,
    absorbed notional, the final price and the amplification (final move / initial shock).
    """
    if liquidation_map is not None:  # clusters from a liquidation map: each bucket's long and short notional
        if cluster_price is not None or cluster_notional is not None or cluster_side is not None:
            raise InputError("liquidation_map", "give either a liquidation map or clusters")
        try:
            edges = np.asarray(liquidation_map["bucket_price"], dtype=float)
            longs = np.asarray(liquidation_map["long_notional"], dtype=float)
            shorts = np.asarray(liquidation_map["short_notional"], dtype=float)
        except (KeyError, TypeError, ValueError):
            raise InputError("liquidation_map", "needs bucket_price, long_notional and short_notional") from None
        cluster_price = np.concatenate([edges, edges])
        cluster_notional = np.concatenate([longs, shorts])
        cluster_side = np.array(["long"] * edges.size + ["short"] * edges.size, dtype=object)
    elif cluster_price is None or cluster_notional is None or cluster_side is None:
        raise InputError("cluster_price", "give cluster_price, cluster_notional and cluster_side, or a liquidation_map")
    p0 = float(positive("start_price", as_float("start_price", start_price)))
    shock = float(finite("shock_pct", as_float("shock_pct", shock_pct)))
    if not -99 < shock < 1000:
        raise InputError("shock_pct", "must be between -99 and 1000 (percent)")
    price = positive("cluster_price", as_float("cluster_price", cluster_price)).reshape(-1)
    notional = as_float("cluster_notional", cluster_notional).reshape(-1)
    check("cluster_notional", notional, np.isfinite(notional) & (notional >= 0), "must be finite numbers >= 0")
    side = np.asarray(cluster_side, dtype=object).reshape(-1)
    if not (price.size == notional.size == side.size):
        raise InputError("cluster_notional", "cluster_price, cluster_notional and cluster_side must have one length")
    if not np.isin(side, ["long", "short"]).all():
        raise InputError("cluster_side", "must be long or short (the side that gets liquidated)")
    for name, value, lo, hi in (
        ("depth_per_pct", depth_per_pct, 0, np.inf),
        ("daily_volume", daily_volume, 0, np.inf),
        ("daily_volatility", daily_volatility, 0, 10),
        ("sqrt_coefficient", sqrt_coefficient, 0, 100),
    ):
        if not (np.isfinite(value) and lo < value < hi):
            raise InputError(name, "must be a finite number > 0")
    if impact_model not in ("linear", "sqrt"):
        raise InputError("impact_model", "must be linear or sqrt")
    if not 0 <= resilience <= 1:
        raise InputError("resilience", "must be in [0, 1]")
    if not 0 <= absorbed_share <= 1:
        raise InputError("absorbed_share", "must be in [0, 1]")
    is_long = side == "long"
    # longs are consumed from the highest price down as the running minimum falls; shorts from the lowest up
    lp, ln = price[is_long], notional[is_long]
    order = np.argsort(-lp)
    lp, lcum = lp[order], np.concatenate([[0.0], np.cumsum(ln[order])])
    sp, sn = price[~is_long], notional[~is_long]
    order = np.argsort(sp)
    sp, scum = sp[order], np.concatenate([[0.0], np.cumsum(sn[order])])
    p = p0 * (1 + shock / 100)
    path = [p0, p]
    low_i = high_i = 0  # how many long / short clusters are consumed
    liq_long = liq_short = absorbed = 0.0
    depletion = 0.0
    steps = 0
    while steps < max_steps:
        if not steps & 1023:
            budget.check("max_steps")
        new_low = int(np.searchsorted(-lp, -p, side="right"))  # long clusters with price >= p
        new_high = int(np.searchsorted(sp, p, side="right"))  # short clusters with price <= p
        long_flow = lcum[max(new_low, low_i)] - lcum[low_i]
        short_flow = scum[max(new_high, high_i)] - scum[high_i]
        low_i, high_i = max(new_low, low_i), max(new_high, high_i)
        if long_flow == 0 and short_flow == 0:
            break
        steps += 1
        liq_long += long_flow
        liq_short += short_flow
        absorbed += absorbed_share * (long_flow + short_flow)
        flow = (1 - absorbed_share) * (short_flow - long_flow)  # + buys, - sells
        if impact_model == "linear":
            available = depth_per_pct * (1 - depletion)
            move = flow / available
            depletion = min(0.95, (depletion + abs(flow) / (depth_per_pct * 100)) * (1 - resilience))
        else:
            move = np.sign(flow) * sqrt_coefficient * daily_volatility * np.sqrt(abs(flow) / daily_volume) * 100
        p = max(p * (1 + move / 100), p0 * 1e-6)
        path.append(p)
    move_total = (p - p0) / p0 * 100
    return {
        "price_path": np.array(path),
        "final_price": p,
        "steps": steps,
        "liquidated_long_notional": liq_long,
        "liquidated_short_notional": liq_short,
        "absorbed_notional": absorbed,
        "total_cluster_notional": float(notional.sum()),
        "move_pct": move_total,
        "amplification": move_total / shock if shock else float("nan"),
    }
