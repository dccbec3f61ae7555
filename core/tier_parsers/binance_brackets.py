"""Binance's ``leverageBracket`` answers (USDⓈ-M and COIN-M) as tier tables."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..tier_table import Instrument
from ._reading import field, nonempty, nums, tier_table

BINANCE_USDM_SOURCE = "https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Notional-and-Leverage-Brackets"
BINANCE_COINM_SOURCE = (
    "https://developers.binance.com/docs/derivatives/coin-margined-futures/account/Notional-Bracket-for-Symbol"
)

#: quote/settle currencies of Binance USDⓈ-M symbols, longest first (``BTCUSDT_260925`` is a delivery contract)
_BINANCE_QUOTES = ("USDT", "USDC", "USD1", "BTC", "U")


def binance_usdm(response: Any, *, as_of: str, source: str = BINANCE_USDM_SOURCE) -> dict[str, Instrument]:
    """Binance USDⓈ-M ``GET /fapi/v1/leverageBracket`` (signed; one object when ``symbol`` was sent).

    Rows ``{symbol, [notionalCoef], brackets: [{bracket, initialLeverage, notionalCap, notionalFloor,
    maintMarginRatio, cum}]}``; notionals and ``cum`` in the quote currency. ``notionalCap`` is the next
    bracket's ``notionalFloor``; a notional equal to a floor belongs to that (higher) bracket.
    """
    items = [response] if isinstance(response, dict) else nonempty(response, "leverageBracket")
    out: dict[str, Instrument] = {}
    for i, item in enumerate(items):
        sym = field(item, "symbol", f"[{i}]")
        if not isinstance(sym, str) or not sym:
            raise InputError(f"[{i}].symbol", "must be a non-empty string")
        brackets = nonempty(field(item, "brackets", f"[{i}]"), f"[{i}].brackets")
        names = ("bracket", "notionalFloor", "notionalCap", "initialLeverage", "maintMarginRatio", "cum")
        rows = [nums(b, f"[{i}].brackets[{j}]", *names) for j, b in enumerate(brackets)]
        order = np.argsort([r[0] for r in rows], kind="stable")
        _, floor, cap, lev, mmr, cum = ([rows[o][k] for o in order] for k in range(len(names)))
        root = sym.split("_")[0]
        currency = next((q for q in _BINANCE_QUOTES if root.endswith(q)), None)
        out[sym] = Instrument(
            "binance",
            sym,
            "linear",
            None,
            tier_table(
                floor,
                cap,
                lev,
                mmr,
                cum,
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
    items = [response] if isinstance(response, dict) else nonempty(response, "leverageBracket")
    out: dict[str, Instrument] = {}
    for i, item in enumerate(items):
        sym = field(item, "symbol", f"[{i}]")
        if not isinstance(sym, str) or "USD" not in sym:
            raise InputError(f"[{i}].symbol", "must be a COIN-M symbol such as BTCUSD_PERP")
        brackets = nonempty(field(item, "brackets", f"[{i}]"), f"[{i}].brackets")
        rows = []
        for j, b in enumerate(brackets):
            where = f"[{i}].brackets[{j}]"
            floor_name = "qtyFloor" if isinstance(b, dict) and "qtyFloor" in b else "qtylFloor"
            rows.append(nums(b, where, "bracket", floor_name, "qtyCap", "initialLeverage", "maintMarginRatio", "cum"))
        rows.sort()
        base = sym.split("USD")[0]
        cols = list(zip(*rows, strict=True))
        out[sym] = Instrument(
            "binance",
            sym,
            "inverse",
            100.0 if base == "BTC" else 10.0,
            tier_table(
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
