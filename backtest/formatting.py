"""How backtest numbers read to a trader, shared by the CLI table and the HTML reports: percentages for
returns, drawdown, win rate and exposure; two decimals for ratios; thousands separators for money; "off" for a
switched-off setting (None or NaN); "—" for an undefined metric; and the sweep table fitted to a terminal."""

from __future__ import annotations

import math
import textwrap
from typing import Any

import pandas as pd

PERCENT = ("total_return", "cagr", "max_drawdown", "win_rate", "exposure")
RATIO = ("sharpe", "sortino", "profit_factor")
MONEY = ("fees_paid", "funding_paid", "init_cash", "pnl", "fees", "funding", "margin", "equity")
COUNT = ("trades", "liquidations", "bars")
#: settings that are decimals of price or equity, shown as percent
PERCENT_SETTINGS = ("stop_pct", "take_profit_pct", "fee_rate", "slippage", "liquidation_fee_rate", "exit_fraction",
                    "near_pct", "funding_recovery")  # fmt: skip
#: sweep columns shown, most telling first (of each present); the whole table goes to --csv
SWEEP_METRICS = ("sharpe", "total_return", "max_drawdown", "trades", "win_rate", "liquidations")
LABELS = {"total_return": "return", "max_drawdown": "max dd", "win_rate": "win", "liquidations": "liq",
          "profit_factor": "PF"}  # fmt: skip


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def metric(name: str, value: Any) -> str:
    """One metric as text: ``metric("total_return", -0.0509869)`` → ``"-5.10 %"``."""
    if _missing(value):
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if name in PERCENT:
        return f"{100 * value:.2f} %"
    if name in RATIO:
        return f"{value:.2f}"
    if name in MONEY:
        return f"{value:,.2f}"
    if name in COUNT:
        return f"{int(value):,d}"
    if name.endswith("price"):  # 6 significant digits (at least 2 decimals): 101,516.50 / 224.350 / 0.00123456
        decimals = max(2, 5 - int(math.floor(math.log10(abs(value))))) if value else 2
        return f"{value:,.{decimals}f}"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def setting(name: str, value: Any, short: bool = False) -> str:
    """One strategy setting as text; None/NaN (switched off) → ``"off"``; ``short`` drops units that a table
    header already implies."""
    if _missing(value):
        return "off"
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if name in PERCENT_SETTINGS:
        return f"{100 * value:.4g} %"
    if name == "funding_threshold":
        return f"{100 * value:.4g} %" + ("" if short else " per interval")
    if name in MONEY:
        return f"{value:,.2f}"
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def sweep_table(table: pd.DataFrame, params: list[str], sort_key: str, top: int, width: int = 100) -> str:
    """The sweep results as text at most ``width`` columns wide: the swept settings ("off" where switched off),
    then the telling metrics (in- and out-of-sample when split), formatted; a last line says how many rows
    are shown of how many, and by which metric they are sorted."""
    split = any(c.startswith("is_") for c in table.columns)
    metric_cols = []
    for m in SWEEP_METRICS:
        for prefix in ("is_", "oos_") if split else ("",):
            if prefix + m in table.columns:
                metric_cols.append(prefix + m)
    if sort_key in metric_cols:
        metric_cols.remove(sort_key)
    metric_cols.insert(0, sort_key)
    shown = table.head(top)

    def header(col: str) -> str:
        for prefix in ("is_", "oos_"):
            if col.startswith(prefix):
                return f"{prefix[:-1].upper()} {LABELS.get(col[len(prefix) :], col[len(prefix) :])}"
        return LABELS.get(col, col)

    def column(col: str, kind: str) -> list[str]:
        name = col.split("_", 1)[1] if col.startswith(("is_", "oos_")) else col
        cells = [setting(col, v, short=True) if kind == "param" else metric(name, v) for v in shown[col].tolist()]
        return [header(col)] + cells

    cols = [column(c, "param") for c in params] + [column(c, "metric") for c in metric_cols]
    widths = [max(len(s) for s in c) for c in cols]
    keep, used = [], 0
    for i, w in enumerate(widths):
        if used + w + (2 if keep else 0) > width and i >= len(params):
            break
        keep.append(i)
        used += w + (2 if len(keep) > 1 else 0)
    lines = []
    for r in range(len(shown) + 1):
        lines.append("  ".join(cols[i][r].rjust(widths[i]) for i in keep))
    dropped = len(cols) - len(keep)
    note = f"{len(shown)} of {len(table)} rows, sorted by {header(sort_key)} (best first)"
    if len(shown) < len(table):
        note += f"; --top {len(table)} for all"
    if dropped:
        note += f"; {dropped} metric columns left out to fit {width} columns"
    lines += textwrap.wrap(note + "; --csv writes every metric", width)
    return "\n".join(lines)
