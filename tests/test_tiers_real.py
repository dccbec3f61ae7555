"""Liquidation prices with every packaged real tier table equal the exchange's formula worked by hand with the
exchange's rows, across notionals from 1k to the last cap; and the cases where the old packaged tables were
wrong (ETHUSDT 200k at 120x, Bybit ETHUSDT tier 1, OKX contract tiers, Gate's deduction, Hyperliquid DOGE)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import core
from api import TestConfig, create_app
from api.tier_store import freshness
from core.tiers import instrument, symbols

EP = 4.0  # entry price: notional / EP is exact in binary, so boundary notionals land exactly on the boundary
SIDES = (1.0, -1.0)


def notionals(table) -> np.ndarray:
    """1k (or 1 % of the last cap for coin tables) to the last cap, with every floor and cap."""
    last = table.caps[-1] if table.caps[-1] < 1e12 else 2 * table.floors[-1] + 1e6
    if not table.upper_inclusive:
        last = np.nextafter(last, 0)  # a notional equal to Binance's last cap is beyond it
    lo = 1_000.0 if table.currency in ("USDT", "USDC", "USD1", "U") else table.caps[-1] / 100
    points = np.concatenate([np.geomspace(min(lo, last / 2), last, 15), table.floors[1:], table.caps[:-1]])
    return np.unique(points[(points > 0) & (points <= last)])


def tier_at(table, value: float) -> int:
    """The exchange's boundary rule, by hand."""
    for k in range(len(table)):
        lo, hi = table.floors[k], table.caps[k]
        inside = (lo < value <= hi) if table.upper_inclusive else (lo <= value < hi)
        if inside or (k == 0 and value <= lo):
            return k
    return len(table) - 1  # past the last cap (only reached at a liquidation price): the last tier


def binance_linear(table, s, q, m):
    """Binance USDⓈ-M isolated, https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93:
    LP = (WB + cum − s·Q·EP)/(Q·MMR − s·Q), with the bracket at the liquidation price."""
    for k in range(len(table)):
        lp = (m + table.amount[k] - s * q * EP) / (q * table.mmr[k] - s * q)
        if lp > 0 and tier_at(table, q * lp) == k:
            return lp
    return np.nan


def binance_inverse(table, s, n, cs, m):
    """Binance COIN-M, https://www.binance.com/en/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46:
    LP = (N·MMR + s·N)/((WB + cum)/CS + s·N/EP), bracket at the liquidation price (value N·CS/LP coin)."""
    for k in range(len(table)):
        lp = (n * table.mmr[k] + s * n) / ((m + table.amount[k]) / cs + s * n / EP)
        if lp > 0 and tier_at(table, n * cs / lp) == k:
            return lp
    return np.nan


def bybit_linear(table, s, q, m):
    """Bybit, https://www.bybit.com/en/help-center/s/article/Liquidation-Price-USDT-Contract:
    MM = Q·EP·MMR − mmDeduction (tier at entry value), LP = EP ∓ (IM − MM)/Q."""
    k = tier_at(table, q * EP)
    mm = q * EP * table.mmr[k] - table.amount[k]
    lp = EP - s * (m - mm) / q
    return lp if lp > 0 else np.nan


def bybit_inverse(table, s, n, m):
    """Bybit inverse isolated (UTA page, 2024-09-10 version): PV = contracts/EP, MM = PV·MMR − MMD,
    LP_long = contracts/(PV + (IM − MM)), LP_short = contracts/(PV − (IM − MM))."""
    pv = n / EP
    k = tier_at(table, pv)
    mm = pv * table.mmr[k] - table.amount[k]
    den = pv + s * (m - mm)
    return n / den if den > 0 else np.nan


def okx_linear(table, s, q, m, f=0.0005):
    """OKX, https://www.okx.com/help/how-do-i-use-the-liquidation-price-calculator: LP_long = (EP − M/Q)/(1 − MMR − f),
    LP_short = (EP + M/Q)/(1 + MMR + f); tier by position size (contracts × ctVal)."""
    k = tier_at(table, q)
    lp = (EP - s * m / q) / (1 - s * (table.mmr[k] + f))
    return lp if lp > 0 else np.nan


def gate_linear(table, s, q, m, f=0.00075):
    """Gate, LP = (EP ∓ (margin + deduction)/size)/(1 ∓ (MMR + f)) (graded maintenance margin since 2025-07-29)."""
    k = tier_at(table, q * EP)
    lp = (EP - s * (m + table.amount[k]) / q) / (1 - s * (table.mmr[k] + f))
    return lp if lp > 0 else np.nan


def hyperliquid_linear(table, s, q, m):
    """Hyperliquid, https://hyperliquid.gitbook.io/hyperliquid-docs/trading/liquidations: liq = price −
    side·margin_available/Q/(1 − l·side), margin_available = margin − (notional·MMR − deduction), l = MMR, with
    the tier at the liquidation price."""
    for k in range(len(table)):
        available = m - (q * EP * table.mmr[k] - table.amount[k])
        lp = EP - s * available / q / (1 - table.mmr[k] * s)
        if lp > 0 and tier_at(table, q * lp) == k:
            return lp
    return np.nan


def by_hand(exchange, inst, s, value):
    """(quantity, margin, LP) of an isolated 5x position of entry value (or OKX size) ``value``."""
    t = inst.tiers
    if inst.contract_type == "inverse":
        n = value * EP / (inst.contract_size or 1.0)  # contracts worth `value` coin
        m = value / 5
        lp = binance_inverse(t, s, n, inst.contract_size, m) if exchange == "binance" else bybit_inverse(t, s, n, m)
        return n, m, lp
    if exchange == "okx":
        q = value
        return q, q * EP / 5, okx_linear(t, s, q, q * EP / 5)
    q = value / EP
    m = value / 5
    hand = {"binance": binance_linear, "bybit": bybit_linear, "gate": gate_linear, "hyperliquid": hyperliquid_linear}
    return q, m, hand[exchange](t, s, q, m)


@pytest.mark.parametrize("exchange", ["binance", "bybit", "okx", "gate", "hyperliquid"])
def test_every_real_table_matches_the_formula_by_hand(exchange) -> None:
    checked = 0
    for sym in symbols(exchange):
        inst = instrument(exchange, sym)
        values = notionals(inst.tiers)
        for s in SIDES:
            rows = [by_hand(exchange, inst, s, v) for v in values]
            q, m, expected = (np.array(c) for c in zip(*rows, strict=True))
            res = core.liquidation_price(
                exchange=exchange, symbol=sym, side=s, entry_price=EP, quantity=q, margin=m, raise_errors=False
            )
            assert not res["error_code"].any(), (sym, values[res["error_code"] != 0])
            np.testing.assert_allclose(res["liquidation_price"], expected, rtol=1e-9, err_msg=f"{exchange} {sym} {s}")
            checked += len(values)
    assert checked > (20_000 if exchange == "binance" else 20)


def test_907_binance_usdm_contracts_are_packaged() -> None:
    usdm = [s for s in symbols("binance") if instrument("binance", s).contract_type == "linear"]
    assert len(usdm) == 907
    assert {"BTCUSDT_260925", "ETHUSDT_261225", "1000BONKUSDC", "DOGEUSDT"} <= set(usdm)


def test_binance_ethusdt_200k_at_120x_now_prices() -> None:
    """Tier 1 of ETHUSDT is 0-300,000 at 150x (2024 table: 0-50,000 at 125x refused 120x at 200k)."""
    q = 200_000 / 2_500
    res = core.liquidation_price(exchange="binance", symbol="ETHUSDT", side="long", entry_price=2_500, quantity=q,
                                 leverage=120)  # fmt: skip
    margin = 200_000 / 120
    assert res["tier"] == 1 and res["max_leverage"] == 150
    assert res["liquidation_price"] == pytest.approx((margin + 0 - q * 2_500) / (q * 0.004 - q), rel=1e-12)


def test_issue_rows_rerun() -> None:
    # Bybit ETHUSDT: tier 1 <= 900k at 0.5 %; 10M prices in tier 8 (9M-10.5M, 4 %) instead of being refused
    assert core.tiers_for("bybit", "ETHUSDT", notional=900_000)["maintenance_margin_rate"] == 0.005
    t = core.tiers_for("bybit", "ETHUSDT", notional=10_000_000)
    assert (t["tier"], t["maintenance_margin_rate"]) == (8, 0.04)
    # Bybit BTCUSD inverse: 150/300/450 BTC at 0.5/1/1.5 %; 280 BTC is tier 2
    assert [r["notional_cap"] for r in core.tiers_for("bybit", "BTCUSD")["tiers"]] == [150, 300, 450]
    assert core.tiers_for("bybit", "BTCUSD", notional=280)["maintenance_margin_rate"] == 0.01
    # Gate BTC_USDT: tier 1 <= 1M at 0.4 %, tier 2 <= 2M at 0.8 % with the graded deduction 4,000
    t = core.tiers_for("gate", "BTC_USDT", notional=1_500_000)
    assert (t["tier"], t["maintenance_margin_rate"], t["maintenance_amount"]) == (2, 0.008, 4_000)
    # OKX BTC-USDT-SWAP: tier 1 = 0-500 contracts = 5 BTC at 0.4 %
    t = core.tiers_for("okx", "BTC-USDT-SWAP", notional=5)
    assert (t["tier"], t["maintenance_margin_rate"], t["max_leverage"]) == (1, 0.004, 125)
    # Hyperliquid DOGE: 10x up to 20M, then 5x
    rows = core.tiers_for("hyperliquid", "DOGE")["tiers"]
    assert [(r["notional_floor"], r["max_leverage"]) for r in rows] == [(0, 10), (20_000_000, 5)]


@pytest.mark.parametrize(
    ("exchange", "symbol", "entry_price", "quantity"),
    [
        ("gate", "BTC_USDT", 100_000, 95),  # 9.5M: beyond the two known Gate rows
        ("okx", "BTC-USDT-SWAP", 100_000, 6),  # 6 BTC = 600 contracts: beyond OKX tier 1
        ("bybit", "BTCUSDT", 100_000, 30),  # 3M: beyond the two known Bybit rows
    ],
)
def test_partial_tables_answer_422_over_http(client, exchange, symbol, entry_price, quantity) -> None:
    body = {"exchange": exchange, "symbol": symbol, "side": "long", "entry_price": entry_price, "quantity": quantity,
            "leverage": 2}  # fmt: skip
    resp = client.post("/v1/liquidation-price", json=body)
    assert resp.status_code == 422 and resp.content_type == "application/problem+json"
    (message,) = resp.get_json()["errors"]["tiers"]
    assert "partial tier table" in message and "`tiers`" in message and "LIQRISK_TIERS_DIR" in message
    # the same position with the current table supplied in `tiers` prices
    known = core.tiers_for(exchange, symbol)["tiers"]
    cap = known[-1]["notional_cap"]
    extra = {"notional_floor": cap, "notional_cap": cap * 10, "max_leverage": 10, "maintenance_margin_rate": 0.05}
    rows = [{k: r[k] for k in extra} for r in known] + [extra]
    if exchange == "okx":  # a user table is by notional (OKX's packaged one by size)
        rows = [extra | {"notional_floor": 0, "notional_cap": 1e7}]
    resp = client.post("/v1/liquidation-price", json=body | {"tiers": rows})
    assert resp.status_code == 200 and resp.get_json()["tiers_as_of"] is None


def test_freshness_warning_and_symbols_listing(client) -> None:
    assert freshness("2026-09-29", 30, today=dt.date(2026, 10, 29)) is None
    assert freshness("2026-09-29", 30, today=dt.date(2026, 10, 30))["code"] == "stale_tiers"
    assert "no date" in freshness(None, 30)["message"]
    body = {"exchange": "binance", "symbol": "BTCUSDT", "side": "long", "entry_price": 100_000, "quantity": 1,
            "leverage": 10}  # fmt: skip
    out = client.post("/v1/liquidation-price", json=body).get_json()
    assert out["tiers_as_of"] == "2026-09-29"
    assert [w["code"] for w in out["warnings"]] == ["stale_tiers"]  # 2026-09-29 is more than 30 days ago
    out = client.post("/v1/liquidation-price", json=body | {"maintenance_margin_rate": 0.004}).get_json()
    assert out["tiers_as_of"] is None and out["warnings"] == []

    class Lenient(TestConfig):
        TIERS_MAX_AGE_DAYS = 100_000

    lenient = create_app(Lenient).test_client()
    assert lenient.post("/v1/liquidation-price", json=body).get_json()["warnings"] == []
    listing = client.get("/v1/exchanges/bybit/symbols").get_json()
    assert listing["count"] == 3 and listing["max_age_days"] == 30
    eth = next(r for r in listing["symbols"] if r["symbol"] == "ETHUSDT")
    assert (eth["as_of"], eth["complete"], eth["stale"], eth["loaded"]) == ("2023-03-05", False, True, False)
    assert client.get("/v1/exchanges/nope/symbols").status_code == 404


def test_batch_names_tables_and_stale_rows(client) -> None:
    cols = {"side": ["long", "short", "long"], "entry_price": [100_000, 3_000, 100_000], "quantity": [1, 10, 1],
            "leverage": [10, 10, 10], "symbol": ["BTCUSDT", "ETHUSDT", "BTCUSDT"],
            "maintenance_margin_rate": [None, None, 0.004]}  # fmt: skip
    out = client.post("/v1/liquidation-price/batch", json={"positions": cols}).get_json()
    used = {(t["symbol"], t["as_of"], t["rows"]) for t in out["tiers_as_of"]}
    assert used == {("BTCUSDT", "2026-09-29", 1), ("ETHUSDT", "2026-09-29", 1)}
    assert out["warnings"]["stale_tiers"] == [0, 1]  # row 2 gave its MMR


def test_max_open_does_not_take_a_partial_tables_last_row_for_the_cap() -> None:
    small = core.max_open(exchange="gate", symbol="BTC_USDT", side="long", entry_price=100_000, leverage=2,
                          available_balance=100_000)  # fmt: skip
    assert small["limited_by"] == "balance"
    with pytest.raises(ValueError, match="tiers: the largest position the balance opens is beyond the known rows"):
        core.max_open(exchange="gate", symbol="BTC_USDT", side="long", entry_price=100_000, leverage=2,
                      available_balance=10_000_000)  # fmt: skip
