"""Bybit's ``/v5/market/risk-limit`` answers as tier tables."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError
from ..tier_table import Instrument
from ._reading import field, nonempty, num, nums, tier_table

BYBIT_SOURCE = "https://bybit-exchange.github.io/docs/v5/market/risk-limit"


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
    pages = nonempty(pages, "pages")
    category = None
    by_symbol: dict[str, list[dict[str, Any]]] = {}
    for p, page in enumerate(pages):
        if not isinstance(page, dict):
            raise InputError(f"pages[{p}]", "must be an object")
        if page.get("retCode", 0) not in (0, "0"):
            raise InputError(f"pages[{p}].retCode", f"{page.get('retCode')} ({page.get('retMsg')})")
        result = field(page, "result", f"pages[{p}]")
        category = field(result, "category", f"pages[{p}].result")
        rows = field(result, "list", f"pages[{p}].result")
        if not isinstance(rows, list):
            raise InputError(f"pages[{p}].result.list", "must be a list")
        for j, row in enumerate(rows):
            sym = field(row, "symbol", f"pages[{p}].result.list[{j}]")
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
            cap, mmr, lev = nums(row, w, "riskLimitValue", "maintenanceMargin", "maxLeverage")
            mmr /= scale
            ded = num(row.get("mmDeduction"), f"{w}.mmDeduction", allow_empty=True)
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
            tier_table(
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
