"""Hyperliquid's ``meta`` answer (universe and margin tables) as tier tables."""

from __future__ import annotations

import math
from typing import Any

from ..errors import InputError
from ..tier_table import Instrument
from ._reading import field, nonempty, num, nums, tier_table

#: Hyperliquid's last margin tier has no upper bound; this cap stands for none.
NO_CAP = 1e12

HYPERLIQUID_SOURCE = "https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint/perpetuals"


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
    universe = nonempty(field(meta, "universe", "meta"), "universe")
    tables_raw = meta.get("marginTables") or []
    if not isinstance(tables_raw, list):
        raise InputError("marginTables", "must be a list of [id, table] pairs")
    tables: dict[int, list[tuple[float, float]]] = {}
    for k, entry in enumerate(tables_raw):
        w = f"marginTables[{k}]"
        if not (isinstance(entry, list) and len(entry) == 2):
            raise InputError(w, "must be an [id, {description, marginTiers}] pair")
        tiers = nonempty(field(entry[1], "marginTiers", w), f"{w}.marginTiers")
        tiers = [nums(t, f"{w}.marginTiers[{j}]", "lowerBound", "maxLeverage") for j, t in enumerate(tiers)]
        tables[int(num(entry[0], f"{w}[0]"))] = sorted(tiers)
    out: dict[str, Instrument] = {}
    for i, asset in enumerate(universe):
        w = f"universe[{i}]"
        name = field(asset, "name", w)
        if asset.get("isDelisted"):
            continue
        max_lev = num(field(asset, "maxLeverage", w), f"{w}.maxLeverage")
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
            tier_table(
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
