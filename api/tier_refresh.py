"""``liqrisk tiers refresh``: fetch the exchanges' current tier tables from their public endpoints (or read a saved
response with ``--from-file``), validate them with the exchange's parser (:mod:`core.tier_parsers`) and write them
to the tiers directory (``LIQRISK_TIERS_DIR``), which the API loads at start and on SIGHUP.

Nothing is written unless the whole answer parses: an HTTP error, a malformed row or an empty answer leaves the
old table in place (exit status 1 and the reason on stderr).

Endpoints (public unless noted):

* Binance USDⓈ-M ``GET https://fapi.binance.com/fapi/v1/leverageBracket`` and COIN-M
  ``GET https://dapi.binance.com/dapi/v2/leverageBracket`` are USER_DATA (signed): with
  ``LIQRISK_BINANCE_API_KEY`` and ``LIQRISK_BINANCE_API_SECRET`` set they are called with an HMAC-SHA256
  signature; otherwise give the saved answer with ``--from-file``.
* Bybit ``GET https://api.bybit.com/v5/market/risk-limit?category=linear|inverse`` (cursor paging).
* OKX ``GET https://www.okx.com/api/v5/public/instruments?instType=SWAP`` (``ctVal``) and
  ``GET /api/v5/public/position-tiers?instType=SWAP&tdMode=isolated&instFamily=...`` per instrument family.
* Gate ``GET https://api.gateio.ws/api/v4/futures/{settle}/risk_limit_tiers`` (``contract=``, or all markets
  with ``limit``/``offset`` paging).
* Hyperliquid ``POST https://api.hyperliquid.xyz/info {"type": "meta"}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from core import tier_parsers
from core.tiers import Instrument, document, parse_document, symbols

BASE_URLS = {
    "binance": "https://fapi.binance.com",
    "binance_coinm": "https://dapi.binance.com",
    "bybit": "https://api.bybit.com",
    "okx": "https://www.okx.com",
    "gate": "https://api.gateio.ws",
    "hyperliquid": "https://api.hyperliquid.xyz",
}
TIMEOUT = 20.0
MAX_PAGES = 200
USER_AGENT = "liqrisk-tiers-refresh"


class RefreshError(Exception):
    """Why nothing was written (an HTTP error, a malformed or empty answer, a missing option)."""


class Client:
    """HTTP GET/POST returning parsed JSON; any transport error or non-2xx status is a :class:`RefreshError`."""

    def __init__(self, base_urls: dict[str, str], session: requests.Session | None = None):
        self.base_urls = base_urls
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def request(self, method: str, api: str, path: str, **kwargs: Any) -> Any:
        url = self.base_urls[api].rstrip("/") + path
        try:
            resp = self.session.request(method, url, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise RefreshError(f"{method} {url}: {exc.__class__.__name__}: {exc}") from None
        if resp.status_code >= 400:
            raise RefreshError(f"{method} {url}: HTTP {resp.status_code} {resp.text[:200]!r}")
        try:
            return resp.json()
        except ValueError:
            raise RefreshError(f"{method} {url}: the answer is not JSON ({resp.text[:120]!r})") from None


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def _source(url: str, today: str) -> str:
    return f"{url}, fetched {today} by liqrisk tiers refresh"


def _binance_signed(client: Client, api: str, path: str, params: dict[str, Any]) -> Any:
    key = os.environ.get("LIQRISK_BINANCE_API_KEY")
    secret = os.environ.get("LIQRISK_BINANCE_API_SECRET")
    if not (key and secret):
        raise RefreshError(
            f"binance: {path} is a signed (USER_DATA) endpoint: set LIQRISK_BINANCE_API_KEY and "
            "LIQRISK_BINANCE_API_SECRET, or save its answer and give it with --from-file"
        )
    query = dict(params, timestamp=int(time.time() * 1000))
    text = "&".join(f"{k}={v}" for k, v in query.items())
    query["signature"] = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return client.request("GET", api, path, params=query, headers={"X-MBX-APIKEY": key})


def _is_coinm(symbol: str | None) -> bool:
    return bool(symbol) and ("USD_" in symbol)


def fetch_binance(client: Client, symbol: str | None, today: str) -> dict[str, Instrument]:
    params = {"symbol": symbol} if symbol else {}
    if _is_coinm(symbol):
        answer = _binance_signed(client, "binance_coinm", "/dapi/v2/leverageBracket", params)
        return tier_parsers.binance_coinm(answer, as_of=today, source=_source(tier_parsers.BINANCE_COINM_SOURCE, today))
    answer = _binance_signed(client, "binance", "/fapi/v1/leverageBracket", params)
    return tier_parsers.binance_usdm(answer, as_of=today, source=_source(tier_parsers.BINANCE_USDM_SOURCE, today))


def _bybit_category(symbol: str) -> str:
    return "linear" if symbol.endswith(("USDT", "USDC", "PERP")) or "-" in symbol else "inverse"


def fetch_bybit(client: Client, symbol: str | None, today: str) -> dict[str, Instrument]:
    out: dict[str, Instrument] = {}
    for category in (_bybit_category(symbol),) if symbol else ("linear", "inverse"):
        pages, cursor = [], None
        for _ in range(MAX_PAGES):
            params = {"category": category, **({"symbol": symbol} if symbol else {})}
            if cursor:
                params["cursor"] = cursor
            page = client.request("GET", "bybit", "/v5/market/risk-limit", params=params)
            pages.append(page)
            cursor = (page.get("result") or {}).get("nextPageCursor") if isinstance(page, dict) else None
            if not cursor:
                break
        else:
            raise RefreshError(f"bybit: more than {MAX_PAGES} pages of risk limits; nothing written")
        out |= tier_parsers.bybit(pages, as_of=today, source=_source(tier_parsers.BYBIT_SOURCE, today))
    return out


def fetch_okx(client: Client, symbol: str | None, today: str) -> dict[str, Instrument]:
    wanted = [symbol] if symbol else symbols("okx")
    out: dict[str, Instrument] = {}
    for sym in wanted:
        inst = client.request("GET", "okx", "/api/v5/public/instruments", params={"instType": "SWAP", "instId": sym})
        data = inst.get("data") if isinstance(inst, dict) else None
        if not data or not isinstance(data, list) or not isinstance(data[0], dict):
            raise RefreshError(f"okx: no instrument {sym} in the instruments answer; nothing written")
        try:
            ct_val = float(data[0]["ctVal"])
            family = data[0].get("instFamily") or data[0]["uly"]
        except (KeyError, TypeError, ValueError):
            raise RefreshError(f"okx: the instruments answer for {sym} has no usable ctVal/instFamily") from None
        answer = client.request(
            "GET",
            "okx",
            "/api/v5/public/position-tiers",
            params={"instType": "SWAP", "tdMode": "isolated", "instFamily": family},
        )
        parsed = tier_parsers.okx(answer, ct_val=ct_val, as_of=today, source=_source(tier_parsers.OKX_SOURCE, today))
        if sym not in parsed:  # rows name the family only; the family's swap is this instrument
            parsed = {sym: next(iter(parsed.values()))} if len(parsed) == 1 else parsed
        out |= {k: v for k, v in parsed.items() if k == sym}
    return out


def fetch_gate(client: Client, symbol: str | None, today: str, limit: int = 100) -> dict[str, Instrument]:
    settles = (("btc" if symbol.endswith("_USD") else "usdt"),) if symbol else ("usdt", "btc")
    out: dict[str, Instrument] = {}
    for settle in settles:
        path = f"/api/v4/futures/{settle}/risk_limit_tiers"
        if symbol:
            rows = client.request("GET", "gate", path, params={"contract": symbol})
        else:
            rows, offset = [], 0
            for _ in range(MAX_PAGES):
                page = client.request("GET", "gate", path, params={"limit": limit, "offset": offset})
                if not isinstance(page, list):
                    raise RefreshError(f"gate: {path} answered {type(page).__name__}, not a list; nothing written")
                rows += page
                if len(page) < limit:
                    break
                offset += limit
            else:
                raise RefreshError(f"gate: more than {MAX_PAGES} pages of risk limit tiers; nothing written")
        out |= tier_parsers.gate(
            rows, settle=settle, contract=symbol, as_of=today, source=_source(tier_parsers.GATE_SOURCE, today)
        )
    return out


def fetch_hyperliquid(client: Client, symbol: str | None, today: str) -> dict[str, Instrument]:
    meta = client.request("POST", "hyperliquid", "/info", json={"type": "meta"})
    return tier_parsers.hyperliquid(meta, as_of=today, source=_source(tier_parsers.HYPERLIQUID_SOURCE, today))


FETCHERS: dict[str, Callable[[Client, str | None, str], dict[str, Instrument]]] = {
    "binance": fetch_binance,
    "bybit": fetch_bybit,
    "okx": fetch_okx,
    "gate": fetch_gate,
    "hyperliquid": fetch_hyperliquid,
}


def parse_file(exchange: str, path: Path, *, today: str, ct_val: float | None, symbol: str | None):
    """A saved answer of the exchange's tier endpoint (Bybit: one page or a list of pages; Gate: the rows,
    ``--symbol`` naming the contract for a one-market answer; OKX: needs ``--ct-val``)."""
    try:
        answer = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RefreshError(f"--from-file {path}: {exc}") from None
    source = f"{path.name}, a saved answer read {today} by liqrisk tiers refresh"
    if exchange == "binance":
        items = answer if isinstance(answer, list) else [answer]
        coinm = any(
            isinstance(b, dict) and "qtyCap" in b for i in items if isinstance(i, dict) for b in i.get("brackets") or []
        )
        parser = tier_parsers.binance_coinm if coinm else tier_parsers.binance_usdm
        return parser(answer, as_of=today, source=source)
    if exchange == "bybit":
        return tier_parsers.bybit(answer, as_of=today, source=source)
    if exchange == "okx":
        if ct_val is None:
            raise RefreshError("okx: --ct-val (the instrument's contract value, ctVal) is needed with --from-file")
        return tier_parsers.okx(answer, ct_val=ct_val, as_of=today, source=source)
    if exchange == "gate":
        settle = "btc" if symbol and symbol.endswith("_USD") else "usdt"
        return tier_parsers.gate(answer, settle=settle, contract=symbol, as_of=today, source=source)
    return tier_parsers.hyperliquid(answer, as_of=today, source=source)


def write(exchange: str, tables: dict[str, Instrument], tiers_dir: Path) -> Path:
    """Merge ``tables`` into ``tiers_dir/<exchange>.json`` (other symbols kept), atomically."""
    tiers_dir.mkdir(parents=True, exist_ok=True)
    target = tiers_dir / f"{exchange}.json"
    merged: dict[str, Instrument] = {}
    if target.is_file():
        try:
            merged = parse_document(json.loads(target.read_text(encoding="utf-8")), exchange)
        except ValueError as exc:
            raise RefreshError(f"{target}: the existing file does not parse ({exc}); fix or remove it") from None
    merged |= tables
    doc = document(merged, exchange)
    parse_document(doc, exchange)  # what is written must load
    fd, tmp = tempfile.mkstemp(prefix=f".{exchange}.", suffix=".json", dir=tiers_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, ensure_ascii=False, separators=(",", ":"))
    os.replace(tmp, target)
    return target


def refresh(
    exchange: str,
    *,
    tiers_dir: Path,
    symbol: str | None = None,
    from_file: Path | None = None,
    ct_val: float | None = None,
    base_urls: dict[str, str] | None = None,
    today: str | None = None,
) -> dict[str, Any]:
    """Fetch (or read), validate and write one exchange's tables. Raises :class:`RefreshError`; nothing is
    written then."""
    if exchange not in FETCHERS:
        raise RefreshError(f"--exchange: {exchange!r} is not one of {', '.join(FETCHERS)}")
    today = today or _today()
    try:
        if from_file is not None:
            tables = parse_file(exchange, from_file, today=today, ct_val=ct_val, symbol=symbol)
        else:
            tables = FETCHERS[exchange](Client({**BASE_URLS, **(base_urls or {})}), symbol, today)
    except ValueError as exc:
        raise RefreshError(f"{exchange}: {exc}; nothing written") from None
    if symbol is not None:
        if symbol not in tables:
            raise RefreshError(f"{exchange}: {symbol} is not in the answer ({len(tables)} symbols); nothing written")
        tables = {symbol: tables[symbol]}
    if not tables:
        raise RefreshError(f"{exchange}: empty answer; the old table stays")
    path = write(exchange, tables, tiers_dir)
    return {"exchange": exchange, "file": str(path), "symbols": sorted(tables), "as_of": today}


def _cmd(args: argparse.Namespace) -> int:
    tiers_dir = args.dir or os.environ.get("LIQRISK_TIERS_DIR")
    if not tiers_dir:
        print("liqrisk tiers refresh: set LIQRISK_TIERS_DIR or give --dir", file=sys.stderr)
        return 2
    exchanges = [args.exchange] if args.exchange else list(FETCHERS)
    if args.from_file and len(exchanges) != 1:
        print("liqrisk tiers refresh: --from-file needs --exchange", file=sys.stderr)
        return 2
    if args.base_url and not args.exchange:
        print("liqrisk tiers refresh: --base-url needs --exchange", file=sys.stderr)
        return 2
    base_urls = {k: args.base_url for k in BASE_URLS if k.split("_")[0] == args.exchange} if args.base_url else None
    status = 0
    for exchange in exchanges:
        try:
            done = refresh(
                exchange,
                tiers_dir=Path(tiers_dir),
                symbol=args.symbol,
                from_file=Path(args.from_file) if args.from_file else None,
                ct_val=args.ct_val,
                base_urls=base_urls,
            )
        except RefreshError as exc:
            print(json.dumps({"exchange": exchange, "error": str(exc)}), file=sys.stderr)
            status = 1
            continue
        print(json.dumps({**done, "count": len(done["symbols"]), "symbols": done["symbols"][:20]}))
    if status == 0:
        print("reload a running API with: kill -HUP <gunicorn master pid>", file=sys.stderr)
    return status


def register(sub: argparse._SubParsersAction) -> None:
    """``liqrisk tiers refresh`` on a ``liqrisk`` argument parser."""
    p = sub.add_parser("tiers", help="tier tables: refresh from the exchanges into LIQRISK_TIERS_DIR")
    tsub = p.add_subparsers(dest="tiers_command", required=True)
    r = tsub.add_parser("refresh", help="fetch, validate and write the current tier tables")
    r.add_argument("--exchange", choices=sorted(FETCHERS), help="one exchange (default: all)")
    r.add_argument("--symbol", help="one symbol, the exchange's own name (default: every symbol of the answer)")
    r.add_argument("--from-file", help="a saved answer of the exchange's tier endpoint instead of fetching")
    r.add_argument("--ct-val", type=float, help="OKX contract value (ctVal) for --from-file")
    r.add_argument("--dir", help="tiers directory (default: $LIQRISK_TIERS_DIR)")
    r.add_argument("--base-url", help="the exchange's API root instead of its public one (a mirror or a test)")
    r.set_defaults(func=_cmd)
