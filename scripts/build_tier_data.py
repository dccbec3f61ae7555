"""Rebuild the packaged tier tables (core/data/<exchange>.json) from recorded exchange responses.

    python scripts/build_tier_data.py REFERENCE_DIR

REFERENCE_DIR holds the recorded answers of the exchanges' tier endpoints with their provenance
(``binance-usdm-leverageBracket-*.json``: a ``GET /fapi/v1/leverageBracket`` response; ``bybit_*.json``,
``okx_*.json``, ``gate_*.json``, ``hyperliquid_*.json``: rows as printed in public threads, each with ``source``
and ``as_of``). Every table goes through the same parser as ``liqrisk tiers refresh`` (core.tier_parsers);
tables where only some rows are known are written with ``complete: false``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core import tier_parsers
from core.tiers import TIER_FIELDS, document, parse_document

DATA = Path(__file__).resolve().parent.parent / "core" / "data"


def _compact(value: float) -> float | int:
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def _write(exchange: str, instruments: dict, source_page: str, tables: dict | None = None) -> None:
    doc = document(instruments, exchange)
    out_symbols = {}
    for sym, spec in doc["symbols"].items():
        spec["tiers"] = [[_compact(v) for v in row] for row in spec["tiers"]]
        if tables:  # factor the provenance shared by most symbols into a defaults entry
            for key, defaults in tables.items():
                if all(spec.get(k) == v for k, v in defaults.items()):
                    spec = {"table": key, **{k: v for k, v in spec.items() if k not in defaults}}
                    break
        out_symbols[sym] = spec
    body = {"exchange": exchange, "source_page": source_page, "tables": tables or {}, "symbols": out_symbols}
    parse_document(body, exchange)  # the file must load
    lines = [
        "{",
        f' "exchange": {json.dumps(exchange)},',
        f' "source_page": {json.dumps(source_page)},',
        f' "tables": {json.dumps(body["tables"], ensure_ascii=False)},',
        ' "symbols": {',
    ]
    items = list(out_symbols.items())
    for i, (sym, spec) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        lines.append(f"  {json.dumps(sym)}: {json.dumps(spec, ensure_ascii=False, separators=(',', ':'))}{comma}")
    lines += [" }", "}", ""]
    (DATA / f"{exchange}.json").write_text("\n".join(lines), encoding="utf-8")
    print(f"{exchange}: {len(out_symbols)} symbols", file=sys.stderr)


def binance(ref: Path) -> None:
    (path,) = sorted(ref.glob("binance-usdm-leverageBracket-*.json"))
    source = (
        "Binance GET /fapi/v1/leverageBracket brackets (all USDⓈ-M contracts, 2026-09) as dumped by ccxt "
        "fetch_leverage_tiers() into freqtrade/exchange/binance_leverage_tiers.json of the freqtrade 2026.9 source "
        "distribution (file dated 2026-09-29), in Binance's response shape; brackets can differ per account "
        "(notionalCoef)"
    )
    usdm = tier_parsers.binance_usdm(json.loads(path.read_text()), as_of="2026-09-29", source=source)
    old = json.loads((DATA / "binance.json").read_text())["symbols"]["BTCUSD_PERP"]
    old["tiers"] = [[t[k] for k in TIER_FIELDS] if isinstance(t, dict) else t for t in old["tiers"]]
    coinm = parse_document({"symbols": {"BTCUSD_PERP": old}}, "binance")
    defaults = {
        "contract_type": "linear",
        "basis": "notional",
        "source": source,
        "as_of": "2026-09-29",
        "complete": True,
        "upper_inclusive": False,
    }
    _write(
        "binance",
        {**usdm, **coinm},
        "https://www.binance.com/en/futures/trading-rules/perpetual/leverage-margin",
        {"usdm-2026-09": defaults},
    )


def _snap(doc: dict, as_of: str) -> dict:
    return next(s for s in doc["snapshots"] if s["as_of"] == as_of)


def _bybit_rows(category: str, rows: list[dict], as_of: str, source: str) -> dict:
    """Known rows of a Bybit table (``GET /v5/market/risk-limit`` rows of ``category``), parsed as a partial table."""
    answer = {"retCode": 0, "result": {"category": category, "list": rows}}
    return tier_parsers.bybit(answer, as_of=as_of, complete=False, source=source)


def bybit(ref: Path) -> None:
    btc = json.loads((ref / "bybit_BTCUSDT.json").read_text())
    snap = _snap(btc, "2024-05-10")
    tables = _bybit_rows(
        "linear",
        snap["raw"],
        "2024-05-10",
        f"Bybit GET /v5/market/risk-limit rows 1-2 (of more) as printed in {snap['source']}",
    )
    eth = json.loads((ref / "bybit_ETHUSDT.json").read_text())
    cols = eth["raw"]["columns"]
    rows = [dict(zip(cols, r, strict=True)) for r in eth["raw"]["rows"]]
    v5 = [
        {
            "symbol": "ETHUSDT",
            "riskLimitValue": str(r["maxNotional"]),
            "maintenanceMargin": str(r["maintenanceMarginRate"]),
            "maxLeverage": str(r["maxLeverage"]),
        }
        for r in rows
    ]
    tables |= _bybit_rows(
        "linear",
        v5,
        eth["as_of"],
        f"Bybit /v5/market/risk-limit tiers 1-13 (of more) for ETHUSDT, printed by ccxt in {eth['source']}",
    )
    inv = json.loads((ref / "bybit_BTCUSD.json").read_text())
    v5 = [
        {
            "symbol": r["symbol"],
            "riskLimitValue": str(r["limit"]),
            "maintenanceMargin": r["maintain_margin"],
            "initialMargin": r["starting_margin"],
            "maxLeverage": r["max_leverage"],
        }
        for r in inv["raw"]
    ]
    tables |= _bybit_rows(
        "inverse", v5, inv["as_of"], f"Bybit risk limits 1-3 (of more) for BTCUSD, v2 rows in percent: {inv['source']}"
    )
    _write("bybit", tables, "https://bybit-exchange.github.io/docs/v5/market/risk-limit")


def okx(ref: Path) -> None:
    doc = json.loads((ref / "okx_BTC-USDT-SWAP.json").read_text())
    rows = [r for r in doc["raw"] if r["tier"] == "1"]  # tier 100 is known too, but not the 98 between
    tables = tier_parsers.okx(
        {"code": "0", "msg": "", "data": [r | {"instId": "BTC-USDT-SWAP"} for r in rows]},
        ct_val=0.01,
        as_of=doc["as_of"],
        complete=False,
        source=f"OKX GET /api/v5/public/position-tiers tier 1 (of 100+) BTC-USDT-SWAP, ctVal 0.01 BTC: {doc['source']}",
    )
    _write("okx", tables, "https://www.okx.com/trade-market/position/swap")


def gate(ref: Path) -> None:
    doc = json.loads((ref / "gate_BTC_USDT.json").read_text())
    snap = _snap(doc, "2024-01-19")
    tables = tier_parsers.gate(
        snap["raw"],
        settle="usdt",
        contract="BTC_USDT",
        as_of="2024-01-19",
        complete=False,
        source=(
            f"Gate GET /api/v4/futures/usdt/risk_limit_tiers tiers 1-2 (of more): {snap['source']}. Deductions "
            "derived by Gate's graded maintenance margin (announcement of 2025-07-29; the rows predate the field)"
        ),
    )
    _write("gate", tables, "https://www.gate.io/futures/introduction/risk-limit")


def hyperliquid(ref: Path) -> None:
    universe, margin_tables = [], []
    for name in ("BTC", "ETH", "SOL", "DOGE"):
        doc = json.loads((ref / f"hyperliquid_{name}.json").read_text())
        entry = doc["raw"].get("info_meta_marginTables_entry")
        if entry is None:  # the docs table only: the same tiers in the API's shape, under the asset's name
            tiers = []
            for bounds, lev in doc["raw"]["docs_table"]["rows"]:
                low = bounds[1:] if bounds.startswith(">") else bounds.split("-")[0]  # "0-20M", ">20M"
                value = float(low.rstrip("M")) * (1e6 if low.endswith("M") else 1.0)
                tiers.append({"lowerBound": str(value), "maxLeverage": int(lev)})
            entry = [name, {"description": f"docs table {name}", "marginTiers": tiers}]
        margin_tables.append([len(margin_tables), entry[1]])
        universe.append(
            {"name": name, "maxLeverage": entry[1]["marginTiers"][0]["maxLeverage"], "marginTableId": len(universe)}
        )
    tables = tier_parsers.hyperliquid(
        {"universe": universe, "marginTables": margin_tables},
        as_of=None,
        source=(
            "Hyperliquid docs 'Margin tiers', Mainnet Margin Tiers "
            "(https://hyperliquid.gitbook.io/hyperliquid-docs/trading/margin-tiers; the page is undated) and "
            "POST /info meta marginTables entries (BTC 56, ETH 55, SOL 54); MMR = 1/(2·max leverage)"
        ),
    )
    _write("hyperliquid", tables, "https://hyperliquid.gitbook.io/hyperliquid-docs/trading/margin-tiers")


if __name__ == "__main__":
    ref_dir = Path(sys.argv[1])
    for build in (binance, bybit, okx, gate, hyperliquid):
        build(ref_dir)
