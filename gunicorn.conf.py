"""gunicorn settings for liqrisk (``make serve``, the Dockerfile and the load test use this file).

Threaded workers (gunicorn's ``gthread`` as :class:`api.http_worker.BalancedThreadWorker`: connections spread
evenly over the processes, a busy kept-alive connection served on by its thread), each with ``LIQRISK_THREADS``
threads: a slow or idle client holds a thread (blocked in ``recv``, no CPU, no GIL) or, between requests, only a
socket in the worker's poller — never a whole process — so trickling uploads cannot take the service away from
other callers. Two kinds of worker (:mod:`api.heavy_workers`): ``LIQRISK_WORKERS`` light workers (one per core)
accept every connection and answer the calculator routes; ``LIQRISK_HEAVY_WORKERS`` heavy workers (one per core;
0 = none) listen on a private Unix socket and answer the batch, Monte Carlo, map, cascade, backtest and other
large requests the light workers pass them, so those never share an interpreter with the short requests. The
engine is numpy/numba code pinned to one BLAS/numba thread per process; the switch interval is lowered so
threads of one process interleave in 1 ms slices; a calculator request that arrives complete on a kept-alive
connection is answered by the process's main thread on a fast path that skips gunicorn's general HTTP parser
(:mod:`api.http_fast`; ``LIQRISK_FAST_PATH=0`` turns it off). ``preload_app`` imports the app and loads the first
requests' compiled kernels in the master; workers fork with them already in memory and load the rest in the
background. The backtester is not imported by the master (it is loaded by its own route, or by the job workers).
Worker recycling is off by default (``max_requests`` 0): the engine does not leak, and a recycle stalls that
worker's connections. Override with ``LIQRISK_*`` environment variables.
"""

import gc
import multiprocessing
import os
import shutil
import stat
import sys
import tempfile
import time

#: the start-up imports (about 900 modules) run without the cyclic garbage collector, which would otherwise scan the
#: growing heap again and again: the import of the app and its first kernels took 0.78 s without it, 0.97 s with it
#: (medians of 8). ``pre_fork`` turns it back on before the first worker forks; a start from numba's warm cache
#: leaves about 1,500 unreachable objects, which ``gc.freeze`` keeps with the app's own (one that compiles collects
#: its garbage first: ``on_starting``).
gc.disable()

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# Prometheus multiprocess mode: each worker writes its samples here and /metrics merges them. It must be set
# before the app (and prometheus_client) is imported, which preload_app does right after this file.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="liqrisk-metrics-")

bind = os.environ.get("LIQRISK_BIND", "127.0.0.1:8000")
#: light workers (accept every connection; heavy requests pass on to the heavy workers: api/heavy_workers.py)
light_workers = int(os.environ.get("LIQRISK_WORKERS", multiprocessing.cpu_count()))
#: heavy workers (0: none, the light workers answer heavy requests themselves)
heavy_workers = int(os.environ.get("LIQRISK_HEAVY_WORKERS", multiprocessing.cpu_count()))
workers = light_workers + heavy_workers
worker_class = os.environ.get("LIQRISK_WORKER_CLASS", "api.http_worker.BalancedThreadWorker")
#: threads per worker: each trickling client holds one while it sends its request
threads = int(os.environ.get("LIQRISK_THREADS", "64"))
worker_connections = int(os.environ.get("LIQRISK_WORKER_CONNECTIONS", "1000"))
preload_app = True
timeout = int(os.environ.get("LIQRISK_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = int(os.environ.get("LIQRISK_KEEPALIVE", "5"))
max_requests = int(os.environ.get("LIQRISK_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("LIQRISK_MAX_REQUESTS_JITTER", "0"))
backlog = 2048
accesslog = os.environ.get("LIQRISK_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LIQRISK_LOG_LEVEL", "info")


#: the files the last start-up opened or mapped (compiled modules, shared libraries, numba's cache), in the order
#: it needed them: written by each worker a second after its fork (``_warm_worker``), read ahead at the next start
#: (``LIQRISK_START_FILES``; empty: off)
#: when the master started (read by the workers, which inherit it)
_STARTED = time.time()
_START_FILES = os.environ.get(
    "LIQRISK_START_FILES", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".run", "start-files.txt")
)
#: the most the read-ahead reads: bytes of the list, of one file and in all (a start-up reads about 300 MB of
#: files, 179 MB of it numba's LLVM library)
_READ_AHEAD_LIMITS = (1 << 20, 256 << 20, 1 << 30)


def _regular_file(path):
    """An open descriptor of ``path`` when it is a regular file (not a link, device, FIFO or socket), else None:
    the list is written by a worker, which may run as a less trusted user than the master that reads it."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except (OSError, ValueError):  # gone, unreadable, or not a path
        return None
    if stat.S_ISREG(os.fstat(fd).st_mode):
        return fd
    os.close(fd)  # something else was put in its place between the two checks
    return None


def _read_ahead(list_path):
    """Ask the kernel to read the last start-up's files, whole, into the page cache
    (``posix_fadvise(POSIX_FADV_WILLNEED)``, https://man7.org/linux/man-pages/man2/posix_fadvise.2.html) while the
    master imports the app, so that a start after a reboot or a long idle (pages evicted) does not wait on the disk
    for each file in turn: the reads run beside the imports, which use the CPU. Runs in a thread started when
    gunicorn reads this file (so with ``--daemon`` it dies with gunicorn's first process, and a reload runs it
    again, on files already in memory); the GIL is released in each call. Only regular files are opened, within
    :data:`_READ_AHEAD_LIMITS`; a missing list or file is skipped."""
    list_max, file_max, total_max = _READ_AHEAD_LIMITS
    fd = _regular_file(list_path)
    if fd is None:
        return
    with os.fdopen(fd, "rb") as listing:
        paths = listing.read(list_max).decode("utf-8", "replace").splitlines()
    total = 0
    for path in paths:
        fd = _regular_file(path)
        if fd is None:
            continue
        try:
            size = os.fstat(fd).st_size
            if size <= file_max and total + size <= total_max:
                total += size
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


def _written_since(path, when):
    """Whether the file at ``path`` was written after ``when`` (seconds since the epoch)."""
    try:
        return os.stat(path).st_mtime > when
    except OSError:
        return False


def _record_start_files(list_path):
    """Write the files this start-up read, for :func:`_read_ahead` at the next one: each module's compiled file
    (or extension) in import order, then the other shared libraries mapped into the process (numba's LLVM,
    OpenBLAS), then the numba cache of the engine's kernels."""
    seen, paths = set(), []

    def add(path):
        if path and path not in seen and os.path.isfile(path):
            seen.add(path)
            paths.append(path)

    for module in list(sys.modules.values()):
        spec = getattr(module, "__spec__", None)
        if getattr(spec, "origin", None) not in (None, "frozen", "built-in"):
            cached = getattr(spec, "cached", None)
            add(cached if cached and os.path.isfile(cached) else spec.origin)
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and fields[5].startswith("/"):
                    add(fields[5].rstrip("\n"))
    except OSError:
        pass
    core = sys.modules.get("core")
    if core is not None:
        caches = {os.path.dirname(core.__file__), os.environ.get("NUMBA_CACHE_DIR", "")}
        for top in filter(None, caches):
            for folder, _dirs, names in os.walk(top):
                for name in sorted(names):
                    if name.endswith((".nbi", ".nbc")):
                        add(os.path.join(folder, name))
    try:
        os.makedirs(os.path.dirname(list_path), exist_ok=True)
        part = f"{list_path}.{os.getpid()}"
        with open(part, "w", encoding="utf-8") as listing:
            listing.write("\n".join(paths))
        os.replace(part, list_path)
    except OSError:
        pass


#: glibc's malloc arenas per process (``LIQRISK_MALLOC_ARENAS``; 0 = glibc's own choice, 8 per core; the
#: ``MALLOC_ARENA_MAX`` environment variable, when set, has the last word)
_MALLOC_ARENAS = int(os.environ.get("LIQRISK_MALLOC_ARENAS", "1"))


def _limit_malloc_arenas(arenas):
    """One malloc arena per process (``mallopt(M_ARENA_MAX)``, https://man7.org/linux/man-pages/man3/mallopt.3.html),
    set in the master before any thread starts and inherited by every worker. With glibc's default each of a
    worker's 64 threads may get an arena of its own, and the memory a large request freed in one thread's arena is
    not reused by the next request on another thread: a heavy worker taking turns through 16 of the most
    expensive batches peaked at 577-717 MB with the default, 458-472 MB with one arena, in the same time
    (single-liquidation throughput within the spread). Where glibc is not the C library, nothing is done."""
    if arenas <= 0 or "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(-8, arenas)  # M_ARENA_MAX in glibc's malloc.h
    except (OSError, AttributeError):
        pass


_limit_malloc_arenas(_MALLOC_ARENAS)

_READ_AHEAD = None
if _START_FILES:
    import threading

    _READ_AHEAD = threading.Thread(target=_read_ahead, args=(_START_FILES,), name="liqrisk-read-ahead", daemon=True)
    _READ_AHEAD.start()


#: kernels still to load after the fork (set by on_starting); a worker loads them in a background thread
_LATER_KERNELS = False
#: seconds after its fork a worker starts loading them, so that its first requests do not share the CPU with that
#: thread (launch to first answer: median 1.49-1.53 s with the delay, 1.53 s without; within the spread)
_WARM_DELAY = 1.0


def on_starting(server):
    """Load the kernels of the first requests (Binance linear, isolated and cross) once the app is imported
    (``preload_app`` imports it before this hook) and before the workers fork, without numba's compiler registries
    (:mod:`core.lean_cache`); each worker loads the other configurations from numba's cache in the background, so
    the server answers ~0.5 s sooner. When even those first kernels had to be compiled (numba's cache is cold:
    ``make install`` or the Dockerfile was skipped), every configuration is compiled here once instead, so no worker
    compiles while it serves. Start with empty metric files (a restart begins counting afresh). The backtester
    (vectorbt) is not warmed here: routes that never use it would pay its start-up time. Open the heavy workers'
    Unix socket (:func:`api.heavy_workers.open_listener`) when gunicorn's worker count leaves room for heavy workers
    and the server speaks plain HTTP (no TLS, no PROXY protocol)."""
    global _LATER_KERNELS
    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir, exist_ok=True)
    from core import lean_cache
    from core.warmup import first_configurations, warm_up

    _split(server)
    lean_cache.enable()
    seconds = warm_up(configs=first_configurations())
    if seconds > 2.0:  # compiled: numba's cache was cold
        gc.enable()  # the compiles' garbage is collected, not frozen into every worker at the fork
        seconds += warm_up()
        gc.collect()
    else:
        _LATER_KERNELS = True
    server.log.info("liqrisk: kernels ready in %.2f s%s", seconds, " (the others load in each worker)" * _LATER_KERNELS)


def _split(server):
    """Open (or close) the heavy workers' socket for the light and heavy worker counts of this configuration:
    heavy workers only when gunicorn's worker count leaves room for them (``--workers`` on gunicorn's command
    line overrides ours) and the server speaks plain HTTP on its own sockets (no TLS, no PROXY protocol, no
    ``reuse_port``), as the light workers pass requests on."""
    from api import heavy_workers as split

    cfg = server.cfg
    heavy = server.num_workers - light_workers
    plain = not cfg.is_ssl and cfg.proxy_protocol in (None, False, "off") and not cfg.reuse_port
    if heavy > 0 and plain:
        path = split.open_listener(light_workers, backlog, cfg.uid, cfg.gid)
        server.log.info("liqrisk: %d light and %d heavy workers (%s)", light_workers, heavy, path)
    else:
        split.close_listener()


def nworkers_changed(server, new_value, old_value):
    """Fewer workers (``TTOU``): gunicorn stops the oldest, so heavy workers are made the oldest
    (:func:`api.http_worker.shed_heavy_first`): the light ones, which accept connections, stay."""
    if old_value is not None and new_value < old_value:
        from api.http_worker import shed_heavy_first

        shed_heavy_first(server.WORKERS)


def pre_fork(server, worker):
    """The new worker's role, light or heavy (:func:`api.http_worker.assign_role`). Then move every object the
    master holds (the app, numpy, numba, the loaded kernels: about 145,000) out of the
    cyclic garbage collector's sight before the fork (``gc.freeze``,
    https://docs.python.org/3/library/gc.html#gc.freeze). The oldest generation's collections in a worker then
    scan only what the worker made itself: measured 57 ms of CPU per collection before, 4-7 ms after, a pause
    that stalled every thread of the worker. The frozen objects are never freed, which is what the app's
    objects are anyway; and a collection no longer writes to their pages, so they stay shared with the master
    instead of being copied into each worker."""
    from api.http_worker import assign_role

    if _READ_AHEAD is not None:
        _READ_AHEAD.join(0.2)  # done long before, unless the disk is very slow: then it goes on beside the fork
    worker.liqrisk_role = assign_role(server.WORKERS, server.num_workers)
    gc.enable()  # off while the master imported the app (top of this file); the workers inherit it on
    gc.freeze()


def post_fork(server, worker):
    """Threads of one worker take turns every 1 ms (Python's default is 5 ms), so a short request waits less
    behind a long one in the same process; the kernels not loaded by the master load in a background thread
    that starts :data:`_WARM_DELAY` seconds after the fork (a request that needs one first loads it itself)."""
    sys.setswitchinterval(0.001)
    import threading

    later = threading.Timer(_WARM_DELAY, _warm_worker)
    later.name, later.daemon = "liqrisk-kernels", True
    later.start()


def _warm_worker():
    """The kernels the master left to the workers, then the JSON scanner of large bodies
    (:mod:`api.json_pieces`), so that neither is loaded by the first request that needs it; then what they
    loaded is frozen out of the garbage collector's sight too. Before that, the files the start-up read are noted
    for the next start (:func:`_record_start_files`; what the worker holds then is what the master loaded), by the
    first worker to get there: the others find the list written since the master started."""
    if _START_FILES and not _written_since(_START_FILES, _STARTED):
        _record_start_files(_START_FILES)
    if _LATER_KERNELS:
        from core.warmup import warm_up

        warm_up()
    from api.json_pieces import warm_up as warm_json

    warm_json()
    gc.freeze()  # what the warm-up loaded stays, like the master's objects (pre_fork)


def child_exit(server, worker):
    """A worker that exits (max_requests recycling, crash) leaves its counters in the merge but its live gauges
    are dropped (prometheus_client multiprocess docs)."""
    from prometheus_client import multiprocess

    from api.http_worker import BalancedThreadWorker, release_slot

    multiprocess.mark_process_dead(worker.pid)
    if isinstance(worker, BalancedThreadWorker):
        release_slot(worker.pid)


def on_reload(server):
    """SIGHUP: reload the tier tables of LIQRISK_TIERS_DIR in the master before the new workers fork (the
    kernels take tables as arguments, so nothing recompiles)."""
    from api.tier_store import reload_from_env

    result = reload_from_env()
    server.log.info("liqrisk: tier tables reloaded: %s", result["symbols"] or "packaged only")
    _split(server)  # the reloaded configuration's light and heavy workers


def on_exit(server):
    """Remove the heavy workers' socket and its directory."""
    from api import heavy_workers as split

    split.close_listener()
