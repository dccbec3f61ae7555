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
import webbrowser
from pathlib import Path
from typing import Any

from .params import CHOICES, RANGES

NUMBER_FIELDS = tuple(RANGES)
#: word-valued fields with their own options (``--side`` and ``--size-mode`` keep their historic spelling)
WORD_FIELDS = tuple(k for k in CHOICES if k not in ("side", "size_mode"))
RULE_FIELDS = ("entry_rule", "exit_rule", "entry_times", "exit_times")


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
    p.add_argument("--side", choices=("long", "short"), default="long",
                   help="long: short-squeeze rule; short: long-squeeze rule")  # fmt: skip
    p.add_argument("--size-mode", choices=("fraction", "risk"), default=None)
    p.add_argument("--exchange", default=None, help="liquidation ruleset (default binance)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON on stdout")
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
                       default=argparse.SUPPRESS)  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("backtest", help="backtest a squeeze rule (leverage, funding, liquidation)")
    _common(b, many=False)
    b.add_argument("--report", help="write an HTML report to this path")
    b.add_argument("--png", help="also write a PNG of the report")
    b.add_argument("--open", action="store_true", help="open the HTML report in a browser")
    b.add_argument("--trades", help="write the trades as CSV to this path")
    b.set_defaults(func=_backtest)
    s = sub.add_parser("sweep", help="parameter grid with an in-sample/out-of-sample split")
    _common(s, many=True)
    s.add_argument("--split", type=float, default=0.7, help="in-sample share of the bars (default 0.7; 0 = none)")
    s.add_argument("--chunk", type=int, default=128, help="columns simulated at once (memory bound)")
    s.add_argument("--sort", default="sharpe", help="metric to rank by (default sharpe)")
    s.add_argument("--top", type=int, default=20, help="rows to print (default 20)")
    s.add_argument("--csv", help="write the whole results table as CSV")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=_sweep)


def load_frame(args: argparse.Namespace):
    """The market frame the options ask for, and the symbol to price liquidations with."""
    from . import data as D
    from .synthetic import synthetic_market

    warnings: list[str] = []
    if args.data:
        symbol = args.symbol or "BTC"
        frame, reports, warnings = D.load_dataset(args.data, symbol, args.timeframe, args.liquidations)
        for r in reports:
            warnings += r.warnings
    else:
        frame = synthetic_market(bars=args.bars, timeframe=args.timeframe, seed=args.seed)
        symbol = args.symbol or "BTC"
    if args.start:
        frame = frame[frame.index >= args.start]
    if args.end:
        frame = frame[frame.index <= args.end]
    base = symbol.upper().removesuffix("USDT")
    return frame, base + "USDT", warnings


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


def _backtest(args: argparse.Namespace) -> int:
    from . import report as R
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
    if args.json:
        from core.jsonable import to_jsonable

        print(json.dumps(to_jsonable({**m, "warnings": warnings})))
    else:
        print(f"{len(frame)} bars {frame.index[0]} → {frame.index[-1]}, {symbol}, side {cfg['side']}")
        for k, v in m.items():
            print(f"  {k:14s} {v:.6g}" if isinstance(v, float) else f"  {k:14s} {v}")
    if args.trades:
        import pandas as pd

        pd.DataFrame(result["trades"]).to_csv(args.trades, index=False)
    if args.report or args.open:
        path = args.report or str(Path.cwd() / "liqrisk-backtest.html")
        R.html_report(frame, result, path, title=f"liqrisk backtest — {symbol} {args.timeframe} {cfg['side']}")
        print(f"report: {path}", file=sys.stderr)
        if args.open:
            webbrowser.open(Path(path).resolve().as_uri())
    if args.png:
        R.png_report(frame, result, args.png)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .run import overfitting, sweep, sweep_warnings

    try:
        frame, symbol, warnings = load_frame(args)
        grid = {k: getattr(args, k) for k in NUMBER_FIELDS + WORD_FIELDS if hasattr(args, k)}
        if not grid:
            grid = {"breakout_window": [24, 48, 96], "surge_mult": [2.0, 3.0], "leverage": [2.0, 3.0, 5.0]}
        split = args.split if args.split else None
        total = math.prod(len(v) for v in grid.values())
        bar = None
        if not args.no_progress and not args.json:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="combo", file=sys.stderr)
        last = [0]

        def progress(k: int) -> None:
            if bar is not None:
                bar.update(k - last[0])
            last[0] = k

        table = sweep(frame, grid, _config(args, symbol), split=split, chunk=args.chunk, progress=progress)
        if bar is not None:
            bar.close()
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    warnings = warnings + sweep_warnings(table)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    key = ("is_" if split else "") + args.sort
    if key not in table:
        return _fail(f"sort: unknown metric {args.sort!r}")
    table = table.sort_values(key, ascending=False, na_position="last")
    if args.csv:
        table.to_csv(args.csv, index=False)
    if args.json:
        from core.jsonable import to_jsonable

        out = {"results": table.to_dict(orient="records"), "warnings": warnings}
        if split:
            out["overfitting"] = overfitting(table, args.sort)
        print(json.dumps(to_jsonable(out)))
        return 0
    print(table.head(args.top).to_string(index=False, float_format="{:.4g}".format))
    if split:
        print("\nin-sample vs out-of-sample:", json.dumps(overfitting(table, args.sort)))
    return 0
