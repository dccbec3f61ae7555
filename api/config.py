"""Configuration from environment variables (``LIQRISK_*``); :class:`TestConfig` for the tests."""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def _float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _bool(name: str, default: bool) -> bool:
    return os.environ.get(name, "1" if default else "0").strip().lower() in ("1", "true", "yes", "on")


def _list(name: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in os.environ.get(name, "").split(",") if x.strip())


class Config:
    """Service settings. Every value can be set with the environment variable of the same name
    prefixed ``LIQRISK_`` (e.g. ``LIQRISK_MAX_BATCH_ROWS``)."""

    #: largest request body in bytes (413 beyond); a 500,000-row columnar batch of five fields is about 27 MB
    MAX_CONTENT_LENGTH = _int("LIQRISK_MAX_CONTENT_LENGTH", 64 * 1024 * 1024)
    #: most rows in one columnar batch (413 beyond): the largest that the batch route answers within the
    #: 2 s a request may take on a 2-core machine (~1.5 s at 500,000 rows with every output field)
    MAX_BATCH_ROWS = _int("LIQRISK_MAX_BATCH_ROWS", 500_000)
    #: most rows in a batch sent as a list of position objects (413 beyond): each object costs ~5 times a
    #: columnar row to read (~1.1 s at 100,000); send bigger batches as columns
    MAX_BATCH_OBJECT_ROWS = _int("LIQRISK_MAX_BATCH_OBJECT_ROWS", 100_000)
    #: most distinct (exchange, symbol, contract_type, margin_mode, position_mode) groups in one batch (422
    #: beyond); each group is one engine call. Symbols a ruleset does not know count once when
    #: maintenance_margin_rate is given
    MAX_BATCH_GROUPS = _int("LIQRISK_MAX_BATCH_GROUPS", 1_000)
    #: most positions in one portfolio and most fills / funding intervals in one calculator request
    MAX_LIST_ITEMS = _int("LIQRISK_MAX_LIST_ITEMS", 10_000)
    #: most nesting levels in a JSON body (400 beyond)
    MAX_JSON_DEPTH = _int("LIQRISK_MAX_JSON_DEPTH", 32)
    #: most bars in one backtest (413 beyond)
    BACKTEST_MAX_BARS = _int("LIQRISK_BACKTEST_MAX_BARS", 250_000)
    #: run-time budget of one backtest in seconds (422 beyond); keep it below gunicorn's worker timeout
    BACKTEST_TIMEOUT = _int("LIQRISK_BACKTEST_TIMEOUT", 30)
    #: body limits per route (bytes, 413 beyond); the batch route takes MAX_CONTENT_LENGTH
    MAX_BODY_DEFAULT = _int("LIQRISK_MAX_BODY_DEFAULT", 1024 * 1024)
    MAX_BODY_SERIES = _int("LIQRISK_MAX_BODY_SERIES", 16 * 1024 * 1024)  # risk and market routes (long series)
    MAX_BODY_BACKTEST = _int("LIQRISK_MAX_BODY_BACKTEST", 64 * 1024 * 1024)
    #: short calculator requests run one at a time per worker process, in arrival order (api/light_lane.py)
    LIGHT_LANE = _bool("LIQRISK_LIGHT_LANE", True)
    LIGHT_LANE_MAX_BODY = _int("LIQRISK_LIGHT_LANE_MAX_BODY", 64 * 1024)
    #: heavy requests run one at a time per worker process, in arrival order (api/heavy_lane.py); one whose body
    #: would take the waiting ones' bodies past HEAVY_QUEUE_BYTES, or that has not had its turn within
    #: HEAVY_QUEUE_WAIT seconds (0 = no limit), is not started (503, Retry-After). 64 MiB: two of the most expensive
    #: batches wait beside the one running, so a flood keeps a heavy worker within its 512 MB (433-436 MB measured
    #: with 16 of them at once; 487-500 MB with 128 MiB)
    HEAVY_LANE = _bool("LIQRISK_HEAVY_LANE", True)
    HEAVY_QUEUE_WAIT = _float("LIQRISK_HEAVY_QUEUE_WAIT", 5.0)
    HEAVY_QUEUE_BYTES = _int("LIQRISK_HEAVY_QUEUE_BYTES", 64 * 1024 * 1024)
    #: cost limits of the synchronous routes, sized so that the most expensive accepted request takes at most
    #: about 2 s and 512 MB on two cores (422 beyond, naming the field and the limit):
    #: Monte Carlo probability (model student_t): paths x steps, steps = horizon_hours x 60 / monitoring_minutes
    PROBABILITY_MAX_PATH_STEPS = _int("LIQRISK_PROBABILITY_MAX_PATH_STEPS", 5_000_000)
    #: liquidation map: bars x leverages (each bar with rising open interest opens one level per leverage and side)
    MAP_MAX_LEVELS = _int("LIQRISK_MAP_MAX_LEVELS", 100_000)
    #: compute budget of one request in seconds: the engine's long loops stop past it with a 503 problem
    #: (Retry-After: RETRY_AFTER seconds); a backstop for contention, since the limits above keep accepted
    #: requests well inside it. 0 = no budget
    REQUEST_BUDGET = _float("LIQRISK_REQUEST_BUDGET", 5.0)
    RETRY_AFTER = _int("LIQRISK_RETRY_AFTER", 2)
    #: per-client rate limits (flask-limiter syntax); a client is its API key, else its IP address
    RATE_LIMIT_ENABLED = _bool("LIQRISK_RATE_LIMIT_ENABLED", True)
    RATE_LIMIT = _str("LIQRISK_RATE_LIMIT", "6000/minute;200/second")
    #: stricter limit for the expensive routes (batch, backtests, Monte Carlo, liquidation map)
    RATE_LIMIT_HEAVY = _str("LIQRISK_RATE_LIMIT_HEAVY", "120/minute")
    #: where counters live: memory:// is per worker process (N workers allow N x the limit); set a shared
    #: store such as redis://host:6379/0 to count across workers and machines
    RATE_LIMIT_STORAGE = _str("LIQRISK_RATE_LIMIT_STORAGE", "memory://")
    #: API keys (comma-separated; plain keys or sha256:<hex digest>); empty = no key required
    API_KEYS = _list("LIQRISK_API_KEYS")
    #: browser origins allowed by CORS (comma-separated; * for any); empty = no CORS headers
    CORS_ORIGINS = _list("LIQRISK_CORS_ORIGINS")
    #: send Strict-Transport-Security (only when served over TLS, e.g. behind a terminating proxy)
    HSTS = _bool("LIQRISK_HSTS", False)
    #: number of proxies in front whose X-Forwarded-For to trust for the client address (0 = none)
    TRUSTED_PROXIES = _int("LIQRISK_TRUSTED_PROXIES", 0)
    #: one JSON line per request on stdout (logger liqrisk.access)
    ACCESS_LOG = _bool("LIQRISK_JSON_ACCESS_LOG", True)
    #: tier tables written by `liqrisk tiers refresh` (loaded at start and on SIGHUP); empty = packaged only
    TIERS_DIR = _str("LIQRISK_TIERS_DIR", "")
    #: a tier table older than this many days adds a stale_tiers warning to the results that use it
    TIERS_MAX_AGE_DAYS = _int("LIQRISK_TIERS_MAX_AGE_DAYS", 30)
    #: Redis the job queue runs on (backtests and sweeps run in `liqrisk worker` processes); empty = no jobs
    BROKER_URL = _str("LIQRISK_BROKER_URL", os.environ.get("CELERY_BROKER_URL", ""))
    #: seconds a finished job and its result stay readable
    JOB_RESULT_TTL = _int("LIQRISK_RESULT_TTL", 86_400)
    #: most unfinished (queued or running) jobs one client may hold (429 beyond)
    JOB_MAX_QUEUED = _int("LIQRISK_JOB_MAX_QUEUED", 20)
    #: longest ?wait= a submission may ask for, in seconds
    JOB_MAX_WAIT = _int("LIQRISK_JOB_MAX_WAIT", 30)
    #: most bytes of uploaded bars stored with one job (413 beyond)
    JOB_MAX_UPLOAD_BYTES = _int("LIQRISK_JOB_MAX_UPLOAD_BYTES", 32 * 1024 * 1024)
    #: most combinations in one sweep (422 beyond) and combinations per chunk task
    SWEEP_MAX_COMBINATIONS = _int("LIQRISK_SWEEP_MAX_COMBINATIONS", 1_000_000)
    SWEEP_CHUNK = _int("LIQRISK_SWEEP_CHUNK", 256)
    #: /readyz fails when no job worker answers a ping (set 0 for an API that may run before its workers)
    READY_REQUIRES_WORKER = _bool("LIQRISK_READY_REQUIRES_WORKER", True)
    #: folder of market data the named datasets come from (Binance's or freqtrade's file names)
    DATA_DIR = _str("LIQRISK_DATA_DIR", "")
    TESTING = False


class TestConfig(Config):
    TESTING = True
    REQUEST_BUDGET = 30.0  # the tests share a busy machine; test_budget.py sets a tiny one
    HEAVY_QUEUE_WAIT = 30.0
    MAX_BATCH_ROWS = 1_000
    MAX_CONTENT_LENGTH = 4 * 1024 * 1024
    BACKTEST_MAX_BARS = 20_000
    RATE_LIMIT_ENABLED = False
    API_KEYS: tuple[str, ...] = ()
    CORS_ORIGINS: tuple[str, ...] = ()
    ACCESS_LOG = False
    TIERS_DIR = ""
    BROKER_URL = ""
    DATA_DIR = ""
