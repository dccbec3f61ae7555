"""The named datasets: the file names the loader reads, the synthetic generator, and the market data found under a
data folder (``LIQRISK_DATA_DIR``).

Light (standard library only) so the API can list and check datasets without pandas. A dataset is a folder
(named by its path relative to the data folder) and, in it, a symbol at a timeframe with klines in the names of
:data:`FILE_NAMES` (the one list of them; :func:`backtest.data.load_dataset` reads the files it finds with
:func:`find_file`): freqtrade's ``SOL_USDT_USDT-5m-futures.csv.gz`` (``-mark``, ``-1h-funding_rate`` beside it) or
Binance's ``SOLUSDT_fapi_klines_5m.csv`` (``_markPriceKlines_5m``, ``_fundingRate``). ``start``/``end`` are the
first and last bar read from the file's first and last lines (a Binance kline dump's last bar is still open and the
loader drops it, so ``end`` is the bar before). Results are cached per file size and modification time.
"""

from __future__ import annotations

import gzip
import os
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

#: Binance's interval names and their length in seconds
TIMEFRAMES = {"1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200, "4h": 14400,
              "6h": 21600, "8h": 28800, "12h": 43200, "1d": 86400}  # fmt: skip
SYNTHETIC = {
    "name": "synthetic",
    "symbol": "BTCUSDT",
    "timeframe": "1h",
    "start": None,
    "end": None,
    "has_mark": True,
    "has_funding": True,
    "description": "seeded synthetic market (GARCH returns, crowding, funding, liquidation cascades); "
    "bars, timeframe and seed are chosen per job",
}
#: the files of one symbol, per kind, in the order the loader prefers them: ``{ft}`` is freqtrade's pair
#: (``SOL_USDT_USDT``), ``{pair}`` Binance's (``SOLUSDT``), ``{tf}`` the timeframe
FILE_NAMES: dict[str, tuple[str, ...]] = {
    "klines": ("{ft}-{tf}-futures.csv.gz", "{ft}-{tf}-futures.csv", "{pair}_fapi_klines_{tf}.csv", "{pair}-{tf}.csv"),
    "mark": ("{ft}-{tf}-mark.csv.gz", "{ft}-{tf}-mark.csv", "{pair}_markPriceKlines_{tf}.csv"),
    "funding": ("{ft}-1h-funding_rate.csv.gz", "{ft}-8h-funding_rate.csv.gz", "{pair}_fundingRate.csv"),
    "open_interest": ("{pair}_openInterestHist_{tf}.csv", "{pair}_openInterestHist_1h.csv"),
    "taker_volume": ("{pair}_takerBuySellVol_{tf}.csv",),
}
#: the kline names a folder listing recognises, with their layout (a plain ``SOLUSDT-1h.csv`` is read when it is
#: the only klines file, but not listed: its name does not say which layout it holds)
LISTED_KLINES = {"{ft}-{tf}-futures.csv.gz": "freqtrade", "{ft}-{tf}-futures.csv": "freqtrade",
                 "{pair}_fapi_klines_{tf}.csv": "binance"}  # fmt: skip


def base_asset(symbol: str) -> str:
    """``SOL`` for ``SOL``, ``SOLUSDT`` or ``SOL_USDT``."""
    return symbol.upper().removesuffix("_USDT").removesuffix("USDT")


def normalise_symbol(symbol: str) -> str:
    """The Binance pair name (``SOLUSDT``) of ``SOL``, ``SOLUSDT`` or ``SOL_USDT``."""
    return base_asset(symbol) + "USDT"


def file_names(kind: str, symbol: str, timeframe: str) -> list[str]:
    """The file names of ``kind`` (a key of :data:`FILE_NAMES`) for ``symbol`` at ``timeframe``, preferred first."""
    base = base_asset(symbol)
    return [t.format(ft=f"{base}_USDT_USDT", pair=base + "USDT", tf=timeframe) for t in FILE_NAMES[kind]]


def find_file(folder: str, kind: str, symbol: str, timeframe: str) -> str | None:
    """The path of the first file of :func:`file_names` that exists in ``folder``, else None."""
    for name in file_names(kind, symbol, timeframe):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    return None


def _name_pattern(template: str) -> re.Pattern:
    """A file-name template as a regular expression capturing the base asset and the timeframe."""
    rx = re.escape(template)
    for field, group in (("{ft}", r"(?P<base>[A-Z0-9]+)_USDT_USDT"), ("{pair}", r"(?P<base>[A-Z0-9]+)USDT"),
                         ("{tf}", r"(?P<timeframe>\w+)")):  # fmt: skip
        rx = rx.replace(re.escape(field), group)
    return re.compile(f"^{rx}$")


_KLINES = tuple((_name_pattern(t), layout) for t, layout in LISTED_KLINES.items())
MAX_DEPTH = 4


def _companions(folder: str, base: str, timeframe: str) -> tuple[bool, bool]:
    """Whether mark-price klines at ``timeframe`` and a funding file sit beside the klines."""
    names = set(os.listdir(folder))
    mark = set(file_names("mark", base, timeframe))
    funding = set(file_names("funding", base, timeframe))
    return bool(names & mark), bool(names & funding)


def _parse_time(text: str) -> str | None:
    text = text.strip().strip('"')
    try:
        if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
            v = float(text)
            return datetime.fromtimestamp(v / 1000 if v > 1e11 else v, UTC).isoformat()
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    except (ValueError, OverflowError, OSError):
        return None


@lru_cache(maxsize=256)
def _span(path: str, size: int, mtime: float, drop_last: bool) -> tuple[str | None, str | None]:
    """First and last bar time of a CSV (gzip or not); (None, None) when unreadable."""
    del size, mtime  # cache key only
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            first_row = last = prev = None
            for line in fh:
                if not line.strip():
                    continue
                cell = line.split(",", 1)[0]
                if first_row is None:
                    if _parse_time(cell) is None:
                        continue  # the header
                    first_row = cell
                prev, last = last, cell
    except (OSError, EOFError, ValueError):
        return None, None
    if first_row is None:
        return None, None
    end = prev if drop_last and prev is not None else last
    return _parse_time(first_row), _parse_time(end or first_row)


def _folders(root: str):
    for path, dirs, _files in os.walk(root):
        depth = os.path.relpath(path, root).count(os.sep) + (path != root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if depth < MAX_DEPTH else []
        yield path


def discover(root: str | None) -> list[dict[str, Any]]:
    """Every (folder, symbol, timeframe) under ``root``, sorted by name, symbol and timeframe."""
    out: list[dict[str, Any]] = []
    if not root or not os.path.isdir(root):
        return out
    root = os.path.abspath(root)
    for folder in _folders(root):
        rel = os.path.relpath(folder, root)
        name = os.path.basename(root) if rel == "." else rel.replace(os.sep, "/")
        try:
            files = sorted(os.listdir(folder))
        except OSError:
            continue
        for fname in files:
            for pattern, layout in _KLINES:
                m = pattern.match(fname)
                if not m or m.group("timeframe") not in TIMEFRAMES:
                    continue
                base, timeframe = m.group("base"), m.group("timeframe")
                path = os.path.join(folder, fname)
                st = os.stat(path)
                start, end = _span(path, st.st_size, st.st_mtime, layout == "binance")
                has_mark, has_funding = _companions(folder, base, timeframe)
                out.append({"name": name, "symbol": base + "USDT", "timeframe": timeframe, "start": start,
                            "end": end, "has_mark": has_mark, "has_funding": has_funding})  # fmt: skip
    out.sort(key=lambda d: (d["name"], d["symbol"], TIMEFRAMES[d["timeframe"]]))
    # the same symbol and timeframe in two layouts of one folder: the loader prefers freqtrade's; keep one
    seen: set[tuple] = set()
    unique = []
    for d in out:
        k = (d["name"], d["symbol"], d["timeframe"])
        if k not in seen:
            seen.add(k)
            unique.append(d)
    return unique


def find(root: str | None, name: str, symbol: str, timeframe: str) -> dict[str, Any] | None:
    """The listed dataset with this name, symbol (``SOL`` or ``SOLUSDT``) and timeframe, else None."""
    pair = normalise_symbol(symbol)
    for d in discover(root):
        if d["name"] == name and d["symbol"] == pair and d["timeframe"] == timeframe:
            return d
    return None


def folder_of(root: str, name: str) -> str:
    """The folder a dataset name refers to (the data folder itself when the name is its base name)."""
    root = os.path.abspath(root)
    candidate = os.path.normpath(os.path.join(root, name))
    if os.path.isdir(candidate) and (candidate == root or candidate.startswith(root + os.sep)):
        return candidate
    return root
