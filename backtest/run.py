"""One backtest and parameter sweeps: data → squeeze signals → simulator → metrics.

A strategy config is a flat dict (the CLI's options and the HTTP body's ``strategy`` use the same names):
``side`` (long = short-squeeze rule, short = long-squeeze rule), ``leverage``, ``stop_pct``,
``take_profit_pct``, ``time_stop`` (bars), ``size_mode`` (fraction | risk), ``size_value``, ``fee_rate``,
``slippage`` with ``slippage_model`` (fixed | range), ``stop_trigger``/``liquidation_trigger`` (last | mark),
``liquidation_fee_rate``, ``init_cash`` (quote), ``exchange``/``symbol`` (liquidation rules and tiers; linear
contracts only), every rule parameter of :mod:`backtest.signals` (``breakout_window``, ``hold_bars``,
``surge_mult``, ``surge_window``, ``funding_threshold``, ``funding_lookback``, ``funding_recovery``,
``exit_fraction``, ``peak_window``, ``rsi_window``, ``rsi_level``, ``wick_ratio``, ``near_pct``), and your own
rule instead: ``entry_rule``/``exit_rule`` (:mod:`backtest.expressions`) or ``entry_times``/``exit_times``.
The order of events within a bar is :mod:`backtest.engine`'s.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from . import engine, expressions, metrics, signals
from .params import (
    CHOICES,
    COLUMN_FIELDS,
    DEFAULTS,
    ENTRY_DEFAULTS,
    EXIT_DEFAULTS,
    MAX_FIXED_SLIPPAGE,
    NULLABLE,
    POSITIVE,
    RANGES,
    RUN_FIELDS,
    SIGNAL_DEFAULTS,
    WHOLE_BARS,
    check_contract,
)


def _contract_check(cfg: dict[str, Any]) -> None:
    check_contract(cfg["exchange"], cfg["symbol"])


def strategy(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults filled in and every value checked; raises ValueError naming the field."""
    cfg = dict(DEFAULTS)
    for k, v in (config or {}).items():
        if k not in DEFAULTS:
            raise ValueError(f"{k}: unknown strategy field (allowed: {', '.join(sorted(DEFAULTS))})")
        cfg[k] = v
    for k, allowed in CHOICES.items():
        if cfg[k] not in allowed:
            raise ValueError(f"{k}: one of {', '.join(allowed)}")
    if not isinstance(cfg["exchange"], str):
        raise ValueError("exchange: a ruleset name")
    if not isinstance(cfg["symbol"], (str, type(None))):
        raise ValueError("symbol: an instrument name such as BTCUSDT")
    for k, (lo, hi) in RANGES.items():
        v = cfg[k]
        if k in NULLABLE and (v is None or (isinstance(v, float) and math.isnan(v))):  # NaN: off, as checked
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
    if cfg["slippage_model"] == "fixed" and cfg["slippage"] > MAX_FIXED_SLIPPAGE:
        raise ValueError(f"slippage: at most {MAX_FIXED_SLIPPAGE} (decimal of price) with slippage_model=fixed")
    if cfg["size_mode"] == "fraction" and cfg["size_value"] > 1:
        raise ValueError("size_value: at most 1 (fraction of equity posted as margin)")
    if cfg["size_mode"] == "risk" and not cfg["stop_pct"] > 0:
        raise ValueError("stop_pct: required with size_mode=risk")
    for k in ("entry_rule", "exit_rule"):
        if cfg[k] is not None and (not isinstance(cfg[k], str) or not cfg[k].strip()):
            raise ValueError(f"{k}: an expression over the frame's columns (see backtest.expressions)")
    for k in ("entry_times", "exit_times"):
        v = cfg[k]
        if v is not None:
            if isinstance(v, str):
                v = [t for t in v.split(",") if t.strip()]
            if not isinstance(v, (list, tuple)) or not v or len(v) > 100_000:
                raise ValueError(f"{k}: a list of 1 to 100,000 ISO-8601 times")
            cfg[k] = [str(t) for t in v]
    if cfg["entry_rule"] is not None and cfg["entry_times"] is not None:
        raise ValueError("entry_times: give entry_rule or entry_times, not both")
    if cfg["exit_rule"] is not None and cfg["exit_times"] is not None:
        raise ValueError("exit_times: give exit_rule or exit_times, not both")
    _contract_check(cfg)
    return cfg


def bar_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    keys = ["open", "high", "low", "close", "mark_open", "mark_high", "mark_low", "funding_rate"]
    keys += [k for k in ("funding_open", "funding_inside") if k in frame]
    return {k: frame[k].to_numpy(dtype=float) for k in keys}


def _sim_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: cfg[k] for k in RUN_FIELDS}


def _at_times(frame: pd.DataFrame, times: list[str], field: str) -> np.ndarray:
    """Signals on the bar before the one each time falls in, so that the order fills at that bar's open."""
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise ValueError(f"{field}: the bars carry no times")
    try:
        ts = pd.DatetimeIndex(pd.to_datetime(times, utc=True))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{field}: ISO-8601 times ({exc})") from None
    idx = frame.index if frame.index.tz is not None else frame.index.tz_localize("UTC")
    pos = idx.searchsorted(ts, side="right") - 1
    bad = (pos < 1) | (ts > idx[-1] + (idx[-1] - idx[-2]))
    if bad.any():
        raise ValueError(f"{field}: {ts[np.argmax(bad)].isoformat()} is not after the first bar and within the data")
    out = np.zeros(len(frame), dtype=bool)
    out[pos - 1] = True
    return out


def _own(frame: pd.DataFrame, given: Any, field: str) -> np.ndarray:
    """Booleans aligned to the bars, a list of times, or an expression → a boolean array."""
    if isinstance(given, str):
        return expressions.evaluate(given, expressions.frame_columns(frame), field)
    if isinstance(given, (list, tuple)) and given and not isinstance(given[0], (bool, np.bool_)):
        return _at_times(frame, [str(t) for t in given], field)
    arr = np.asarray(given.reindex(frame.index).fillna(False) if isinstance(given, pd.Series) else given)
    if arr.dtype != bool or arr.shape != (len(frame),):
        raise ValueError(f"{field}: booleans, one per bar ({len(frame)}), a list of times, or an expression")
    return arr


def own_signals(frame: pd.DataFrame, cfg: dict[str, Any], entries: Any = None, exits: Any = None):
    """``(entries, exits, names)``: the caller's own signals (arguments first, then the config's rule and
    times fields), each None where the squeeze rules apply; ``names`` lists which custom ones were used."""
    got: dict[str, np.ndarray | None] = {}
    for side, arg, rule, times in (("entries", entries, "entry_rule", "entry_times"),
                                   ("exits", exits, "exit_rule", "exit_times")):  # fmt: skip
        spec, field = arg, side
        if spec is None and cfg[rule] is not None:
            spec, field = cfg[rule], rule
        elif spec is None and cfg[times] is not None:
            spec, field = cfg[times], times
        got[side] = None if spec is None else _own(frame, spec, field)
    if got["entries"] is not None and got["exits"] is None:
        got["exits"] = np.zeros(len(frame), dtype=bool)  # own entries: out by stop, take profit or time stop
    return got["entries"], got["exits"]


def run_warnings(res: engine.SimResult, column: int = 0) -> list[str]:
    """Non-fatal facts about a run: entries the exchange's rules refused."""
    out = []
    rejected = int(res.state[column, engine.S_REJECTED])
    if rejected:
        out.append(
            f"{rejected} entries refused: the leverage is above the tier's maximum for the position's notional "
            "(see GET /v1/exchanges/{exchange}/tiers/{symbol})"
        )
    return out


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


def run_backtest(
    frame: pd.DataFrame,
    config: dict[str, Any] | None = None,
    deadline: float | None = None,
    entries: Any = None,
    exits: Any = None,
):
    """Backtest one strategy on a market frame. Returns ``metrics`` (see :mod:`backtest.metrics`), ``trades``,
    ``equity`` (full curve, quote), ``entries``/``exits`` (bar booleans), ``config``, ``warnings`` and
    ``seconds``.

    ``entries``/``exits`` (optional) bring your own rule: booleans aligned to the bars (decided on each close),
    a list of times (the order fills at the open of the bar each time falls in), or an expression of
    :mod:`backtest.expressions`; the config's ``entry_rule``/``entry_times`` (and the exit ones) do the same.
    Without them the squeeze rules of :mod:`backtest.signals` apply."""
    t0 = time.perf_counter()
    cfg = strategy(config)
    if len(frame) < 10:
        raise ValueError("bars: at least 10 bars")
    own_entries, own_exits = own_signals(frame, cfg, entries, exits)
    own_x = own_exits
    if own_entries is None:
        own_entries = np.asarray(signals.entry_signals(frame, cfg["side"], **{k: cfg[k] for k in ENTRY_DEFAULTS}))
    if own_exits is None:
        own_exits = np.asarray(signals.exit_signals(frame, cfg["side"], **{k: cfg[k] for k in EXIT_DEFAULTS}))
    ent = np.asarray(own_entries, dtype=bool).reshape(len(frame), -1)
    ext = np.asarray(own_exits, dtype=bool).reshape(len(frame), -1)
    res = engine.simulate(
        bar_arrays(frame), ent, ext,
        side=engine.SIDES[cfg["side"]], leverage=cfg["leverage"], stop_pct=cfg["stop_pct"],
        take_profit_pct=cfg["take_profit_pct"], time_stop=cfg["time_stop"], size_value=cfg["size_value"],
        deadline=deadline, **_sim_kwargs(cfg),
    )  # fmt: skip
    met = {k: v[0].item() for k, v in metrics.compute(res, cfg["init_cash"], bar_seconds(frame)).items()}
    warnings = run_warnings(res)
    if own_x is None and cfg["exit_fraction"] > 0 and "liq_source" in frame and (frame["liq_source"] == "proxy").all():
        held = res.trades[:, engine.T_EXIT_BAR] - res.trades[:, engine.T_ENTRY_BAR]
        if held.size and np.median(held) <= 1:
            warnings.append(
                f"median hold {np.median(held):g} bar: with the taker-flow proxy (sparse liquidations) the fade exit "
                "(exit_fraction) fires on the first quiet bar; exit_fraction 0 leaves the RSI, wick and stop exits"
            )
    return {
        "metrics": met,
        "trades": metrics.trade_records(res, frame.index if isinstance(frame.index, pd.DatetimeIndex) else None),
        "equity": res.equity[:, 0],
        "entries": ent[:, 0],
        "exits": ext[:, 0],
        "config": cfg,
        "warnings": warnings,
        "seconds": time.perf_counter() - t0,
    }


GRID_KEYS = ("breakout_window", "surge_mult", "funding_threshold", "rsi_level", "leverage", "stop_pct")


def _as_list(v: Any) -> list:
    return list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]


def _grid_combos(grid: dict[str, Any], base: dict[str, Any], own_entries: bool, own_exits: bool):
    keys = list(grid)
    values = [_as_list(grid[k]) for k in keys]
    if not keys or any(len(v) == 0 for v in values):
        raise ValueError("grid: at least one field with at least one value")
    for k in keys:
        if k not in DEFAULTS:
            raise ValueError(f"{k}: unknown strategy field (allowed: {', '.join(sorted(DEFAULTS))})")
        if k in SIGNAL_DEFAULTS:
            raise ValueError(f"{k}: not a grid axis (one rule per sweep: give it in the config)")
        rule_field = k in ENTRY_DEFAULTS or k in EXIT_DEFAULTS
        used = (k in ENTRY_DEFAULTS and not own_entries) or (k in EXIT_DEFAULTS and not own_exits)
        if rule_field and not used:
            raise ValueError(f"{k}: a squeeze-rule field has no effect with your own entries/exits")
    combos = list(itertools.product(*values))
    return keys, combos, [strategy({**base, **dict(zip(keys, c, strict=True))}) for c in combos]


def _key_table(keys: list[str], combos: list[tuple]) -> pd.DataFrame:
    """One row per combination; each column's dtype inferred from its values as for a list of row dicts (the
    same frame as ``pd.DataFrame([dict(zip(keys, c)) for c in combos])``, without building 10,000 dicts)."""
    return pd.DataFrame.from_records(combos, columns=keys)


def grid_table(grid: dict[str, Any]) -> pd.DataFrame:
    """The grid's columns of :func:`sweep`'s table (one row per combination, the first field varying slowest),
    built as :func:`sweep` builds them; the sweep's metric columns complete it."""
    keys = list(grid)
    return _key_table(keys, list(itertools.product(*[_as_list(grid[k]) for k in keys])))


def sweep(
    frame: pd.DataFrame,
    grid: dict[str, Any],
    config: dict[str, Any] | None = None,
    split: float | None = 0.7,
    chunk: int = 128,
    progress: Callable[[int], None] | None = None,
    entries: Any = None,
    exits: Any = None,
    signal_cache: dict[tuple, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Every combination of ``grid`` (any strategy field → list of values; the others from ``config``).

    Entry and exit signals are computed once per distinct rule-parameter combination (vectorbt grids) on the
    whole series (they are causal), then simulated in chunks of ``chunk`` columns so memory stays
    ``bars × chunk × 8`` bytes for equity; combinations that differ in a per-run field (fees, slippage, symbol,
    exchange, initial cash, sizing mode, triggers) run separately. ``entries``/``exits`` (or the config's rule
    fields) replace the squeeze rules as in :func:`run_backtest`; a rule field is not a grid axis, nor is a
    squeeze-rule field then. With ``split`` (0–1), the first part of the bars is in-sample and the rest
    out-of-sample, each simulated from fresh capital: metric columns are ``is_<metric>`` and ``oos_<metric>``;
    without it, plain metric names. ``progress(k)`` is called after each chunk with the number of columns done.
    Rows follow the grid order.

    ``signal_cache`` (optional, a dict kept by the caller for one ``frame`` and ``config``): the signal column
    of each (side, rule parameters) computed here is stored in it and reused by later sweeps of sub-grids of the
    same grid (each column is computed on its own, so a cached one is the one a whole-grid sweep computes).
    """
    base = strategy(config)
    own_e, own_x = own_signals(frame, base, entries, exits)
    keys, combos, cfgs = _grid_combos(grid, base, own_e is not None, own_x is not None)
    n = len(frame)
    if split is not None and not 0.1 <= split <= 0.9:
        raise ValueError("split: between 0.1 and 0.9 (in-sample share)")

    def signal_table(names, fn, own):
        """One signal column per distinct (side, rule parameters), each side's in one vectorbt run."""
        if own is not None:
            return own.reshape(n, 1), np.zeros(len(cfgs), dtype=np.int64)
        uniq: dict[tuple, int] = {}
        col = np.empty(len(cfgs), dtype=np.int64)
        for j, c in enumerate(cfgs):
            col[j] = uniq.setdefault((c["side"],) + tuple(c[k] for k in names), len(uniq))
        mats = np.empty((n, len(uniq)), dtype=bool)
        cache = signal_cache if signal_cache is not None else {}
        for key, i in uniq.items():
            if (fn.__name__, *key) in cache:
                mats[:, i] = cache[(fn.__name__, *key)]
        for side in ("long", "short"):
            keys = [(i, key[1:]) for key, i in uniq.items() if key[0] == side and (fn.__name__, *key) not in cache]
            if keys:
                params = {k: [key[m] for _, key in keys] for m, k in enumerate(names)}
                got = fn(frame, side, param_product=False, **params)
                mats[:, [i for i, _ in keys]] = np.asarray(got, dtype=bool).reshape(n, -1)
                if signal_cache is not None:
                    for i, key in keys:
                        signal_cache[(fn.__name__, side, *key)] = mats[:, i].copy()
        return mats, col

    entries_m, ecol = signal_table(list(ENTRY_DEFAULTS), signals.entry_signals, own_e)
    exits_m, xcol = signal_table(list(EXIT_DEFAULTS), signals.exit_signals, own_x)
    bars = bar_arrays(frame)
    secs = bar_seconds(frame)
    parts = [("", slice(0, n))]
    if split is not None:
        cut = int(n * split)
        parts = [("is_", slice(0, cut)), ("oos_", slice(cut, n))]
    per = {k: np.array([c[k] for c in cfgs]) for k in COLUMN_FIELDS}
    per["side"] = np.where(per["side"] == "long", 1.0, -1.0)
    groups: dict[tuple, list[int]] = {}
    for j, c in enumerate(cfgs):
        groups.setdefault(tuple(c[k] for k in RUN_FIELDS), []).append(j)
    rows: dict[str, np.ndarray] = {}
    done = 0
    for members in groups.values():
        run_cfg = cfgs[members[0]]
        for start in range(0, len(members), chunk):
            sl = np.asarray(members[start : start + chunk])
            for prefix, part in parts:
                res = engine.simulate(
                    {k: v[part] for k, v in bars.items()}, entries_m[part], exits_m[part], sig_col=ecol[sl],
                    exit_col=xcol[sl], **{k: per[k][sl] for k in COLUMN_FIELDS}, **_sim_kwargs(run_cfg),
                )  # fmt: skip
                for k, v in metrics.compute(res, run_cfg["init_cash"], secs).items():
                    if prefix + k not in rows:
                        rows[prefix + k] = np.zeros(len(cfgs), dtype=v.dtype)
                    rows[prefix + k][sl] = v
            done += len(sl)
            if progress:
                progress(done)
    table = _key_table(keys, combos)
    for k, v in rows.items():
        table[k] = v
    return table


def sweep_warnings(table: pd.DataFrame) -> list[str]:
    """Non-fatal facts about a sweep's rows: entries the exchange's rules refused."""
    cols = [c for c in table.columns if c.endswith("rejected_entries")]
    total = int(table[cols].to_numpy().sum()) if cols else 0
    if not total:
        return []
    rows = int((table[cols].to_numpy() > 0).any(axis=1).sum())
    return [f"{total} entries refused in {rows} rows: the leverage is above the tier's maximum for the notional"]


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
