"""Calculator results against hand-computed values (each comment shows the arithmetic)."""

from __future__ import annotations

import numpy as np
import pytest

import core


def test_pnl_linear_with_fees_and_funding() -> None:
    # long 2 @ 36,000 -> 40,000, 10x (Bybit calculator example): PnL 8,000, IM 7,200, ROI 111.11 %, P&L 11.11 %
    res = core.pnl(
        side="long",
        entry_price=36000,
        exit_price=40000,
        quantity=2,
        leverage=10,
        open_fee_rate=0.0005,
        close_fee_rate=0.0005,
        funding_paid=12.5,
    )
    assert res["pnl"] == pytest.approx(8000)
    assert res["initial_margin"] == pytest.approx(7200)
    assert res["roe"] == pytest.approx(1.1111111, rel=1e-6)
    assert res["pnl_pct"] == pytest.approx(11.111111, rel=1e-6)
    assert res["fees"] == pytest.approx(72000 * 0.0005 + 80000 * 0.0005)  # 36 + 40
    assert res["net_pnl"] == pytest.approx(8000 - 76 - 12.5)


def test_pnl_short_and_inverse() -> None:
    assert core.pnl(side="short", entry_price=100, exit_price=90, quantity=3, leverage=5)["pnl"] == pytest.approx(30)
    # inverse long 10,000 contracts x 1 USD @ 7,000 -> 7,291.67: 10,000 (1/7000 - 1/7291.67) = 0.0571 BTC
    res = core.pnl(
        side="long",
        entry_price=7000,
        exit_price=7000 / 0.96,
        quantity=10000,
        leverage=5,
        contract_type="inverse",
        contract_size=1,
    )
    assert res["roe"] == pytest.approx(0.2)
    assert res["pnl"] == pytest.approx(10000 * (1 / 7000 - 0.96 / 7000))


def test_target_price_linear_and_unreachable() -> None:
    assert core.target_price(side="long", entry_price=100, leverage=10, target_roe=0.5)[
        "target_price"
    ] == pytest.approx(105)
    assert core.target_price(side="short", entry_price=100, leverage=10, target_roe=0.5)[
        "target_price"
    ] == pytest.approx(95)
    assert np.isnan(core.target_price(side="short", entry_price=100, leverage=2, target_roe=2.0)["target_price"])


def test_max_open_balance_and_tier_limits() -> None:
    # long 10x @ 100,000, fee 0.05 %: cost per BTC = 10,000 + 50 -> 10,000 / 10,050 BTC
    res = core.max_open(side="long", entry_price=100_000, leverage=10, available_balance=10_000, taker_fee_rate=0.0005)
    assert res["max_quantity"] == pytest.approx(10_000 / 10_050)
    assert res["limited_by"] == "balance"
    # 100x on BTCUSDT (2026 table): tiers with max leverage >= 100 end at 800,000 USDT notional
    res = core.max_open(side="long", entry_price=100_000, leverage=100, available_balance=1e9)
    assert res["max_quantity"] == pytest.approx(8.0) and res["limited_by"] == "tier"
    # short with mark above the order price: IM on the mark (assuming price), open loss (mark - order)
    res = core.max_open(
        side="short", entry_price=100_000, mark_price=101_000, leverage=10, available_balance=10_000, taker_fee_rate=0.0
    )
    assert res["cost_per_unit"] == pytest.approx(101_000 / 10 + 1_000)


def test_max_open_inverse() -> None:
    # COIN-M BTCUSD_PERP 20x @ 9,800, fee 0: a contract costs 100/9,800/20 BTC
    res = core.max_open(
        side="long",
        entry_price=9800,
        leverage=20,
        available_balance=0.0051020408,
        exchange="binance",
        symbol="BTCUSD_PERP",
        taker_fee_rate=0.0,
    )
    assert res["max_quantity"] == pytest.approx(10, rel=1e-6)


def test_average_entry_inverse_is_harmonic_and_2d() -> None:
    res = core.average_entry(prices=[100.0, 200.0], quantities=[1.0, 1.0], contract_type="inverse")
    assert res["average_entry_price"] == pytest.approx(2 / (1 / 100 + 1 / 200))
    res = core.average_entry(prices=np.array([[1.0, 3.0], [2.0, 4.0]]), quantities=np.array([1.0, 1.0]))
    assert res["average_entry_price"] == pytest.approx([2.0, 3.0])


def test_break_even_exact_convention() -> None:
    be = core.break_even_price(side="long", entry_price=100, open_fee_rate=0.001, close_fee_rate=0.001)
    assert be["break_even_price"] == pytest.approx(100 * 1.001 / 0.999)
    be = core.break_even_price(side="short", entry_price=100, open_fee_rate=0.001, close_fee_rate=0.001)
    assert be["break_even_price"] == pytest.approx(100 * 0.999 / 1.001)
    # funding of 10 USDT on 2 units moves a long's break-even up by 10 / 2 / (1 - f_close)
    be = core.break_even_price(side="long", entry_price=100, funding_paid=10, quantity=2)
    assert be["break_even_price"] == pytest.approx(105)


def test_funding_sign_and_inverse_units() -> None:
    res = core.funding_payments(side="short", quantity=2, mark_prices=[100, 100], funding_rates=[0.0001, -0.0003])
    assert list(res["payments"]) == pytest.approx([-0.02, 0.06]) and res["total"] == pytest.approx(0.04)
    res = core.funding_payments(
        side="long",
        quantity=10,
        mark_prices=[50_000],
        funding_rates=[0.0001],
        contract_type="inverse",
        contract_size=100,
    )
    assert res["total"] == pytest.approx(10 * 100 / 50_000 * 0.0001)
    many = core.funding_payments(
        side=np.array([[1.0], [-1.0]]), quantity=1, mark_prices=[100, 110], funding_rates=[0.01, 0.01]
    )
    assert many["total"] == pytest.approx([2.1, -2.1])


def test_retier_at_liquidation_price_binance() -> None:
    # 100 BTC @ 100,000 at 1.01x: 10M notional (tier 4, 1 %) but liquidation near 994 (99k notional, tier 1)
    res = core.liquidation_price(side="long", entry_price=100_000, quantity=100, leverage=1.01)
    assert res["tier"] == 4 and res["liquidation_tier"] == 1
    assert [w["code"] for w in res["warnings"]] == ["tier_changed"]
    lp, margin = res["liquidation_price"], 100 * 100_000 / 1.01
    assert margin + 100 * (lp - 100_000) == pytest.approx(100 * lp * 0.004, rel=1e-9)


def test_no_liquidation_for_fully_margined_long() -> None:
    res = core.liquidation_price(
        side="long", entry_price=100, quantity=1, margin=100, exchange="generic", maintenance_margin_rate=0.0
    )
    assert np.isnan(res["liquidation_price"])
    assert res["warnings"][0]["code"] == "no_liquidation"


def test_hedge_mode_legs_share_one_price() -> None:
    res = core.portfolio_liquidation(
        wallet_balance=2_000,
        position_mode="hedge",
        positions=[
            dict(symbol="BTCUSDT", side="long", entry_price=100_000, quantity=0.3),
            dict(symbol="BTCUSDT", side="short", entry_price=101_000, quantity=0.1),
        ],
    )
    lp = res["liquidation_price"]
    assert lp[0] == lp[1]
    # at that price the account's margin balance equals the two legs' maintenance margin
    upnl = 0.3 * (lp[0] - 100_000) - 0.1 * (lp[0] - 101_000)
    assert 2_000 + upnl == pytest.approx((0.3 + 0.1) * lp[0] * 0.004, rel=1e-9)


def test_packaged_tables_are_consistent() -> None:
    from core.tiers import EXCHANGES, symbols

    for exchange in EXCHANGES:
        for symbol in symbols(exchange):
            table = core.tiers_for(exchange, symbol)
            # an undated table (Hyperliquid's docs page) says so in its source; results then warn stale_tiers
            assert table["source"] and (table["as_of"] or "undated" in table["source"]), (exchange, symbol)
            rows = table["tiers"]
            for prev, row in zip(rows, rows[1:], strict=False):
                assert row["notional_floor"] == prev["notional_cap"]
                assert row["max_leverage"] <= prev["max_leverage"]
                assert row["maintenance_margin_rate"] >= prev["maintenance_margin_rate"]
                if exchange in ("binance", "hyperliquid"):  # cum recurrence keeps MM continuous
                    expected = prev["maintenance_amount"] + row["notional_floor"] * (
                        row["maintenance_margin_rate"] - prev["maintenance_margin_rate"]
                    )
                    assert row["maintenance_amount"] == pytest.approx(expected), (exchange, symbol, row)


def test_binance_btcusdt_2026_table_matches_reference() -> None:
    rows = core.tiers_for("binance", "BTCUSDT")["tiers"]
    assert [r["maintenance_amount"] for r in rows] == [
        0,
        300,
        1500,
        12_000,
        132_000,
        482_000,
        2_982_000,
        14_482_000,
        26_482_000,
        41_482_000,
        121_482_000,
        421_482_000,
    ]
    assert core.tiers_for("binance", "BTCUSDT", notional=300_000)["tier"] == 2  # a floor belongs to the higher tier


def test_retier_finds_a_price_the_entry_tier_misses() -> None:
    # 16.2466 BTC long @ 82,247 at ~1.0009x: with the entry tier (0.65 %, cum 1,500) the formula gives a
    # negative price, but at ~71.7 the notional is in tier 1 (cum 0), where margin balance = MM holds.
    q, ep, lev = 16.246644367255406, 82247.11592478614, 1.0008692310742142
    res = core.liquidation_price(side="long", entry_price=ep, quantity=q, leverage=lev)
    lp = res["liquidation_price"]
    assert res["liquidation_tier"] == 1 and lp == pytest.approx(71.7165261507925, rel=1e-9)
    assert q * ep / lev + q * (lp - ep) == pytest.approx(q * lp * 0.004, rel=1e-9)
