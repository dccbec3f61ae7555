"""``liqrisk calibrate``: replay a real dataset and score the liquidation probability against what happened
(:mod:`backtest.calibrate`)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any


def _floats(text: str) -> list[float]:
    try:
        out = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not out or not all(math.isfinite(v) and v > 0 for v in out):
        raise argparse.ArgumentTypeError(f"need one or more finite numbers > 0: {text!r}")
    return out


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _listed(values: Any) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def register(sub: argparse._SubParsersAction) -> None:
    import inspect

    from .calibrate import BAND_EDGES, MODELS, calibration_samples

    # one source for the defaults: calibration_samples's own
    default = {k: v.default for k, v in inspect.signature(calibration_samples).parameters.items()}

    p = sub.add_parser(
        "calibrate",
        help="check the liquidation probability against a real market (Brier score, reliability table)",
        description="At each bar, for each leverage and side, open a hypothetical isolated position at the close, "
        "predict the probability of liquidation within each horizon with each model (volatility: EWMA of past "
        "mark closes only), and compare with whether the mark price reached the liquidation price.",
    )
    p.add_argument("--data", required=True, help="folder in freqtrade's or Binance's naming, or one OHLCV file")
    p.add_argument("--symbol", type=_names, default=["BTCUSDT"],
                   help="e.g. SOLUSDT, or several pooled: BTCUSDT,ETHUSDT,SOLUSDT (default BTCUSDT)")  # fmt: skip
    p.add_argument("--timeframe", default=default["timeframe"], help=f"bar interval (default {default['timeframe']})")
    p.add_argument("--exchange", default=default["exchange"],
                   help=f"liquidation ruleset and tiers (default {default['exchange']})")  # fmt: skip
    p.add_argument("--horizon", type=_floats, default=list(default["horizons_hours"]),
                   help=f"hours, comma-separated (default {_listed(default['horizons_hours'])})")  # fmt: skip
    p.add_argument("--leverage", type=_floats, default=list(default["leverages"]),
                   help=f"comma-separated (default {_listed(default['leverages'])})")  # fmt: skip
    p.add_argument("--side", type=_names, default=list(default["sides"]),
                   help=f"long,short (default {_listed(default['sides'])})")  # fmt: skip
    p.add_argument("--model", type=_names, default=list(MODELS), help=f"{','.join(MODELS)} (default all)")
    p.add_argument("--step", type=int, default=default["step"],
                   help=f"predict at every k-th bar (default {default['step']})")  # fmt: skip
    p.add_argument("--notional", type=float, default=default["notional"],
                   help=f"position size in quote (default {default['notional']:g})")  # fmt: skip
    p.add_argument("--lam", type=float, default=default["lam"],
                   help=f"EWMA decay λ of the volatility (default {default['lam']:g})")  # fmt: skip
    p.add_argument("--warmup", type=int, default=None, help="bars skipped at the start (default: the EWMA window)")
    p.add_argument(
        "--monitoring-minutes",
        type=float,
        default=None,
        help="barrier check interval for gbm_bgk and the student_t step (default: the bar length)",
    )
    p.add_argument("--paths", type=int, default=default["paths"],
                   help=f"student_t Monte Carlo paths (default {default['paths']})")  # fmt: skip
    p.add_argument("--seed", type=int, default=default["seed"], help=f"student_t seed (default {default['seed']})")
    p.add_argument(
        "--bands",
        type=_floats,
        default=list(BAND_EDGES[1:-1]),
        help="the four band cut-offs on the predicted probability to tabulate (default 0.01,0.05,0.15,0.35)",
    )
    p.add_argument("--start", help="first bar to use (ISO date)")
    p.add_argument("--end", help="last bar to use (ISO date)")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON on stdout")
    p.add_argument("--out", help="also write the JSON report to this path")
    p.add_argument("--png", help="write a reliability diagram (PNG) to this path")
    p.add_argument("--no-progress", action="store_true", help="no progress bar for the student_t Monte Carlo")
    p.set_defaults(func=_calibrate)


def _print_table(rep: dict[str, Any]) -> None:
    print(f"{'+'.join(rep['symbols'])} {rep['timeframe']} {rep['start']} → {rep['end']}: {rep['predictions']} "
          f"predictions, skipped {rep['skipped']}")  # fmt: skip
    for model, s in rep["models"].items():
        print(f"\n{model}: Brier {s['brier']:.4f} (base-rate forecast {s['brier_reference']:.4f}, skill "
              f"{s['brier_skill']:.3f}), log loss {s['log_loss']:.4f}, base rate {s['base_rate']:.4f}")  # fmt: skip
        print("  bin          count   mean predicted   observed")
        for r in s["reliability"]:
            if r["count"]:
                print(f"  {r['lower']:.1f}–{r['upper']:.1f}   {r['count']:8d}   {r['mean_predicted']:14.4f}"
                      f"   {r['observed_frequency']:8.4f}")  # fmt: skip
    for h in rep["by_horizon"]:
        print(f"\n{h['horizon_hours']:g} h, base rate {h['base_rate']:.4f}: observed frequency per band "
              f"(cut-offs {', '.join(f'{v:g}' for v in rep['band_edges'][1:-1])})")  # fmt: skip
        for model in rep["models"]:
            cells = [f"{b['band']} {b['observed_frequency']:.4f} (n {b['count']})" for b in h[model]["bands"]]
            print(f"  {model:10s} " + "; ".join(cells))


def _calibrate(args: argparse.Namespace) -> int:
    from . import calibrate
    from .data import load_dataset
    from .datasets import normalise_symbol

    try:
        frames, warnings = {}, []
        for name in args.symbol:
            frame, reports, warns = load_dataset(args.data, name, args.timeframe)
            if args.start:
                frame = frame[frame.index >= args.start]
            if args.end:
                frame = frame[frame.index <= args.end]
            frames[normalise_symbol(name)] = frame
            warnings += [f"{name}: {w}" for w in warns + [w for r in reports for w in r.warnings]]
        bar, progress = None, None
        if "student_t" in args.model and not (args.json or args.no_progress):
            from tqdm import tqdm

            bar = tqdm(unit="bar", desc="student_t", file=sys.stderr)

            def progress(done: int, total: int) -> None:
                if bar.total != total:
                    bar.reset(total=total)
                bar.n = done
                bar.refresh()

        rep = calibrate.calibrate(
            frames,
            progress=progress,
            band_edges=args.bands,
            exchange=args.exchange,
            timeframe=args.timeframe,
            horizons_hours=args.horizon,
            leverages=args.leverage,
            sides=args.side,
            models=args.model,
            step=args.step,
            notional=args.notional,
            lam=args.lam,
            warmup=args.warmup,
            monitoring_minutes=args.monitoring_minutes,
            paths=args.paths,
            seed=args.seed,
        )
        if bar is not None:
            bar.close()
    except (ValueError, OSError) as exc:
        print(f"liqrisk: {exc}", file=sys.stderr)
        return 2
    for w in warnings:
        if "liquidation series" not in w:  # the liquidation-volume proxy plays no part here
            print(f"warning: {w}", file=sys.stderr)
    if args.out:
        calibrate.write_json(rep, args.out)
    if args.png:
        panels = {f"{k} {args.timeframe}": v for k, v in rep.get("by_symbol", {}).items()}
        panels[f"{'+'.join(rep['symbols'])} {args.timeframe}"] = rep
        calibrate.reliability_png(panels, args.png)
    if args.json:
        from core.jsonable import to_jsonable

        print(json.dumps(to_jsonable(rep)))
    else:
        _print_table(rep)
    return 0
