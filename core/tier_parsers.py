"""Parsers of the exchanges' own tier endpoints: each turns one response (field names and units exactly as the
exchange returns them) into the project's tier tables, ``{symbol: Instrument}``, with ``source`` and
``as_of``. Pure functions: fetching is the caller's business (``liqrisk tiers refresh``).

Each parser applies its exchange's boundary rule (``TierTable.upper_inclusive``, see :mod:`core.tiers`) and
raises ``ValueError`` naming the first malformed row (``[3].brackets[1].notionalCap: ...``) or an empty answer,
so a bad response never replaces a good table.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import InputError
from .tiers import Instrument, TierTable, maintenance_amounts, table_from_rows

#: Hyperliquid's last margin tier has no upper bound; this cap stands for none.
NO_CAP = 1e12

BINANCE_USDM_SOURCE = "https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Notional-and-Leverage-Brackets"
BINANCE_COINM_SOURCE = (
    "https://developers.binance.com/docs/derivatives/coin-margined-futures/account/Notional-Bracket-for-Symbol"
)
BYBIT_SOURCE = "https://bybit-exchange.github.io/docs/v5/market/risk-limit"
OKX_SOURCE = "https://www.okx.com/docs-v5/en/#public-data-rest-api-get-position-tiers"
GATE_SOURCE = "https://www.gate.io/docs/developers/apiv4/#list-risk-limit-tiers"
HYPERLIQUID_SOURCE = "https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint/perpetuals"

#: quote/settle currencies of Binance USDⓈ-M symbols, longest first (``BTCUSDT_260925`` is a delivery contract)
_BINANCE_QUOTES = ("USDT", "USDC", "USD1", "BTC", "U")


def _num(value: Any, where: str, *, allow_empty: bool = False) -> float:
    """A finite number from a JSON number or numeric string (exchanges send both)."""
    if allow_empty and (value is None or value == ""):
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(where, f"must be a number or numeric string, got {value!r}")
    try:
        out = float(value)
    except ValueError:
        raise InputError(where, f"must be a number or numeric string, got {value!r}") from None
    if not math.isfinite(out):
        raise InputError(where, f"must be finite, got {value!r}")
    return out


def _field(row: Any, name: str, where: str) -> Any:
    if not isinstance(row, dict):
        raise InputError(where, "must be an object")
    if name not in row:
        raise InputError(f"{where}.{name}", "missing")
    return row[name]


def _table(
    floors: list[float],
    caps: list[float],
    lev: list[float],
    mmr: list[float],
    amount: list[float] | None,
    *,
    where: str,
    source: str,
    as_of: str | None,
    currency: str | None,
    basis: str = "notional",
    complete: bool = True,
    upper_inclusive: bool,
) -> TierTable:
    rows = [
        {
            "notional_floor": floors[i],
            "notional_cap": caps[i],
            "max_leverage": lev[i],
            "maintenance_margin_rate": mmr[i],
            **({"maintenance_amount": amount[i]} if amount is not None else {}),
        }
        for i in range(len(floors))
    ]
    try:
        table = table_from_rows(rows, basis=basis, source=source)
    except ValueError as exc:
        raise InputError(where, str(exc)) from None
    return TierTable(
        table.floors,
        table.caps,
        table.max_leverage,
        table.mmr,
        table.amount,
        basis=basis,
        source=source,
        as_of=as_of,
        currency=currency,
        complete=complete,
        upper_inclusive=upper_inclusive,
    )


def _nonempty(items: Any, what: str) -> list[Any]:
    if not isinstance(items, list):
        raise InputError(what, f"must be a list, got {type(items).__name__}")
    if not items:
        raise InputError(what, "empty answer (no tiers); the old table stays")
    return items


def binance_usdm(response: Any, *, as_of: str, source: str = BINANCE_USDM_SOURCE) -> dict[str, Instrument]:
    """Binance USDⓈ-M ``GET /fapi/v1/leverageBracket`` (signed; one object when ``symbol`` was sent).

    Rows ``{symbol, [notionalCoef], brackets: [{bracket, initialLeverage, notionalCap, notionalFloor,
    maintMarginRatio, cum}]}``; notionals and ``cum`` in the quote currency. ``notionalCap`` is the next
    bracket's ``notionalFloor``; a notional equal to a floor belongs to that (higher) bracket.
    """
    items = [response] if isinstance(response, dict) else _nonempty(response, "leverageBracket")
    out: dict[str, Instrument] = {}
    for i, item in enumerate(items):
        sym = _field(item, "symbol", f"[{i}]")
        if not isinstance(sym, str) or not sym:
            raise InputError(f"[{i}].symbol", "must be a non-empty string")
        brackets = _nonempty(_field(item, "brackets", f"[{i}]"), f"[{i}].brackets")
        cols: dict[str, list[float]] = {k: [] for k in ("floor", "cap", "lev", "mmr", "cum", "n")}
        for j, b in enumerate(brackets):
            where = f"[{i}].brackets[{j}]"
            for key, name in (
                ("n", "bracket"),
                ("floor", "notionalFloor"),
                ("cap", "notionalCap"),
                ("lev", "initialLeverage"),
                ("mmr", "maintMarginRatio"),
                ("cum", "cum"),
            ):
                cols[key].append(_num(_field(b, name, where), f"{where}.{name}"))
        order = np.argsort(cols["n"], kind="stable")
        pick = {k: [v[o] for o in order] for k, v in cols.items()}
        root = sym.split("_")[0]
        currency = next((q for q in _BINANCE_QUOTES if root.endswith(q)), None)
        out[sym] = Instrument(
            "binance",
            sym,
            "linear",
            None,
            _table(
                pick["floor"],
                pick["cap"],
                pick["lev"],
                pick["mmr"],
                pick["cum"],
                where=f"[{i}] ({sym})",
                source=source,
                as_of=as_of,
                currency=currency,
                upper_inclusive=False,
            ),
        )
    return out


def binance_coinm(response: Any, *, as_of: str, source: str = BINANCE_COINM_SOURCE) -> dict[str, Instrument]:
    """Binance COIN-M ``GET /dapi/v2/leverageBracket`` (signed).

    Rows ``{symbol, [notionalCoef], brackets: [{bracket, initialLeverage, qtyCap, qtyFloor, maintMarginRatio,
    cum}]}``: caps and floors are position values in the base coin (the docs print the floor as
    ``qtylFloor``; both spellings are read), ``cum`` in coin. Contract size: 100 USD for BTCUSD, 10 USD for the
    other COIN-M contracts (https://www.binance.com/en/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46). Same
    boundary rule as USDⓈ-M.
    """
    items = [response] if isinstance(response, dict) else _nonempty(response, "leverageBracket")
    out: dict[str, Instrument] = {}
    for i, item in enumerate(items):
        sym = _field(item, "symbol", f"[{i}]")
        if not isinstance(sym, str) or "USD" not in sym:
            raise InputError(f"[{i}].symbol", "must be a COIN-M symbol such as BTCUSD_PERP")
        brackets = _nonempty(_field(item, "brackets", f"[{i}]"), f"[{i}].brackets")
        rows = []
        for j, b in enumerate(brackets):
            where = f"[{i}].brackets[{j}]"
            floor_name = "qtyFloor" if isinstance(b, dict) and "qtyFloor" in b else "qtylFloor"
            rows.append(
                (
                    _num(_field(b, "bracket", where), f"{where}.bracket"),
                    _num(_field(b, floor_name, where), f"{where}.{floor_name}"),
                    _num(_field(b, "qtyCap", where), f"{where}.qtyCap"),
                    _num(_field(b, "initialLeverage", where), f"{where}.initialLeverage"),
                    _num(_field(b, "maintMarginRatio", where), f"{where}.maintMarginRatio"),
                    _num(_field(b, "cum", where), f"{where}.cum"),
                )
            )
        rows.sort()
        base = sym.split("USD")[0]
        cols = list(zip(*rows, strict=True))
        out[sym] = Instrument(
            "binance",
            sym,
            "inverse",
            100.0 if base == "BTC" else 10.0,
            _table(
                list(cols[1]),
                list(cols[2]),
                list(cols[3]),
                list(cols[4]),
                list(cols[5]),
                where=f"[{i}] ({sym})",
                source=source,
                as_of=as_of,
                currency=base,
                upper_inclusive=False,
            ),
        )
    return out


def _bybit_rate_scale(rows: list[dict[str, Any]]) -> float:
    """1 when rates are decimals (v5 mainnet: ``initialMargin`` 0.01 at ``maxLeverage`` 100), 100 when they
    are percent (v2 and the v5 docs' testnet example: ``initialMargin`` 1 at 100x): ``IMR × maxLeverage`` is
    about 1 or about 100. Rows without ``initialMargin`` are read as decimals."""
    products = []
    for r in rows:
        im = r.get("initialMargin")
        if im not in (None, "") and r.get("maxLeverage") not in (None, ""):
            try:
                products.append(float(im) * float(r["maxLeverage"]))
            except (TypeError, ValueError):
                continue
    if not products:
        return 1.0
    p = float(np.median(products))
    return 100.0 if abs(math.log(max(p, 1e-9) / 100.0)) < abs(math.log(max(p, 1e-9))) else 1.0


def bybit(pages: Any, *, as_of: str, source: str = BYBIT_SOURCE, complete: bool = True) -> dict[str, Instrument]:
    """Bybit ``GET /v5/market/risk-limit`` (public), all pages of one ``category``.

    ``pages`` is one response or a list of them (cursor paging: ``result.nextPageCursor``), each
    ``{retCode, retMsg, result: {category, list: [{id, symbol, riskLimitValue, maintenanceMargin,
    initialMargin, isLowestRisk, maxLeverage, mmDeduction}], nextPageCursor}}``. ``riskLimitValue`` is a
    tier's largest position value (inclusive; USDT/USDC for linear, coin for inverse); the next tier starts
    above it. ``mmDeduction`` is the maintenance-margin deduction (empty or absent = 0: the classic model
    charges the whole position at the tier rate).
    """
    if isinstance(pages, dict):
        pages = [pages]
    pages = _nonempty(pages, "pages")
    category = None
    by_symbol: dict[str, list[dict[str, Any]]] = {}
    for p, page in enumerate(pages):
        if not isinstance(page, dict):
            raise InputError(f"pages[{p}]", "must be an object")
        if page.get("retCode", 0) not in (0, "0"):
            raise InputError(f"pages[{p}].retCode", f"{page.get('retCode')} ({page.get('retMsg')})")
        result = _field(page, "result", f"pages[{p}]")
        category = _field(result, "category", f"pages[{p}].result")
        rows = _field(result, "list", f"pages[{p}].result")
        if not isinstance(rows, list):
            raise InputError(f"pages[{p}].result.list", "must be a list")
        for j, row in enumerate(rows):
            sym = _field(row, "symbol", f"pages[{p}].result.list[{j}]")
            by_symbol.setdefault(str(sym), []).append(row | {"_where": f"pages[{p}].result.list[{j}]"})
    if not by_symbol:
        raise InputError("result.list", "empty answer (no tiers); the old table stays")
    if category not in ("linear", "inverse"):
        raise InputError("result.category", f"{category!r} is not linear or inverse")
    out: dict[str, Instrument] = {}
    for sym, rows in by_symbol.items():
        scale = _bybit_rate_scale(rows)
        parsed = []
        for row in rows:
            w = row["_where"]
            cap = _num(_field(row, "riskLimitValue", w), f"{w}.riskLimitValue")
            mmr = _num(_field(row, "maintenanceMargin", w), f"{w}.maintenanceMargin") / scale
            lev = _num(_field(row, "maxLeverage", w), f"{w}.maxLeverage")
            ded = _num(row.get("mmDeduction"), f"{w}.mmDeduction", allow_empty=True)
            parsed.append((cap, mmr, lev, 0.0 if math.isnan(ded) else ded))
        parsed.sort()
        caps = [r[0] for r in parsed]
        inverse = category == "inverse"
        currency = sym.split("USD")[0] if inverse else ("USDC" if sym.endswith(("USDC", "PERP")) else "USDT")
        out[sym] = Instrument(
            "bybit",
            sym,
            category,
            1.0 if inverse else None,
            _table(
                [0.0, *caps[:-1]],
                caps,
                [r[2] for r in parsed],
                [r[1] for r in parsed],
                [r[3] for r in parsed],
                where=f"{sym}",
                source=source,
                as_of=as_of,
                currency=currency,
                complete=complete,
                upper_inclusive=True,
            ),
        )
    return out


def okx(
    response: Any,
    *,
    ct_val: dict[str, float] | float,
    as_of: str,
    source: str = OKX_SOURCE,
    complete: bool = True,
) -> dict[str, Instrument]:
    """OKX ``GET /api/v5/public/position-tiers?instType=SWAP`` (public).

    ``{code, msg, data: [{uly, instFamily, instId, tier, minSz, maxSz, mmr, imr, maxLever, ...}]}``: sizes in
    **contracts**, ``maxSz`` inclusive (tier 2 starts at ``minSz`` = tier 1's ``maxSz`` + 1). They are
    converted to base units (linear) or USD face value (inverse) with the instrument's contract value
    ``ctVal`` (``GET /api/v5/public/instruments``), given as one number or per symbol; a tier then covers
    ``prev maxSz·ctVal < size <= maxSz·ctVal``. OKX publishes no maintenance deduction (amount 0).
    Symbols are ``instId``, or ``<instFamily>-SWAP`` when ``instId`` is empty.
    """
    if not isinstance(response, dict):
        raise InputError("response", "must be an object {code, msg, data}")
    if response.get("code", "0") not in ("0", 0):
        raise InputError("code", f"{response.get('code')} ({response.get('msg')})")
    rows = _nonempty(_field(response, "data", "response"), "data")
    by_symbol: dict[str, list[tuple[float, ...]]] = {}
    for j, row in enumerate(rows):
        w = f"data[{j}]"
        family = row.get("instFamily") or row.get("uly") if isinstance(row, dict) else None
        sym = (row.get("instId") if isinstance(row, dict) else None) or (f"{family}-SWAP" if family else None)
        if not sym:
            raise InputError(f"{w}.instFamily", "missing (no instId, instFamily or uly)")
        by_symbol.setdefault(sym, []).append(
            (
                _num(_field(row, "tier", w), f"{w}.tier"),
                _num(_field(row, "minSz", w), f"{w}.minSz"),
                _num(_field(row, "maxSz", w), f"{w}.maxSz"),
                _num(_field(row, "mmr", w), f"{w}.mmr"),
                _num(_field(row, "maxLever", w), f"{w}.maxLever"),
            )
        )
    out: dict[str, Instrument] = {}
    for sym, tiers in by_symbol.items():
        tiers.sort()
        for k in range(1, len(tiers)):
            if not (tiers[k - 1][2] < tiers[k][1] <= tiers[k - 1][2] + 1):
                raise InputError(
                    f"{sym} tier {tiers[k][0]:g}.minSz",
                    f"{tiers[k][1]:g} does not follow tier "
                    f"{tiers[k - 1][0]:g}'s maxSz {tiers[k - 1][2]:g} (missing tiers?)",
                )
        cv = ct_val.get(sym) if isinstance(ct_val, dict) else ct_val
        if cv is None or not (cv > 0):
            raise InputError("ctVal", f"the contract value of {sym} is needed (GET /api/v5/public/instruments)")
        caps = [t[2] * cv for t in tiers]
        quote = sym.split("-")[1] if sym.count("-") >= 2 else "USDT"
        inverse = quote == "USD"
        out[sym] = Instrument(
            "okx",
            sym,
            "inverse" if inverse else "linear",
            float(cv) if inverse else None,
            _table(
                [0.0, *caps[:-1]],
                caps,
                [t[4] for t in tiers],
                [t[3] for t in tiers],
                [0.0] * len(tiers),
                where=sym,
                source=source,
                as_of=as_of,
                currency=sym.split("-")[0] if inverse else quote,
                basis="quantity",
                complete=complete,
                upper_inclusive=True,
            ),
        )
    return out


def gate(
    rows: Any,
    *,
    settle: str,
    as_of: str,
    contract: str | None = None,
    source: str = GATE_SOURCE,
    complete: bool = True,
) -> dict[str, Instrument]:
    """Gate ``GET /api/v4/futures/{settle}/risk_limit_tiers`` (public; ``contract=`` for one market, or all
    markets with ``limit``/``offset`` paging, each row then naming its ``contract``).

    Rows ``{tier, risk_limit, initial_rate, maintenance_rate, leverage_max, contract, deduction}``:
    ``risk_limit`` is a tier's largest position value (inclusive; USDT for ``usdt``, BTC for ``btc``),
    ``deduction`` the "maintenance margin quick calculation deduction" of Gate's graded maintenance margin
    (since 2025-07-29, maintenance margin = value × maintenance_rate − deduction). Rows without it get the
    deduction that keeps the graded margin continuous, ``d_n = d_{n−1} + floor_n·(rate_n − rate_{n−1})``.
    """
    rows = _nonempty(rows, "risk_limit_tiers")
    if settle not in ("usdt", "btc"):
        raise InputError("settle", f"{settle!r} is not usdt or btc")
    by_contract: dict[str, list[tuple[float, ...]]] = {}
    for j, row in enumerate(rows):
        w = f"[{j}]"
        name = (row.get("contract") if isinstance(row, dict) else None) or contract
        if not name:
            raise InputError(f"{w}.contract", "missing (give contract= for a one-market answer)")
        by_contract.setdefault(name, []).append(
            (
                _num(_field(row, "tier", w), f"{w}.tier"),
                _num(_field(row, "risk_limit", w), f"{w}.risk_limit"),
                _num(_field(row, "maintenance_rate", w), f"{w}.maintenance_rate"),
                _num(_field(row, "leverage_max", w), f"{w}.leverage_max"),
                _num(row.get("deduction"), f"{w}.deduction", allow_empty=True),
            )
        )
    out: dict[str, Instrument] = {}
    for name, tiers in by_contract.items():
        tiers.sort()
        caps = [t[1] for t in tiers]
        floors = [0.0, *caps[:-1]]
        mmr = [t[2] for t in tiers]
        ded = np.array([t[4] for t in tiers])
        if np.isnan(ded).any():
            ded = np.where(np.isnan(ded), maintenance_amounts(np.array(floors), np.array(mmr)), ded)
        inverse = settle == "btc"
        out[name] = Instrument(
            "gate",
            name,
            "inverse" if inverse else "linear",
            1.0 if inverse else None,
            _table(
                floors,
                caps,
                [t[3] for t in tiers],
                mmr,
                [float(d) for d in ded],
                where=name,
                source=source,
                as_of=as_of,
                currency="BTC" if inverse else "USDT",
                complete=complete,
                upper_inclusive=True,
            ),
        )
    return out


def hyperliquid(meta: Any, *, as_of: str | None, source: str = HYPERLIQUID_SOURCE) -> dict[str, Instrument]:
    """Hyperliquid ``POST /info {"type": "meta"}``.

    ``{universe: [{name, szDecimals, maxLeverage, marginTableId, [isDelisted]}], marginTables: [[id,
    {description, marginTiers: [{lowerBound, maxLeverage}]}]]}``. A tier starts at ``lowerBound`` (USDC
    notional) and runs to the next one; the last has no cap. Maintenance margin rate ``1/(2·maxLeverage)``
    and deduction by ``d_n = d_{n−1} + lowerBound_n·(MMR_n − MMR_{n−1})``
    (https://hyperliquid.gitbook.io/hyperliquid-docs/trading/margin-tiers). An asset whose table id is not
    in ``marginTables`` has one tier at its ``maxLeverage``. Delisted assets are skipped.
    """
    if not isinstance(meta, dict):
        raise InputError("meta", "must be an object {universe, marginTables}")
    universe = _nonempty(_field(meta, "universe", "meta"), "universe")
    tables_raw = meta.get("marginTables") or []
    if not isinstance(tables_raw, list):
        raise InputError("marginTables", "must be a list of [id, table] pairs")
    tables: dict[int, list[tuple[float, float]]] = {}
    for k, entry in enumerate(tables_raw):
        w = f"marginTables[{k}]"
        if not (isinstance(entry, list) and len(entry) == 2):
            raise InputError(w, "must be an [id, {description, marginTiers}] pair")
        tiers = _nonempty(_field(entry[1], "marginTiers", w), f"{w}.marginTiers")
        tiers = [
            (
                _num(_field(t, "lowerBound", f"{w}.marginTiers[{j}]"), f"{w}.marginTiers[{j}].lowerBound"),
                _num(_field(t, "maxLeverage", f"{w}.marginTiers[{j}]"), f"{w}.marginTiers[{j}].maxLeverage"),
            )
            for j, t in enumerate(tiers)
        ]
        tables[int(_num(entry[0], f"{w}[0]"))] = sorted(tiers)
    out: dict[str, Instrument] = {}
    for i, asset in enumerate(universe):
        w = f"universe[{i}]"
        name = _field(asset, "name", w)
        if asset.get("isDelisted"):
            continue
        max_lev = _num(_field(asset, "maxLeverage", w), f"{w}.maxLeverage")
        tid = asset.get("marginTableId")
        tiers = tables.get(int(tid)) if tid is not None else None
        if tiers is None:
            tiers = [(0.0, max_lev)]
        floors = [t[0] for t in tiers]
        lev = [t[1] for t in tiers]
        mmr = [1.0 / (2.0 * x) if x > 0 else math.nan for x in lev]
        out[str(name)] = Instrument(
            "hyperliquid",
            str(name),
            "linear",
            None,
            _table(
                floors,
                [*floors[1:], NO_CAP],
                lev,
                mmr,
                None,
                where=f"{w} ({name})",
                source=source,
                as_of=as_of,
                currency="USDC",
                upper_inclusive=False,
            ),
        )
    if not out:
        raise InputError("universe", "empty answer (no listed assets); the old table stays")
    return out
