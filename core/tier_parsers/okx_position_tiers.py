"""OKX's ``/api/v5/public/position-tiers`` answers as tier tables."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..tier_table import Instrument
from ._reading import field, nonempty, nums, tier_table

OKX_SOURCE = "https://www.okx.com/docs-v5/en/#public-data-rest-api-get-position-tiers"


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
    rows = nonempty(field(response, "data", "response"), "data")
    by_symbol: dict[str, list[tuple[float, ...]]] = {}
    for j, row in enumerate(rows):
        w = f"data[{j}]"
        family = row.get("instFamily") or row.get("uly") if isinstance(row, dict) else None
        sym = (row.get("instId") if isinstance(row, dict) else None) or (f"{family}-SWAP" if family else None)
        if not sym:
            raise InputError(f"{w}.instFamily", "missing (no instId, instFamily or uly)")
        by_symbol.setdefault(sym, []).append(nums(row, w, "tier", "minSz", "maxSz", "mmr", "maxLever"))
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
            tier_table(
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
