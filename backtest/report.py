"""Backtest reports a trader reads.

``html_report``: one HTML page that says what was tested before what it earned: the data source (a red
"synthetic" banner when the bars are simulated), symbol, timeframe, period, every strategy setting, the data's
warnings, the metrics formatted (percent, money, ratios), the trade list (entry and exit time and price, reason,
PnL, fees, funding), and one plotly figure (price with trades, equity, drawdown, funding) whose series are
downsampled to at most ``max_points`` points each (the extremes of each bucket are kept, so spikes and
liquidation wicks still show). The page loads one plotly bundle: by default ``plotly.min.js`` written once next
to the report (shared by every report in that folder; the tables read without it), or embedded with
``self_contained=True`` (adds about 4.8 MB).

``sweep_report``: the sweep's table, sortable by any column, and a heatmap of the ranking metric over two swept
settings (the mean over the other settings), in plain HTML and CSS.

``png_report``: the same four panels as a PNG (matplotlib).
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .formatting import LABELS, metric, setting

CSS = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:1200px}"
    "table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{padding:3px 10px;border-bottom:1px solid #ddd;"
    "text-align:right;font-variant-numeric:tabular-nums}th{background:#f5f5f5}td.l,th.l{text-align:left}"
    ".synthetic{background:#b00020;color:#fff;padding:.6rem 1rem;font-weight:bold;border-radius:4px}"
    ".warn{color:#8a4b00}.grid{display:flex;flex-wrap:wrap;gap:2rem}.note{color:#666;font-size:.9em}"
    "th.sort{cursor:pointer}th.sort:after{content:' \\2195';color:#999}"
)
METRIC_MEANING = {
    "total_return": "final equity / initial − 1",
    "cagr": "compound annual growth rate",
    "sharpe": "annualised, zero risk-free rate",
    "sortino": "annualised, downside deviation",
    "max_drawdown": "deepest fall from a peak of equity",
    "trades": "closed trades",
    "win_rate": "share of trades with net PnL > 0",
    "profit_factor": "gross wins / gross losses (∞: no loss)",
    "exposure": "share of bars in a position",
    "fees_paid": "open/close fees and liquidation fees, quote",
    "funding_paid": "net funding paid (> 0) or received (< 0), quote",
    "liquidations": "trades ended by liquidation",
}
MAX_TRADE_ROWS = 5000


def downsample(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points of (x, y): the series is cut into ``max_points // 2`` buckets and each keeps
    its lowest and highest point, in time order (min-max decimation: a chart of the result shows the same
    envelope as the full series)."""
    n = len(y)
    if n <= max_points:
        return x, y
    buckets = max(max_points // 2, 1)
    edges = np.linspace(0, n, buckets + 1).astype(int)
    keep = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b <= a:
            continue
        seg = y[a:b]
        if np.isnan(seg).all():
            keep.append(a)
            continue
        lo, hi = a + int(np.nanargmin(seg)), a + int(np.nanargmax(seg))
        keep.extend(sorted({lo, hi}))
    idx = np.asarray(keep)
    return x[idx], y[idx]


def _series(frame: pd.DataFrame, result: dict[str, Any]):
    eq = np.asarray(result["equity"], dtype=float)
    peak = np.maximum.accumulate(np.maximum(eq, 1e-12))
    dd = eq / peak - 1.0
    trades = result["trades"]
    entry = [t["entry_bar"] for t in trades]
    normal = [t["exit_bar"] for t in trades if t["exit_reason"] != "liquidation"]
    liq = [t["exit_bar"] for t in trades if t["exit_reason"] == "liquidation"]
    return eq, dd, entry, normal, liq


def when(value: Any) -> str:
    """A time as ``2025-02-04 11:10 UTC`` (ISO strings and timestamps alike)."""
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError):
        return str(value)
    t = t.tz_convert("UTC") if t.tzinfo else t
    return t.strftime("%Y-%m-%d %H:%M") + (" UTC" if t.tzinfo else "")


def _table(rows: list[list[str]], head: list[str], left: int = 1, cls: str = "") -> str:
    def cell(tag: str, i: int, text: str) -> str:
        return f"<{tag}{' class=l' if i < left else ''}>{text}</{tag}>"

    out = [f"<table{f' class={cls}' if cls else ''}>"]
    if any(head):
        out += ["<thead><tr>", *(cell("th", i, html.escape(h)) for i, h in enumerate(head)), "</tr></thead>"]
    out.append("<tbody>")
    for r in rows:
        out.append("<tr>" + "".join(cell("td", i, html.escape(str(v))) for i, v in enumerate(r)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _about_html(about: dict[str, Any] | None, frame: pd.DataFrame) -> str:
    about = dict(about or {})
    parts = []
    if about.get("synthetic"):
        parts.append(
            "<p class=synthetic>SYNTHETIC DATA: these prices, funding rates and liquidations are simulated "
            "(seeded), not market history. Dates and symbol are labels only.</p>"
        )
    start = about.get("start") or (str(frame.index[0]) if len(frame) else "")
    end = about.get("end") or (str(frame.index[-1]) if len(frame) else "")
    facts = [
        ["data source", about.get("data", "bars given by the caller")],
        ["symbol", about.get("symbol", "")],
        ["timeframe", about.get("timeframe", "")],
        ["period", f"{when(start)} → {when(end)}" if start else ""],
        ["bars", f"{about.get('bars', len(frame)):,d}"],
    ]
    parts.append("<h2>What was tested</h2>" + _table(facts, ["", ""], left=2))
    warnings = about.get("warnings") or []
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings) or "<li>none</li>"
    parts.append(f"<h2>Data warnings</h2><ul class=warn>{items}</ul>")
    return "".join(parts)


def _settings_html(strategy: dict[str, Any]) -> str:
    rows = [[k, setting(k, v)] for k, v in strategy.items()]
    return "<h2>Settings</h2>" + _table(rows, ["setting", "value"], left=1)


def _bundle(path: Path, self_contained: bool) -> str:
    """The page's one plotly bundle: a <script> referencing plotly.min.js next to the report (copied there
    once), or the bundle itself."""
    from plotly.offline import get_plotlyjs

    if self_contained:
        return f"<script>{get_plotlyjs()}</script>"
    import plotly

    name = f"plotly-{plotly.__version__}.min.js"
    target = path.parent / name
    if not target.exists():
        source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        shutil.copyfile(source, target)
    return (
        f"<script src='{name}'></script><noscript><p class=note>The charts need JavaScript and {name} "
        "next to this file; the tables above read without them.</p></noscript>"
    )


def html_report(
    frame: pd.DataFrame,
    result: dict[str, Any],
    path: str,
    title: str = "liqrisk backtest",
    about: dict[str, Any] | None = None,
    max_points: int = 3000,
    self_contained: bool = False,
) -> str:
    """Write the HTML report to ``path`` and return the path. ``about``: ``data`` (source in words),
    ``synthetic``, ``symbol``, ``timeframe``, ``start``, ``end``, ``bars``, ``warnings``."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    out = Path(path)
    eq, dd, entry, normal, liq = _series(frame, result)
    x = np.asarray(frame.index)
    close = frame["close"].to_numpy(dtype=float)
    titles = ("price (close)", "equity (quote)", "drawdown", "funding rate (per interval)")
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, row_heights=[0.45, 0.2, 0.15, 0.2], vertical_spacing=0.04,
                        subplot_titles=titles)  # fmt: skip
    for row, y, name, color in (
        (1, close, "close", "#444"),
        (2, eq, "equity", "#1f77b4"),
        (3, dd, "drawdown", "#d62728"),
    ):
        xs, ys = downsample(x, y, max_points)
        fig.add_trace(go.Scatter(x=xs, y=ys, name=name, mode="lines", line={"width": 1, "color": color},
                                 fill="tozeroy" if row == 3 else None), row, 1)  # fmt: skip
    for bars, name, sym, color in ((entry, "entry", "triangle-up", "green"), (normal, "exit", "x", "blue"),
                                   (liq, "liquidation", "star", "red")):  # fmt: skip
        if bars:
            fig.add_trace(go.Scatter(x=x[bars], y=close[bars], mode="markers", name=name,
                                     marker={"symbol": sym, "size": 8, "color": color}), 1, 1)  # fmt: skip
    f = frame["funding_rate"] if "funding_rate" in frame else pd.Series(dtype=float)
    f = f[f.notna()]
    if len(f):
        fx, fy = downsample(np.asarray(f.index), f.to_numpy(dtype=float), max_points)
        fig.add_trace(go.Bar(x=fx, y=fy, name="funding", marker={"color": "#777"}), 4, 1)
    fig.update_layout(height=950, showlegend=True, margin={"t": 40, "l": 60, "r": 20, "b": 30})
    fig.update_yaxes(tickformat=".1%", row=3, col=1)
    fig.update_yaxes(tickformat=".3%", row=4, col=1)
    chart = fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})

    m = result["metrics"]
    metrics = [[k, METRIC_MEANING.get(k, ""), metric(k, v)] for k, v in m.items()]
    trades = result["trades"]
    shown = trades[:MAX_TRADE_ROWS]
    trade_rows = [
        [when(t.get("entry_time", t["entry_bar"])), metric("price", t["entry_price"]),
         when(t.get("exit_time", t["exit_bar"])),
         metric("price", t["exit_price"]), t["exit_reason"], metric("pnl", t["pnl"]), metric("fees", t["fees"]),
         metric("funding", t["funding"]), t["side"], setting("leverage", t["leverage"])]
        for t in shown
    ]  # fmt: skip
    cut = f"<p class=note>first {len(shown):,d} of {len(trades):,d} trades</p>" if len(shown) < len(trades) else ""
    body = [
        f"<h1>{html.escape(title)}</h1>",
        _about_html(about, frame),
        "<div class=grid><div><h2>Metrics</h2>",
        _table(metrics, ["metric", "meaning", "value"], left=2),
        "</div><div>",
        _settings_html(result.get("config") or result.get("strategy") or {}),
        "</div></div><h2>Charts</h2>",
        _bundle(out, self_contained),
        chart,
        f"<h2>Trades ({len(trades):,d})</h2>",
        cut,
        _table(
            trade_rows,
            [
                "entry time",
                "entry price",
                "exit time",
                "exit price",
                "reason",
                "net PnL",
                "fees",
                "funding",
                "side",
                "leverage",
            ],
            left=1,
        )  # fmt: skip
        if trades
        else "<p>no trades</p>",
        "<p class=note>Prices in quote currency per base unit; PnL net of fees and funding; funding > 0 paid.</p>",
    ]
    page = (
        f"<!doctype html><html lang=en><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{CSS}</style></head><body>"
        + "".join(body)
        + "</body></html>"
    )
    out.write_text(page, encoding="utf-8")
    return path


SORT_JS = (
    "document.querySelectorAll('table.sortable').forEach(function(t){t.querySelectorAll('th').forEach(function(th,i)"
    "{th.classList.add('sort');th.addEventListener('click',function(){var b=t.tBodies[0],rows=[].slice.call(b.rows),"
    "asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';rows.sort(function(r,s){var x=r.cells[i].dataset.v,"
    "y=s.cells[i].dataset.v,a=parseFloat(x),c=parseFloat(y);if(isNaN(a)&&isNaN(c))return asc?x.localeCompare(y):"
    "y.localeCompare(x);if(isNaN(a))return 1;if(isNaN(c))return -1;return asc?a-c:c-a;});rows.forEach(function(r)"
    "{b.appendChild(r);});});});});"
)


def _heat(value: float, lo: float, hi: float) -> str:
    if not np.isfinite(value) or not np.isfinite(lo) or hi <= lo:
        return "#eee"
    t = (value - lo) / (hi - lo)  # red (worst) → white → green (best)
    if t < 0.5:
        return f"rgb(230,{int(120 + 270 * t)},{int(120 + 270 * t)})"
    return f"rgb({int(255 - 270 * (t - 0.5))},230,{int(255 - 270 * (t - 0.5))})"


def sweep_report(
    table: pd.DataFrame,
    params: list[str],
    path: str,
    sort: str,
    heatmap: list[str],
    about: dict[str, Any] | None = None,
    strategy: dict[str, Any] | None = None,
) -> str:
    """Write the sweep's HTML report: what was tested, a heatmap of ``sort`` over the two settings of
    ``heatmap`` (mean over the other swept settings) and the whole table, sortable by clicking a header."""
    heatmap = [h.strip().replace("-", "_") for h in heatmap]
    if len(heatmap) != 2 or not set(heatmap) <= set(params) or heatmap[0] == heatmap[1]:
        raise ValueError(f"heatmap: two different swept settings, from {', '.join(params)}")
    a, b = heatmap
    keyed = table.assign(**{c: table[c].astype(object).where(table[c].notna(), "off") for c in heatmap})
    pivot = keyed.groupby([a, b], sort=False)[sort].mean().unstack(b)
    vals = pivot.to_numpy(dtype=float)
    lo, hi = (np.nanmin(vals), np.nanmax(vals)) if np.isfinite(vals).any() else (np.nan, np.nan)
    name = sort.split("_", 1)[1] if sort.startswith(("is_", "oos_")) else sort
    cells = ["<table><thead><tr><th>" + html.escape(f"{a} \\ {b}") + "</th>"]
    cells += [f"<th>{html.escape(setting(b, c if c != 'off' else None))}</th>" for c in pivot.columns]
    cells.append("</tr></thead><tbody>")
    for r, row in zip(pivot.index, vals, strict=True):
        cells.append(f"<tr><th>{html.escape(setting(a, r if r != 'off' else None, short=True))}</th>")
        cells += [f"<td style='background:{_heat(v, lo, hi)}'>{html.escape(metric(name, v))}</td>" for v in row]
        cells.append("</tr>")
    cells.append("</tbody></table>")
    split = any(c.startswith("is_") for c in table.columns)
    heads, rows = list(table.columns), []
    for rec in table.itertuples(index=False):
        tds = []
        for col, v in zip(heads, rec, strict=True):
            base = col.split("_", 1)[1] if col.startswith(("is_", "oos_")) else col
            text = setting(col, v) if col in params else metric(base, v)
            num = "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else v
            tds.append(f"<td data-v='{html.escape(str(num))}'>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(tds) + "</tr>")

    def label(col: str) -> str:
        for p in ("is_", "oos_"):
            if col.startswith(p):
                return f"{p[:-1].upper()} {LABELS.get(col[len(p) :], col[len(p) :])}"
        return LABELS.get(col, col)

    title = f"liqrisk sweep — {(about or {}).get('symbol', '')} {(about or {}).get('timeframe', '')}".strip()
    body = [
        f"<h1>{html.escape(title)}</h1>",
        _about_html(about, pd.DataFrame(index=pd.DatetimeIndex([]))),
        _settings_html({k: ("swept" if k in params else v) for k, v in (strategy or {}).items()}) if strategy else "",
        f"<h2>{html.escape(label(sort))} by {html.escape(a)} and {html.escape(b)}</h2>",
        "<p class=note>Mean over the other swept settings; green best, red worst."
        + (" In-sample (IS) and out-of-sample (OOS) parts are simulated from fresh capital." if split else "")
        + "</p>",
        "".join(cells),
        f"<h2>All {len(table):,d} combinations</h2><p class=note>Click a header to sort.</p>",
        "<table class=sortable><thead><tr>" + "".join(f"<th>{html.escape(label(h))}</th>" for h in heads),
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>",
        f"<script>{SORT_JS}</script>",
        f"<script type=application/json id=grid>{html.escape(json.dumps(params))}</script>",
    ]
    page = (
        f"<!doctype html><html lang=en><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{CSS}</style></head><body>"
        + "".join(body)
        + "</body></html>"
    )
    Path(path).write_text(page, encoding="utf-8")
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
