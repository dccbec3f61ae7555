"""Every published worked example, re-run over Python scalars, 0-d arrays and N-d arrays
(empyrical's TestStatsArrays trick)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import core
from worked_examples import (
    BINANCE_2020_BTCUSDT_TIERS,
    BINANCE_DOC_EXPECTED,
    BINANCE_DOC_HELD,
    BINANCE_DOC_POSITIONS,
    BINANCE_DOC_WALLET,
    BRACKET_CASES,
    CASES,
    Case,
)

FORMS = ("scalar", "0d", "nd")
ND = (2, 3)


def _convert(case: Case, form: str) -> dict:
    kwargs = dict(case.kwargs)
    if form == "scalar":
        return kwargs
    for name in case.array_fields:
        value = kwargs[name]
        if name == "side":
            value = 1.0 if value == "long" else -1.0
        kwargs[name] = np.asarray(value, dtype=float) if form == "0d" else np.full(ND, value, dtype=float)
    return kwargs


def _close(actual, expected: float, case: Case) -> bool:
    if case.rel_tol is not None:
        return math.isclose(actual, expected, rel_tol=case.rel_tol)
    return abs(actual - expected) <= case.abs_tol + 1e-12


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_worked_example(case: Case, form: str) -> None:
    result = getattr(core, case.function)(**_convert(case, form))
    for name, expected in case.expected.items():
        actual = np.asarray(result[name], dtype=float)
        if form == "nd" and case.array_fields:
            assert actual.shape == ND, name
        elif form == "scalar":
            assert isinstance(result[name], float | int), (name, type(result[name]))
        for value in actual.reshape(-1):
            assert _close(float(value), expected, case), (case.id, name, float(value), expected, case.source)


@pytest.mark.parametrize(("notional", "mmr", "amount"), BRACKET_CASES)
def test_binance_faq_bracket_lookup(notional: float, mmr: float, amount: float | None) -> None:
    """Binance FAQ: 264,000 USDT -> MMR 1 %; 500,000 USDT -> maintenance amount 1,300 USDT (2020 table),
    with maintenance amounts derived by the cum recurrence."""
    tier = core.tiers_for("binance", "BTCUSDT", notional=notional, tiers=BINANCE_2020_BTCUSDT_TIERS)
    assert tier["maintenance_margin_rate"] == mmr
    if amount is not None:
        assert tier["maintenance_amount"] == pytest.approx(amount)


def test_binance_doc_cross_pair_as_one_portfolio() -> None:
    """The two Binance cross examples are one account: the portfolio solver reproduces both prices from
    the raw positions (TMM1 and UPNL1 computed, not given)."""
    names = ("btcusdt", "ethusdt")
    res = core.portfolio_liquidation(
        wallet_balance=BINANCE_DOC_WALLET,
        positions=[dict(BINANCE_DOC_POSITIONS[n], mark_price=BINANCE_DOC_HELD[n]["mark_price"]) for n in names],
    )
    assert res["liquidation_price"] == pytest.approx([BINANCE_DOC_EXPECTED[n][0] for n in names], abs=0.01)
    assert res["maintenance_margin"] == pytest.approx(
        [BINANCE_DOC_HELD[n]["maintenance_margin"] for n in names], abs=1e-3
    )
    assert res["unrealized_pnl"] == pytest.approx([BINANCE_DOC_HELD[n]["unrealized_pnl"] for n in names], abs=1e-3)
