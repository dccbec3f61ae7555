"""Backtest reports: a self-contained HTML page (plotly, its JavaScript embedded so it opens offline) and an
optional PNG (matplotlib). Panels: price with entries, exits and liquidations; equity; drawdown; funding."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd


def _series(frame: pd.DataFrame, result: dict[str, Any]):
    eq = np.asarray(result["equity"], dtype=float)
    peak = np.maximum.accumulate(np.maximum(eq, 1e-12))
    dd = eq / peak - 1.0
    trades = result["trades"]
    entry = [t["entry_bar"] for t in trades]
    normal = [t["exit_bar"] for t in trades if t["exit_reason"] != "liquidation"]
    liq = [t["exit_bar"] for t in trades if t["exit_reason"] == "liquidation"]
    return eq, dd, entry, normal, liq


def html_report(frame: pd.DataFrame, result: dict[str, Any], path: str, title: str = "liqrisk backtest") -> str:
    """Write the HTML report to ``path`` and return the path."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    eq, dd, entry, normal, liq = _series(frame, result)
    x = frame.index
    close = frame["close"].to_numpy()
    titles = ("price", "equity (quote)", "drawdown", "funding rate (per interval)")
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, row_heights=[0.45, 0.2, 0.15, 0.2], vertical_spacing=0.03,
                        subplot_titles=titles)  # fmt: skip
    fig.add_trace(go.Scattergl(x=x, y=close, name="close", line={"width": 1, "color": "#444"}), 1, 1)
    for bars, name, sym, color in ((entry, "entry", "triangle-up", "green"), (normal, "exit", "x", "blue"),
                                   (liq, "liquidation", "star", "red")):  # fmt: skip
        if bars:
            fig.add_trace(go.Scatter(x=x[bars], y=close[bars], mode="markers", name=name,
                                     marker={"symbol": sym, "size": 9, "color": color}), 1, 1)  # fmt: skip
    fig.add_trace(go.Scattergl(x=x, y=eq, name="equity", line={"color": "#1f77b4"}), 2, 1)
    fig.add_trace(go.Scattergl(x=x, y=dd, name="drawdown", fill="tozeroy", line={"color": "#d62728"}), 3, 1)
    f = frame["funding_rate"]
    f = f[f.notna()]
    fig.add_trace(go.Bar(x=f.index, y=f.to_numpy(), name="funding"), 4, 1)
    fig.update_layout(height=1000, title=title, showlegend=True)
    m = result["metrics"]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{v:.6g}</td></tr>" if isinstance(v, float)
                   else f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in m.items())  # fmt: skip
    body = fig.to_html(full_html=False, include_plotlyjs=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                 "<style>body{font-family:sans-serif}table{border-collapse:collapse}th,td{padding:2px 8px;"
                 "text-align:left;border-bottom:1px solid #ddd}</style></head><body>"
                 f"<h1>{html.escape(title)}</h1><table>{rows}</table>{body}</body></html>")  # fmt: skip
    return path


def png_report(frame: pd.DataFrame, result: dict[str, Any], path: str, title: str = "liqrisk backtest") -> str:
    """Write a PNG of the same four panels (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eq, dd, entry, normal, liq = _series(frame, result)
    x = frame.index
    close = frame["close"].to_numpy()
    fig, ax = plt.subplots(4, 1, sharex=True, figsize=(12, 10), height_ratios=[3, 1.5, 1, 1])
    ax[0].plot(x, close, lw=0.7, color="#444")
    ax[0].scatter(x[entry], close[entry], marker="^", color="green", s=20, label="entry")
    ax[0].scatter(x[normal], close[normal], marker="x", color="blue", s=20, label="exit")
    ax[0].scatter(x[liq], close[liq], marker="*", color="red", s=60, label="liquidation")
    ax[0].legend(loc="upper left")
    ax[0].set_title(title)
    ax[1].plot(x, eq, color="#1f77b4")
    ax[1].set_ylabel("equity")
    ax[2].fill_between(x, dd, 0, color="#d62728")
    ax[2].set_ylabel("drawdown")
    f = frame["funding_rate"]
    f = f[f.notna()]
    ax[3].bar(f.index, f.to_numpy(), width=0.3)
    ax[3].set_ylabel("funding")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
