"""``liqrisk backtest`` and ``liqrisk sweep``.

With no ``--data`` both run on the embedded synthetic market (seeded), so they work on any fresh machine.
``--data`` takes a folder in freqtrade's or Binance's naming (with ``--symbol`` and ``--timeframe``) or one
OHLCV/klines file; ``--liquidations`` adds a liquidation series. Rule and simulator options are the strategy
fields of :mod:`backtest.run` spelled with dashes (``--breakout-window 48``); in ``sweep`` each takes a
comma-separated list and the grid is their product.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
import time
import webbrowser
from pathlib import Path
from typing import Any

from .params import CHOICES, DEFAULTS, NULLABLE, POSITIVE, RANGES, WHOLE_BARS

NUMBER_FIELDS = tuple(RANGES)
#: word-valued fields with their own options (``--side`` and ``--size-mode`` keep their historic spelling)
WORD_FIELDS = tuple(k for k in CHOICES if k not in ("side", "size_mode"))
RULE_FIELDS = ("entry_rule", "exit_rule", "entry_times", "exit_times")
#: what each strategy field means in --help (the defaults and ranges come from backtest/params.py)
MEANING = {
    "leverage": "leverage of each trade, x",
    "stop_pct": "stop-loss distance from entry, decimal of price",
    "take_profit_pct": "take-profit distance from entry, decimal of price",
    "time_stop": "bars in a trade before it is closed; 0 = no time stop",
    "size_value": "fraction: share of equity put up as margin; risk: share of equity lost at the stop",
    "fee_rate": "taker fee per fill, decimal of notional",
    "slippage": "slippage per fill, decimal of price",
    "liquidation_fee_rate": "share of notional the exchange keeps at liquidation (capped by the margin left)",
    "init_cash": "starting equity, quote currency",
    "breakout_window": "entry: bars whose highest high (long; lowest low, short) is the level to break",
    "hold_bars": "entry: bars the close must hold beyond that level",
    "surge_mult": "entry: liquidations of the squeezed side above this multiple of their mean; 0 = off",
    "surge_window": "entry: bars of that mean",
    "funding_threshold": "entry: funding per interval the recent low must be below (mirrored for short); off = none",
    "funding_lookback": "entry: bars searched for that funding low",
    "funding_recovery": "entry: share of the way back to zero funding must have recovered",
    "exit_fraction": "exit: liquidations below this share of their recent peak; 0 = off",
    "peak_window": "exit: bars of that peak",
    "rsi_window": "exit: RSI period, bars",
    "rsi_level": "exit: RSI at or above this level turning down (100 − level for short); 100 = off",
    "wick_ratio": "exit: upper wick (lower for short) at least this share of the bar's range; 1 = off",
    "near_pct": "exit: the wick counts within this distance of the level, decimal of price",
}


def _field_help(name: str, many: bool) -> str:
    lo, hi = RANGES[name]
    text = MEANING.get(name, name.replace("_", " "))
    kind = "whole number" if name in WHOLE_BARS else "number"
    text += f"; {kind} {'>' if name in POSITIVE else '>='} {lo:g}, <= {hi:g}"
    if name in NULLABLE and "off" not in text:
        text += "; off = none"
    if many:
        text += "; comma-separated values to sweep"
    default = DEFAULTS.get(name)
    return (text + f" (default: {'off' if default is None else f'{default:g}'})").replace("%", "%%")


def _number(text: str) -> float | None:
    if text.strip().lower() in ("none", "off", "nan"):
        return None
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return v


def _numbers(text: str) -> list[float | None]:
    return [_number(t) for t in text.split(",") if t.strip()]


def _words(allowed: tuple[str, ...], many: bool):
    def parse(text: str):
        got = [t.strip() for t in text.split(",") if t.strip()] if many else [text.strip()]
        for t in got:
            if t not in allowed:
                raise argparse.ArgumentTypeError(f"{t!r}: one of {', '.join(allowed)}")
        return got if many else got[0]

    return parse


def _common(p: argparse.ArgumentParser, many: bool) -> None:
    p.add_argument("--data", help="folder (freqtrade/Binance file names) or one OHLCV file; default: synthetic")
    p.add_argument("--symbol", default=None, help="e.g. SOL or BTCUSDT (default: BTC for synthetic data)")
    p.add_argument("--timeframe", default="1h", help="bar interval: 5m, 1h, ... (default 1h)")
    p.add_argument("--liquidations", help="CSV with timestamp,long_liq,short_liq (Coinalyze or your own)")
    p.add_argument("--bars", type=int, default=8760, help="synthetic data: number of bars (default 8760)")
    p.add_argument("--seed", type=int, default=7, help="synthetic data: seed (default 7)")
    p.add_argument("--start", help="first bar to use (ISO date)")
    p.add_argument("--end", help="last bar to use (ISO date)")
    p.add_argument(
        "--side",
        choices=("long", "short"),
        default=DEFAULTS["side"],
        help=f"long: short-squeeze rule; short: long-squeeze rule (default: {DEFAULTS['side']})",
    )
    p.add_argument("--size-mode", choices=("fraction", "risk"), default=None,
                   help=f"how size_value sizes a trade (default: {DEFAULTS['size_mode']})")  # fmt: skip
    p.add_argument("--exchange", default=None, help=f"liquidation ruleset (default: {DEFAULTS['exchange']})")
    p.add_argument("--json", action="store_true",
                   help="print JSON: metrics, strategy settings, period, data source and warnings")  # fmt: skip
    for name in WORD_FIELDS:
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=_words(CHOICES[name], many),
                       default=argparse.SUPPRESS, help=" | ".join(CHOICES[name]))  # fmt: skip
    p.add_argument(
        "--entry-rule",
        dest="entry_rule",
        default=argparse.SUPPRESS,
        help="your own entry rule, e.g. 'close > rolling_max(high, 24) and funding_rate < -0.0005'",
    )
    p.add_argument("--exit-rule", dest="exit_rule", default=argparse.SUPPRESS, help="your own exit rule")
    p.add_argument(
        "--entry-times",
        dest="entry_times",
        default=argparse.SUPPRESS,
        help="comma-separated ISO times of forced entries (filled at that bar's open)",
    )
    p.add_argument("--exit-times", dest="exit_times", default=argparse.SUPPRESS,
                   help="comma-separated ISO times of forced exits")  # fmt: skip
    for name in NUMBER_FIELDS:
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=_numbers if many else _number,
                       default=argparse.SUPPRESS, help=_field_help(name, many))  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("backtest", help="backtest a squeeze rule (leverage, funding, liquidation)")
    _common(b, many=False)
    b.add_argument("--report", help="write an HTML report to this path")
    b.add_argument("--png", help="also write a PNG of the report")
    b.add_argument("--open", action="store_true", help="open the HTML report in a browser")
    b.add_argument("--self-contained", action="store_true",
                   help="embed the plotly bundle (one file, +4.8 MB), not a file next to the report")  # fmt: skip
    b.add_argument("--trades", help="write the trades as CSV to this path")
    b.set_defaults(func=_backtest)
    s = sub.add_parser("sweep", help="parameter grid with an in-sample/out-of-sample split")
    _common(s, many=True)
    s.add_argument("--split", type=float, default=0.7, help="in-sample share of the bars (default 0.7; 0 = none)")
    s.add_argument("--chunk", type=int, default=128, help="columns simulated at once (memory bound; default 128)")
    s.add_argument("--sort", default="sharpe", help="metric to rank by (default sharpe; in-sample when split)")
    s.add_argument("--top", type=int, default=20, help="rows to print (default 20)")
    s.add_argument("--csv", help="write the whole results table as CSV")
    s.add_argument("--report", help="write an HTML report: sortable table and a heatmap of two swept settings")
    s.add_argument("--heatmap", help="the two swept settings of the heatmap, e.g. leverage,surge_mult "
                   "(default: the first two)")  # fmt: skip
    s.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    s.add_argument(
        "--queue",
        action="store_true",
        help="run the chunks on the job workers (LIQRISK_BROKER_URL; --data under LIQRISK_DATA_DIR)",
    )
    s.set_defaults(func=_sweep)


def load_frame(args: argparse.Namespace):
    """The market frame the options ask for, and the symbol to price liquidations with."""
    from . import data, datasets
    from .synthetic import synthetic_market

    warnings: list[str] = []
    if args.data:
        symbol = args.symbol or "BTC"
        frame, reports, warnings = data.load_dataset(args.data, symbol, args.timeframe, args.liquidations)
        for r in reports:
            warnings += r.warnings
    else:
        frame = synthetic_market(bars=args.bars, timeframe=args.timeframe, seed=args.seed)
        symbol = args.symbol or "BTC"
    if args.start:
        frame = frame[frame.index >= args.start]
    if args.end:
        frame = frame[frame.index <= args.end]
    return frame, datasets.normalise_symbol(symbol), warnings


def _config(args: argparse.Namespace, symbol: str) -> dict[str, Any]:
    cfg: dict[str, Any] = {"side": args.side, "symbol": symbol}
    if args.size_mode:
        cfg["size_mode"] = args.size_mode
    if args.exchange:
        cfg["exchange"] = args.exchange
    for k in RULE_FIELDS:
        if hasattr(args, k):
            cfg[k] = getattr(args, k).split(",") if k.endswith("_times") else getattr(args, k)
    return cfg


def _fail(msg: str) -> int:
    print(f"liqrisk: {msg}", file=sys.stderr)
    return 2


#: the terminal width the tables and lines are fitted to
WIDTH = 100


def _say(text: str) -> None:
    print(textwrap.fill(text, WIDTH, subsequent_indent="  "))


def _source(args: argparse.Namespace) -> tuple[str, bool]:
    """Where the bars come from, in words, and whether they are synthetic."""
    if args.data:
        return f"{args.data}" + (f" + liquidations {args.liquidations}" if args.liquidations else ""), False
    return f"synthetic market (seed {args.seed}, {args.bars} bars): simulated prices, not market history", True


def _about(args: argparse.Namespace, frame, symbol: str, warnings: list[str], job=None) -> dict[str, Any]:
    """What a result was computed on: symbol, timeframe, data source, period and the data's warnings (for a
    sweep run on the job workers, the period their result names)."""
    source, synthetic = _source(args)
    if frame is None:
        period = {"bars": job["bars"], "start": job["start"], "end": job["end"]}
    else:
        period = {"bars": len(frame), "start": frame.index[0].isoformat(), "end": frame.index[-1].isoformat()}
    return {"symbol": symbol or (args.symbol or "BTC").upper(), "timeframe": args.timeframe, "data": source,
            "synthetic": synthetic, **period, "warnings": list(warnings)}  # fmt: skip


def _backtest(args: argparse.Namespace) -> int:
    from . import report
    from .run import run_backtest

    try:
        frame, symbol, warnings = load_frame(args)
        cfg = _config(args, symbol)
        cfg.update({k: getattr(args, k) for k in NUMBER_FIELDS + WORD_FIELDS if hasattr(args, k)})  # "off": None
        result = run_backtest(frame, cfg)
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    warnings = warnings + result["warnings"]
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    m = result["metrics"]
    about = _about(args, frame, symbol, warnings)
    if args.json:
        from core.jsonable import to_jsonable

        print(json.dumps(to_jsonable({"metrics": m, "strategy": result["config"], **about})))
    else:
        from .formatting import metric

        _say(f"{symbol} {args.timeframe} {cfg['side']}, {len(frame)} bars {frame.index[0]} → {frame.index[-1]}")
        _say(f"data: {about['data']}")
        for k, v in m.items():
            print(f"  {k:14s} {metric(k, v)}")
    if args.trades:
        import pandas as pd

        pd.DataFrame(result["trades"]).to_csv(args.trades, index=False)
    if args.report or args.open:
        path = args.report or str(Path.cwd() / "liqrisk-backtest.html")
        report.html_report(frame, result, path, title=f"liqrisk backtest — {symbol} {args.timeframe} {cfg['side']}",
                      about=about, self_contained=args.self_contained)  # fmt: skip
        print(f"report: {path}", file=sys.stderr)
        if args.open:
            webbrowser.open(Path(path).resolve().as_uri())
    if args.png:
        report.png_report(frame, result, args.png)
    return 0


def _queued_sweep(args: argparse.Namespace, grid: dict[str, list], split: float | None, progress) -> tuple:
    """Submit the sweep to the job workers as chunk tasks and follow its progress; returns (table, warnings,
    the job's result)."""
    import os
    import time
    import uuid

    import pandas as pd

    from . import datasets, queue

    url = queue.broker_url()
    if not url:
        raise ValueError("queue: set LIQRISK_BROKER_URL to the workers' Redis")
    if args.liquidations:
        raise ValueError("queue: --liquidations is not available with --queue")
    if args.data:
        root = os.environ.get("LIQRISK_DATA_DIR", "")
        folder = os.path.abspath(args.data)
        if not root or not (folder == os.path.abspath(root) or folder.startswith(os.path.abspath(root) + os.sep)):
            raise ValueError("data: with --queue, a folder under LIQRISK_DATA_DIR (where the workers read it)")
        name = os.path.relpath(folder, root)
        name = os.path.basename(os.path.abspath(root)) if name == "." else name.replace(os.sep, "/")
        dataset: dict[str, Any] = {"name": name, "symbol": datasets.normalise_symbol(args.symbol or "BTC"),
                                   "timeframe": args.timeframe}  # fmt: skip
        if datasets.find(root, name, dataset["symbol"], args.timeframe) is None:
            raise ValueError(f"data: no {args.timeframe} klines for {dataset['symbol']} in {args.data}")
        for k in ("start", "end"):
            if getattr(args, k):
                dataset[k] = getattr(args, k)
    else:
        dataset = {"name": "synthetic", "bars": args.bars, "timeframe": args.timeframe, "seed": args.seed}
        if args.start or args.end:
            raise ValueError("queue: --start/--end need --data")
    strategy = _config(args, datasets.normalise_symbol(args.symbol or "BTC"))
    total = math.prod(len(v) for v in grid.values())
    s = queue.settings()
    app = queue.celery_app(url, s["result_ttl"], s["visibility_timeout"], s["time_limit"])
    store = queue.JobStore.from_url(url, s["result_ttl"])
    job_id = uuid.uuid4().hex
    request = {"strategy": strategy, "grid": grid, "dataset": dataset, "split": split, "sort": args.sort,
               "top": total, "chunk": args.chunk}  # fmt: skip
    queue.enqueue(app, store, job_id, "sweep", request, "cli", chunks=queue.sweep_chunks(grid, args.chunk))
    done = 0
    try:
        while True:
            job = queue.job_view(app, store, job_id) or {"status": "failed", "error": {"detail": "the job expired"}}
            now = int(round(job["progress"] * total)) if "progress" in job else done
            if now > done:
                progress(now)
            done = max(done, now)
            if job["status"] in queue.FINAL:
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        store.cancel(job_id)
        app.control.revoke([job_id] + [f"{job_id}.{i}" for i in range(int(store.get(job_id).get("chunks", 0)))],
                           terminate=True, signal="SIGKILL")  # fmt: skip
        raise
    if job["status"] != "succeeded":
        raise ValueError(f"queue: the sweep {job['status']}: {(job.get('error') or {}).get('detail', '')}")
    res = job["result"]
    return pd.DataFrame(res["results"]), res.get("warnings", []), res


class _Progress:
    """One progress bar on a terminal (drawn when the first chunk is done, so nothing printed before it
    breaks the line); one summary line when stderr is not a terminal."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.bar, self.last = total, enabled, None, 0
        self.started = time.perf_counter()

    def __call__(self, done: int) -> None:
        if not self.enabled:
            return
        if sys.stderr.isatty():
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=self.total, unit="combo", file=sys.stderr, leave=True)
            self.bar.update(done - self.last)
        self.last = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            took = time.perf_counter() - self.started
            print(f"swept {self.last} of {self.total} combos in {took:.1f} s", file=sys.stderr)


def _sweep(args: argparse.Namespace) -> int:
    from .formatting import sweep_table
    from .run import overfitting, strategy, sweep, sweep_warnings

    try:
        if args.queue:
            from .datasets import normalise_symbol

            frame, symbol, warnings = None, normalise_symbol(args.symbol or "BTC"), []
        else:
            frame, symbol, warnings = load_frame(args)
        grid = {k: getattr(args, k) for k in NUMBER_FIELDS + WORD_FIELDS if hasattr(args, k)}
        if not grid:
            grid = {"breakout_window": [24, 48, 96], "surge_mult": [2.0, 3.0], "leverage": [2.0, 3.0, 5.0]}
        split = args.split if args.split else None
        total = math.prod(len(v) for v in grid.values())
        progress = _Progress(total, enabled=not args.no_progress and not args.json)
        cfg = _config(args, symbol)
        job: dict[str, Any] | None = None
        if args.queue:
            table, warnings, job = _queued_sweep(args, grid, split, progress)
        else:
            table = sweep(frame, grid, cfg, split=split, chunk=args.chunk, progress=progress)
        progress.close()
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    if job is None:  # the workers' result already names them
        warnings = warnings + sweep_warnings(table)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    key = ("is_" if split else "") + args.sort
    if key not in table:
        return _fail(f"sort: unknown metric {args.sort!r}")
    table = table.sort_values(key, ascending=False, na_position="last")
    if args.csv:
        table.to_csv(args.csv, index=False)
    about = _about(args, frame, symbol, warnings, job)
    settings = strategy(cfg)  # every setting, the defaults filled in
    if args.report:
        from . import report

        pair = args.heatmap.split(",") if args.heatmap else list(grid)[:2]
        try:
            report.sweep_report(table, list(grid), args.report, sort=key, heatmap=pair, about=about, strategy=settings)
        except ValueError as exc:
            return _fail(str(exc))
        print(f"report: {args.report}", file=sys.stderr)
    if args.json:
        from core.jsonable import to_jsonable

        out = {"results": table.to_dict(orient="records"), "grid": grid, "strategy": settings, **about}
        if split:
            out["overfitting"] = overfitting(table, args.sort)
        print(json.dumps(to_jsonable(out)))
        return 0
    _say(f"{about['symbol']} {args.timeframe}, {about['bars']} bars {about['start']} → {about['end']}")
    _say(f"data: {about['data']}")
    print(sweep_table(table, list(grid), key, args.top, width=WIDTH))
    if split:
        o = overfitting(table, args.sort)
        _say(
            f"in-sample vs out-of-sample ({o['metric']}): rank correlation {o['rank_correlation']:.2f}; "
            f"best in-sample {o['best_in_sample']:.2f} → out-of-sample {o['its_out_of_sample']:.2f} "
            f"(median out-of-sample {o['median_out_of_sample']:.2f})"
        )
    return 0
