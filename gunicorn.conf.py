"""gunicorn settings for liqrisk (``make serve``, the Dockerfile and the load test use this file).

Sync workers, one per core: the engine is CPU-bound numpy/numba code, so one request per process is the
fastest arrangement, and each worker is pinned to one BLAS/numba thread so workers do not fight over
cores. ``preload_app`` imports the app and loads every compiled kernel once in the master; workers
fork with them already in memory. Override with ``LIQRISK_*`` environment variables.
"""

import multiprocessing
import os
import shutil
import tempfile

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# Prometheus multiprocess mode: each worker writes its samples here and /metrics merges them. It must be set
# before the app (and prometheus_client) is imported, which preload_app does right after this file.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="liqrisk-metrics-")

bind = os.environ.get("LIQRISK_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("LIQRISK_WORKERS", multiprocessing.cpu_count()))
worker_class = "sync"
preload_app = True
timeout = int(os.environ.get("LIQRISK_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 2
max_requests = int(os.environ.get("LIQRISK_MAX_REQUESTS", "20000"))
max_requests_jitter = int(os.environ.get("LIQRISK_MAX_REQUESTS_JITTER", "2000"))
backlog = 2048
accesslog = os.environ.get("LIQRISK_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LIQRISK_LOG_LEVEL", "info")


def on_starting(server):
    """Compile or load every numba kernel before the app is loaded and the workers fork; start with empty
    metric files (a restart begins counting afresh)."""
    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir, exist_ok=True)
    from core.warmup import warm_up

    server.log.info("liqrisk: kernels ready in %.2f s", warm_up())
    if os.environ.get("LIQRISK_BACKTEST_WARMUP", "1") != "0":  # vectorbt + the simulator, shared by the forks
        from backtest.warmup import warm_up as warm_backtest

        server.log.info("liqrisk: backtester ready in %.2f s", warm_backtest())


def child_exit(server, worker):
    """A worker that exits (max_requests recycling, crash) leaves its counters in the merge but its live gauges
    are dropped (prometheus_client multiprocess docs)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_reload(server):
    """SIGHUP: reload the tier tables of LIQRISK_TIERS_DIR in the master before the new workers fork (the
    kernels take tables as arguments, so nothing recompiles)."""
    from api.tier_store import reload_from_env

    result = reload_from_env()
    server.log.info("liqrisk: tier tables reloaded: %s", result["symbols"] or "packaged only")
