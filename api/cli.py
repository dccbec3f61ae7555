"""The ``liqrisk`` command: ``calc`` (the HTTP API's calculators, :mod:`api.calc_cli`), ``serve`` (gunicorn
with the repository's gunicorn.conf.py settings), and the backtester's ``backtest`` and ``sweep``
(from :mod:`backtest.cli`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the HTTP API with gunicorn")
    p.add_argument("--bind", default=os.environ.get("LIQRISK_BIND", "127.0.0.1:8000"),
                   help="host:port to listen on (default: LIQRISK_BIND, else 127.0.0.1:8000)")  # fmt: skip
    p.add_argument("--workers", type=int, default=None,
                   help="gunicorn worker processes (default: LIQRISK_WORKERS, else one per core)")  # fmt: skip
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    conf = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
    argv = ["gunicorn", "--bind", args.bind]
    if conf.is_file():
        argv += ["-c", str(conf)]
    if args.workers:
        argv += ["--workers", str(args.workers)]
    argv.append("api:create_app()")
    os.execvp(sys.executable, [sys.executable, "-m", *argv])
    return 0  # pragma: no cover


def main(argv: list[str] | None = None) -> int:
    from backtest import cli as bt_cli

    from . import calc_cli

    parser = argparse.ArgumentParser(prog="liqrisk", description="liqrisk: crypto-derivatives risk engine")
    sub = parser.add_subparsers(dest="command", required=True)
    calc_cli.register(sub)
    register(sub)
    bt_cli.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
