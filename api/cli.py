"""The ``liqrisk`` command: ``calc`` (the HTTP API's calculators, :mod:`api.calc_cli`), ``serve`` (gunicorn
with the repository's gunicorn.conf.py settings), ``worker`` (a job worker on the queue), the backtester's
``backtest`` and ``sweep`` (from :mod:`backtest.cli`), ``calibrate`` and ``tiers refresh``
(from :mod:`api.tier_refresh`)."""

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
                   help="light worker processes (default: LIQRISK_WORKERS, else one per core); the heavy ones are "
                        "LIQRISK_HEAVY_WORKERS (api/heavy_workers.py)")  # fmt: skip
    p.set_defaults(func=_serve)
    w = sub.add_parser("worker", help="run backtest and sweep jobs from the queue (LIQRISK_BROKER_URL)")
    w.add_argument("--concurrency", type=int, default=None, help="pool processes (default: one per core)")
    w.add_argument("--hostname", default=None, help="worker name (default: celery's, worker@<host>)")
    w.add_argument("--include", action="append", default=[], help="extra task module to load (repeatable)")
    w.add_argument("--loglevel", default=os.environ.get("LIQRISK_LOG_LEVEL", "info"))
    w.set_defaults(func=_worker)


def _serve(args: argparse.Namespace) -> int:
    conf = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
    argv = ["gunicorn", "--bind", args.bind]
    if conf.is_file():
        argv += ["-c", str(conf)]
    if args.workers:
        os.environ["LIQRISK_WORKERS"] = str(args.workers)  # gunicorn.conf.py adds the heavy workers to it
        if not conf.is_file():
            argv += ["--workers", str(args.workers)]
    argv.append("api:create_app()")
    os.execvp(sys.executable, [sys.executable, "-m", *argv])
    return 0  # pragma: no cover


def _worker(args: argparse.Namespace) -> int:
    """Warm the numba kernels and vectorbt once in this process, then start Celery's prefork pool: the pool
    processes fork from here and inherit them (one BLAS/numba thread each, like the API's workers)."""
    pinned = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
    if any(var not in os.environ for var in pinned):
        # numba read its thread count when `api` was imported; changing the variable now would make numba's
        # next compile in a pool process fail ("Cannot set NUMBA_NUM_THREADS ... once the threads have been
        # launched"). Start again with the variables set, before anything imports numba.
        env = {**os.environ, **{var: os.environ.get(var, "1") for var in pinned}}
        os.execve(sys.executable, [sys.executable, "-m", "api.cli", *args.raw_argv], env)
    # below the API in the CPU scheduler's order, so a machine that also serves requests answers them first
    os.nice(int(os.environ.get("LIQRISK_WORKER_NICE", "10")))
    from backtest import queue

    if not queue.broker_url():
        print("liqrisk: set LIQRISK_BROKER_URL (e.g. redis://127.0.0.1:6379/0)", file=sys.stderr)
        return 2
    from backtest.tasks import app
    from backtest.warmup import warm_up as warm_backtest
    from core.warmup import warm_up

    print(f"liqrisk worker: kernels ready in {warm_up():.2f} s, backtester in {warm_backtest():.2f} s", file=sys.stderr)
    for module in args.include:
        __import__(module)
    argv = ["worker", "--pool", "prefork", "--loglevel", args.loglevel, "--without-gossip", "--without-mingle",
            "--concurrency", str(args.concurrency or os.cpu_count() or 1)]  # fmt: skip
    if args.hostname:
        argv += ["--hostname", args.hostname]
    app.worker_main(argv)
    return 0


def main(argv: list[str] | None = None) -> int:
    from backtest import calibrate_cli
    from backtest import cli as bt_cli

    from . import calc_cli, tier_refresh

    parser = argparse.ArgumentParser(prog="liqrisk", description="liqrisk: crypto-derivatives risk engine")
    sub = parser.add_subparsers(dest="command", required=True)
    calc_cli.register(sub)
    register(sub)
    bt_cli.register(sub)
    calibrate_cli.register(sub)
    tier_refresh.register(sub)
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(raw_argv)
    args.raw_argv = raw_argv
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
