"""One backtest and parameter sweeps: data → squeeze signals → simulator → metrics.

A strategy config is a flat dict (the CLI's options and the HTTP body's ``strategy`` use the same names):
``side`` (long = short-squeeze rule, short = long-squeeze rule), ``leverage``, ``stop_pct``,
``take_profit_pct``, ``time_stop`` (bars), ``size_mode`` (fraction | risk), ``size_value``, ``fee_rate``,
``slippage``, ``liquidation_fee_rate``, ``init_cash`` (quote), ``exchange``/``symbol`` (liquidation rules and
tiers), and every rule parameter of :mod:`backtest.signals` (``breakout_window``, ``hold_bars``, ``surge_mult``,
``surge_window``, ``funding_threshold``, ``funding_lookback``, ``funding_recovery``, ``exit_fraction``,
``peak_window``, ``rsi_window``, ``rsi_level``, ``wick_ratio``, ``near_pct``).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from . import engine as E
from . import metrics as M
from . import signals as S
from .params import DEFAULTS, ENTRY_DEFAULTS, EXIT_DEFAULTS, NULLABLE, POSITIVE, RANGES, WHOLE_BARS


def strategy(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults filled in and every value checked; raises ValueError naming the field."""
    cfg = dict(DEFAULTS)
    for k, v in (config or {}).items():
        if k not in DEFAULTS:
            raise ValueError(f"{k}: unknown strategy field (allowed: {', '.join(sorted(DEFAULTS))})")
        cfg[k] = v
    if cfg["side"] not in ("long", "short"):
        raise ValueError("side: long (short-squeeze rule) or short (long-squeeze rule)")
    if cfg["size_mode"] not in ("fraction", "risk"):
        raise ValueError("size_mode: fraction or risk")
    if not isinstance(cfg["exchange"], str) or not isinstance(cfg["symbol"], (str, type(None))):
        raise ValueError("exchange: a ruleset name")
    for k, (lo, hi) in RANGES.items():
        v = cfg[k]
        if v is None and k in NULLABLE:
            cfg[k] = math.nan
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
            raise ValueError(f"{k}: must be a finite number")
        if not (lo <= v <= hi) or (k in POSITIVE and v <= lo):
            raise ValueError(f"{k}: must be between {lo} and {hi}")
        if k in WHOLE_BARS:
            if float(v) != int(v):
                raise ValueError(f"{k}: must be a whole number of bars")
            cfg[k] = int(v)
        else:
            cfg[k] = float(v)
    if cfg["size_mode"] == "fraction" and cfg["size_value"] > 1:
        raise ValueError("size_value: at most 1 (fraction of equity posted as margin)")
    if cfg["size_mode"] == "risk" and not cfg["stop_pct"] > 0:
        raise ValueError("stop_pct: required with size_mode=risk")
    return cfg


def bar_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {k: frame[k].to_numpy(dtype=float) for k in
            ("open", "high", "low", "close", "mark_open", "mark_high", "mark_low", "funding_rate")}  # fmt: skip


def _sim_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    return {
        "fee_rate": cfg["fee_rate"],
        "slippage": cfg["slippage"],
        "liquidation_fee_rate": cfg["liquidation_fee_rate"],
        "init_cash": cfg["init_cash"],
        "exchange": cfg["exchange"],
        "symbol": cfg["symbol"],
        "size_mode": cfg["size_mode"],
    }


def bar_seconds(frame: pd.DataFrame) -> int:
    if isinstance(frame.index, pd.DatetimeIndex) and len(frame) > 2:
        ns = frame.index[: min(len(frame), 1000)].as_unit("ns").asi8
        return int(np.median(np.diff(ns)) // 1_000_000_000) or 3600
    return 3600


def downsample(index: pd.Index, equity: np.ndarray, points: int = 500) -> dict[str, list]:
    """At most ``points`` equity values (every k-th bar and the last), with their times."""
    n = equity.shape[0]
    step = max(1, math.ceil(n / points))
    pick = np.unique(np.append(np.arange(0, n, step), n - 1))
    times = [t.isoformat() for t in index[pick]] if isinstance(index, pd.DatetimeIndex) else pick.tolist()
    return {"time": times, "equity": equity[pick].tolist()}


def run_backtest(frame: pd.DataFrame, config: dict[str, Any] | None = None, deadline: float | None = None):
    """Backtest one strategy on a market frame. Returns ``metrics`` (see :mod:`backtest.metrics`), ``trades``,
    ``equity`` (full curve, quote), ``entries``/``exits`` (bar booleans), ``config`` and ``seconds``."""
    t0 = time.perf_counter()
    cfg = strategy(config)
    if len(frame) < 10:
        raise ValueError("bars: at least 10 bars")
    entry_params = {k: cfg[k] for k in ENTRY_DEFAULTS}
    exit_params = {k: cfg[k] for k in EXIT_DEFAULTS}
    entries = np.asarray(S.entry_signals(frame, cfg["side"], **entry_params), dtype=bool).reshape(len(frame), -1)
    exits = np.asarray(S.exit_signals(frame, cfg["side"], **exit_params), dtype=bool).reshape(len(frame), -1)
    res = E.simulate(
        bar_arrays(frame), entries, exits,
        side=1 if cfg["side"] == "long" else -1, leverage=cfg["leverage"], stop_pct=cfg["stop_pct"],
        take_profit_pct=cfg["take_profit_pct"], time_stop=cfg["time_stop"], size_value=cfg["size_value"],
        deadline=deadline, **_sim_kwargs(cfg),
    )  # fmt: skip
    met = {k: v[0].item() for k, v in M.compute(res, cfg["init_cash"], bar_seconds(frame)).items()}
    return {
        "metrics": met,
        "trades": M.trade_records(res, frame.index if isinstance(frame.index, pd.DatetimeIndex) else None),
        "equity": res.equity[:, 0],
        "entries": entries[:, 0],
        "exits": exits[:, 0],
        "config": cfg,
        "seconds": time.perf_counter() - t0,
    }


GRID_KEYS = ("breakout_window", "surge_mult", "funding_threshold", "rsi_level", "leverage", "stop_pct")


def _as_list(v: Any) -> list:
    return list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]


def sweep(
    frame: pd.DataFrame,
    grid: dict[str, Any],
    config: dict[str, Any] | None = None,
    split: float | None = 0.7,
    chunk: int = 128,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Every combination of ``grid`` (any strategy field → list of values; the others from ``config``).

    Entry and exit signals are computed once per distinct rule-parameter combination (vectorbt grids) on the
    whole series (they are causal), then simulated in chunks of ``chunk`` columns so memory stays
    ``bars × chunk × 8`` bytes for equity. With ``split`` (0–1), the first part of the bars is in-sample and the
    rest out-of-sample, each simulated from fresh capital: metric columns are ``is_<metric>`` and
    ``oos_<metric>``; without it, plain metric names. ``progress(k)`` is called after each chunk with the number
    of columns done. Rows follow the grid order.
    """
    base = strategy(config)
    keys = list(grid)
    values = [_as_list(grid[k]) for k in keys]
    if not keys or any(len(v) == 0 for v in values):
        raise ValueError("grid: at least one field with at least one value")
    combos = list(itertools.product(*values))
    cfgs = [strategy({**base, **dict(zip(keys, c, strict=True))}) for c in combos]
    n = len(frame)

    def signal_table(names, fn):
        """One signal column per distinct (side, rule parameters), each side's in one vectorbt run."""
        uniq: dict[tuple, int] = {}
        col = np.empty(len(cfgs), dtype=np.int64)
        for j, c in enumerate(cfgs):
            col[j] = uniq.setdefault((c["side"],) + tuple(c[k] for k in names), len(uniq))
        mats = np.empty((n, len(uniq)), dtype=bool)
        for side in ("long", "short"):
            keys = [(i, key[1:]) for key, i in uniq.items() if key[0] == side]
            if keys:
                params = {k: [key[m] for _, key in keys] for m, k in enumerate(names)}
                got = fn(frame, side, param_product=False, **params)
                mats[:, [i for i, _ in keys]] = np.asarray(got, dtype=bool).reshape(n, -1)
        return mats, col

    entries, ecol = signal_table(list(ENTRY_DEFAULTS), S.entry_signals)
    exits, xcol = signal_table(list(EXIT_DEFAULTS), S.exit_signals)
    bars = bar_arrays(frame)
    secs = bar_seconds(frame)
    parts = [("", slice(0, n))]
    if split is not None:
        if not 0.1 <= split <= 0.9:
            raise ValueError("split: between 0.1 and 0.9 (in-sample share)")
        cut = int(n * split)
        parts = [("is_", slice(0, cut)), ("oos_", slice(cut, n))]
    sim_keys = ("side", "leverage", "stop_pct", "take_profit_pct", "time_stop", "size_value")
    per = {k: np.array([c[k] for c in cfgs]) for k in sim_keys}
    per["side"] = np.where(per["side"] == "long", 1.0, -1.0)
    rows: dict[str, list] = {}
    done = 0
    for start in range(0, len(cfgs), chunk):
        sl = slice(start, min(start + chunk, len(cfgs)))
        for prefix, part in parts:
            res = E.simulate(
                {k: v[part] for k, v in bars.items()}, entries[part], exits[part], sig_col=ecol[sl],
                exit_col=xcol[sl], side=per["side"][sl], leverage=per["leverage"][sl], stop_pct=per["stop_pct"][sl],
                take_profit_pct=per["take_profit_pct"][sl], time_stop=per["time_stop"][sl],
                size_value=per["size_value"][sl], **_sim_kwargs(base),
            )  # fmt: skip
            for k, v in M.compute(res, base["init_cash"], secs).items():
                rows.setdefault(prefix + k, []).extend(v.tolist())
        done = sl.stop
        if progress:
            progress(done)
    table = pd.DataFrame([dict(zip(keys, c, strict=True)) for c in combos])
    for k, v in rows.items():
        table[k] = v
    return table


def overfitting(table: pd.DataFrame, metric: str = "sharpe") -> dict[str, Any]:
    """How well in-sample ranks carry out of sample: Spearman rank correlation of ``is_`` vs ``oos_`` metric,
    and the out-of-sample value of the best in-sample row next to the median out-of-sample value."""
    a, b = table[f"is_{metric}"], table[f"oos_{metric}"]
    ok = a.notna() & b.notna()
    rho = float(a[ok].rank().corr(b[ok].rank())) if ok.sum() > 2 else math.nan
    best = a.idxmax() if a.notna().any() else None
    return {
        "metric": metric,
        "rank_correlation": rho,
        "best_in_sample": float(a[best]) if best is not None else math.nan,
        "its_out_of_sample": float(b[best]) if best is not None else math.nan,
        "median_out_of_sample": float(b.median()),
    }
