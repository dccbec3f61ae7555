"""Configuration from environment variables (``LIQRISK_*``); :class:`TestConfig` for the tests."""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


class Config:
    """Service settings. Every value can be set with the environment variable of the same name
    prefixed ``LIQRISK_`` (e.g. ``LIQRISK_MAX_BATCH_ROWS``)."""

    #: largest request body in bytes (413 beyond); a 1,000,000-row columnar batch is about 60 MB
    MAX_CONTENT_LENGTH = _int("LIQRISK_MAX_CONTENT_LENGTH", 128 * 1024 * 1024)
    #: most rows in one batch request (413 beyond)
    MAX_BATCH_ROWS = _int("LIQRISK_MAX_BATCH_ROWS", 1_000_000)
    #: most positions in one portfolio and most fills / funding intervals in one calculator request
    MAX_LIST_ITEMS = _int("LIQRISK_MAX_LIST_ITEMS", 10_000)
    #: most nesting levels in a JSON body (400 beyond)
    MAX_JSON_DEPTH = _int("LIQRISK_MAX_JSON_DEPTH", 32)
    #: most bars in one backtest (413 beyond)
    BACKTEST_MAX_BARS = _int("LIQRISK_BACKTEST_MAX_BARS", 250_000)
    #: run-time budget of one backtest in seconds (422 beyond); keep it below gunicorn's worker timeout
    BACKTEST_TIMEOUT = _int("LIQRISK_BACKTEST_TIMEOUT", 30)
    TESTING = False


class TestConfig(Config):
    TESTING = True
    MAX_BATCH_ROWS = 1_000
    MAX_CONTENT_LENGTH = 4 * 1024 * 1024
    BACKTEST_MAX_BARS = 20_000
