"""Gate's ``/api/v4/futures/{settle}/risk_limit_tiers`` answers as tier tables."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..tier_table import Instrument, maintenance_amounts
from ._reading import nonempty, num, nums, tier_table

GATE_SOURCE = "https://www.gate.io/docs/developers/apiv4/#list-risk-limit-tiers"


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
    rows = nonempty(rows, "risk_limit_tiers")
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
                *nums(row, w, "tier", "risk_limit", "maintenance_rate", "leverage_max"),
                num(row.get("deduction"), f"{w}.deduction", allow_empty=True),
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
            tier_table(
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
