"""The tiers directory (``LIQRISK_TIERS_DIR``): tier tables written by ``liqrisk tiers refresh``, one
``<exchange>.json`` per exchange in the packaged format (:func:`core.tiers.parse_document`). The API loads it at
start (``create_app``) and again on SIGHUP (gunicorn's master reloads it in its ``on_reload`` hook, so the new
workers fork with it; a process serving without gunicorn installs its own handler). Tables are arguments of the
kernels, so a reload never recompiles them.

A file that does not parse is skipped with an error in the log and the tables it would replace stay as they were.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from core.tiers import EXCHANGES, Instrument, install_overlay, overlay, parse_document, stale_warning

log = logging.getLogger("liqrisk.tiers")
ENV = "LIQRISK_TIERS_DIR"


def read_dir(path: str | os.PathLike[str]) -> tuple[dict[str, dict[str, Instrument]], dict[str, str]]:
    """The tables of every ``<exchange>.json`` in ``path`` and the errors of files that did not load."""
    tables: dict[str, dict[str, Instrument]] = {}
    errors: dict[str, str] = {}
    root = Path(path)
    for exchange in EXCHANGES[:-1]:
        file = root / f"{exchange}.json"
        if not file.is_file():
            continue
        try:
            tables[exchange] = parse_document(json.loads(file.read_text(encoding="utf-8")), exchange)
        except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
            errors[str(file)] = str(exc)
    return tables, errors


def load(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """Install the tables of ``path`` (none when ``path`` is empty); a file that fails keeps the exchange's
    previously loaded tables. Returns ``{"dir", "symbols": {exchange: count}, "errors"}``."""
    if not path:
        install_overlay({})
        return {"dir": None, "symbols": {}, "errors": {}}
    if not Path(path).is_dir():
        log.error("liqrisk: %s=%s is not a directory; packaged tier tables only", ENV, path)
        install_overlay({})
        return {"dir": str(path), "symbols": {}, "errors": {str(path): "not a directory"}}
    tables, errors = read_dir(path)
    previous = overlay()
    for file, message in errors.items():
        exchange = Path(file).stem
        log.error("liqrisk: tier file %s not loaded (%s); keeping the tables loaded before", file, message)
        if exchange in previous:
            tables[exchange] = previous[exchange]
    install_overlay(tables)
    counts = {k: len(v) for k, v in tables.items()}
    log.info("liqrisk: tier tables loaded from %s: %s", path, counts or "none")
    return {"dir": str(path), "symbols": counts, "errors": errors}


def reload_from_env() -> dict[str, Any]:
    """Reload from ``LIQRISK_TIERS_DIR`` (what SIGHUP does)."""
    return load(os.environ.get(ENV, ""))


def install_sighup(path: str | os.PathLike[str] | None) -> bool:
    """Reload ``path`` on SIGHUP in this process (main thread only; gunicorn replaces the handler with its own,
    and its master calls :func:`reload_from_env` from the ``on_reload`` hook instead)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGHUP"):
        return False
    signal.signal(signal.SIGHUP, lambda signum, frame: load(path))
    return True


_EPOCH = dt.date(1970, 1, 1)
#: (as_of, max_age_days, UTC day number) -> the warning; every request with a packaged table asks the same
_VERDICTS: dict[tuple[str | None, int, int], dict[str, str] | None] = {}


def freshness(as_of: str | None, max_age_days: int, today: dt.date | None = None) -> dict[str, str] | None:
    """The ``stale_tiers`` warning for a table dated ``as_of`` (None when it is fresh), judged in UTC (today's
    date unless ``today`` is given; the verdict is worked out once per table date, limit and day)."""
    if today is not None:
        return stale_warning(as_of, today, max_age_days)
    day = int(time.time() // 86400)  # the UTC date, as days since 1970-01-01
    key = (as_of, max_age_days, day)
    try:
        found = _VERDICTS[key]
    except KeyError:
        if len(_VERDICTS) >= 1024:
            _VERDICTS.clear()
        found = _VERDICTS[key] = stale_warning(as_of, _EPOCH + dt.timedelta(days=day), max_age_days)
    return None if found is None else dict(found)  # a copy: answers may add to it
