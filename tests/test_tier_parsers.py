"""Parsers of the exchanges' tier endpoints (recorded responses in tests/fixtures/tiers) and each exchange's
boundary rule, in TierTable.lookup and in the kernels."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

import core
from core import tier_parsers
from core.tiers import install_overlay, instrument

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tiers"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "tiers"


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def rows(table) -> list[tuple[float, ...]]:
    return [
        (
            r["notional_floor"],
            r["notional_cap"],
            r["max_leverage"],
            r["maintenance_margin_rate"],
            r["maintenance_amount"],
        )
        for r in table.rows()
    ]


# --- Binance ---------------------------------------------------------------------------------------------


def test_binance_usdm_parses_real_brackets() -> None:
    out = tier_parsers.binance_usdm(load("binance_fapi_v1_leverageBracket.json"), as_of="2026-09-29")
    assert len(out) == 9
    eth = out["ETHUSDT"].tiers
    assert rows(eth)[:2] == [(0, 300_000, 150, 0.004, 0), (300_000, 800_000, 100, 0.005, 300)]
    assert not eth.upper_inclusive and eth.complete and eth.as_of == "2026-09-29"
    assert out["BTCUSDT_260925"].tiers.currency == "USDT"
    assert out["1000BONKUSDC"].tiers.currency == "USDC"
    assert out["ETHBTC"].tiers.currency == "BTC"
    assert out["BTCUSD1"].tiers.currency == "USD1"
    # the packaged table is this parse of the same answer
    assert rows(out["BTCUSDT"].tiers) == rows(instrument("binance", "BTCUSDT").tiers)
    assert rows(out["DOGEUSDT"].tiers) == rows(instrument("binance", "DOGEUSDT").tiers)


def test_binance_usdm_single_symbol_answer_is_one_object() -> None:
    answer = load("binance_fapi_v1_leverageBracket.json")[0]
    out = tier_parsers.binance_usdm(answer, as_of="2026-09-29")
    assert list(out) == [answer["symbol"]]


def test_binance_reference_file_matches_packaged_tables() -> None:
    path = REFERENCE / "binance-usdm-leverageBracket-2026-09.json"
    if not path.is_file():
        pytest.skip(f"exchange reference data not found at {REFERENCE} (it ships beside the repo)")
    out = tier_parsers.binance_usdm(json.loads(path.read_text()), as_of="2026-09-29")
    assert len(out) == 907
    for sym, inst in out.items():
        assert rows(inst.tiers) == rows(instrument("binance", sym).tiers), sym


def test_binance_coinm_reads_both_floor_spellings() -> None:
    out = tier_parsers.binance_coinm(load("binance_dapi_v2_leverageBracket.json"), as_of="2026-11-01")
    btc, eth = out["BTCUSD_PERP"], out["ETHUSD_PERP"]
    assert (btc.contract_type, btc.contract_size, btc.tiers.currency) == ("inverse", 100.0, "BTC")
    assert eth.contract_size == 10.0
    assert rows(eth.tiers) == [(0, 250, 100, 0.005, 0), (250, 500, 50, 0.01, 1.25)]  # sorted by bracket


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[0]["brackets"][1].pop("notionalCap"), r"\[0\]\.brackets\[1\]\.notionalCap: missing"),
        (lambda d: d[0]["brackets"][0].update(maintMarginRatio="abc"), r"maintMarginRatio: must be a number"),
        (lambda d: d[0]["brackets"][2].update(notionalFloor=1.0), r"must equal the previous tier's notional_cap"),
        (lambda d: d[0].update(brackets=[]), r"empty answer"),
        (lambda d: d.clear(), r"empty answer"),
        (lambda d: d[0].update(symbol=7), r"\[0\]\.symbol"),
    ],
)
def test_binance_malformed_rows_are_refused(mutate, message) -> None:
    answer = copy.deepcopy(load("binance_fapi_v1_leverageBracket.json"))
    mutate(answer)
    with pytest.raises(ValueError, match=message):
        tier_parsers.binance_usdm(answer, as_of="2026-09-29")


# --- Bybit -----------------------------------------------------------------------------------------------


def test_bybit_pages_and_mm_deduction() -> None:
    pages = [load("bybit_v5_risk_limit_linear_page1.json"), load("bybit_v5_risk_limit_linear_page2.json")]
    out = tier_parsers.bybit(pages, as_of="2024-05-10")
    assert set(out) == {"BTCUSDT", "ETHUSDT"}
    assert rows(out["BTCUSDT"].tiers) == [(0, 2_000_000, 100, 0.005, 0), (2_000_000, 2_600_000, 90, 0.0056, 0)]
    eth = out["ETHUSDT"].tiers
    assert rows(eth) == [
        (0, 900_000, 100, 0.005, 0),
        (900_000, 1_500_000, 50, 0.01, 4500),
        (1_500_000, 3_000_000, 36.37, 0.015, 12_000),
    ]
    assert eth.upper_inclusive


def test_bybit_percent_rates_of_the_docs_example_are_read_as_percent() -> None:
    out = tier_parsers.bybit(load("bybit_v5_risk_limit_inverse_docs_example.json"), as_of="2022-12-26")
    inst = out["BTCUSD"]
    assert (inst.contract_type, inst.contract_size, inst.tiers.currency) == ("inverse", 1.0, "BTC")
    assert list(inst.tiers.mmr) == [0.005, 0.01, 0.015]
    assert list(inst.tiers.caps) == [150, 300, 450]


def test_bybit_errors_and_empty_answer() -> None:
    page = load("bybit_v5_risk_limit_linear_page1.json")
    with pytest.raises(ValueError, match="retCode: 10001"):
        tier_parsers.bybit({"retCode": 10001, "retMsg": "params error", "result": {}}, as_of="2024-05-10")
    empty = copy.deepcopy(page)
    empty["result"]["list"] = []
    with pytest.raises(ValueError, match="empty answer"):
        tier_parsers.bybit(empty, as_of="2024-05-10")
    bad = copy.deepcopy(page)
    bad["result"]["list"][1]["riskLimitValue"] = "n/a"
    with pytest.raises(ValueError, match=r"list\[1\]\.riskLimitValue"):
        tier_parsers.bybit(bad, as_of="2024-05-10")


# --- OKX, Gate, Hyperliquid -----------------------------------------------------------------------------


def test_okx_contracts_converted_with_ct_val() -> None:
    out = tier_parsers.okx(load("okx_position_tiers_btc_usdt.json"), ct_val=0.01, as_of="2022-02-11")
    t = out["BTC-USDT-SWAP"].tiers
    assert t.basis == "quantity" and t.upper_inclusive
    assert rows(t) == [(0, 5, 125, 0.004, 0), (5, 10, 100, 0.005, 0)]  # 500 contracts x 0.01 BTC = 5 BTC


def test_okx_gap_and_missing_ct_val_are_refused() -> None:
    answer = load("okx_position_tiers_btc_usdt.json")
    with pytest.raises(ValueError, match="ctVal"):
        tier_parsers.okx(answer, ct_val={}, as_of="2022-02-11")
    gap = copy.deepcopy(answer)
    gap["data"][1]["minSz"] = "972001"
    with pytest.raises(ValueError, match="missing tiers"):
        tier_parsers.okx(gap, ct_val=0.01, as_of="2022-02-11")
    with pytest.raises(ValueError, match="code: 51000"):
        tier_parsers.okx(
            {"code": "51000", "msg": "Parameter instFamily error", "data": []}, ct_val=0.01, as_of="2022-02-11"
        )


def test_gate_graded_deduction_given_or_derived() -> None:
    real = tier_parsers.gate(
        load("gate_risk_limit_tiers_btc_usdt.json"), settle="usdt", contract="BTC_USDT", as_of="2024-01-19"
    )
    # rows without `deduction`: Gate's graded margin, d2 = 1,000,000 x (0.8 % - 0.4 %)
    assert rows(real["BTC_USDT"].tiers) == [(0, 1_000_000, 125, 0.004, 0), (1_000_000, 2_000_000, 83.33, 0.008, 4000)]
    pages = load("gate_risk_limit_tiers_usdt_all_page1.json") + load("gate_risk_limit_tiers_usdt_all_page2.json")
    eth = tier_parsers.gate(pages, settle="usdt", as_of="2026-11-01")["ETH_USDT"].tiers
    assert list(eth.amount) == [0, 1250, 3750] and eth.upper_inclusive
    with pytest.raises(ValueError, match="contract: missing"):
        tier_parsers.gate(load("gate_risk_limit_tiers_btc_usdt.json"), settle="usdt", as_of="2024-01-19")


def test_hyperliquid_meta_margin_tables() -> None:
    out = tier_parsers.hyperliquid(load("hyperliquid_info_meta.json"), as_of="2026-11-01")
    assert set(out) == {"BTC", "ETH", "SOL", "XYZ"}  # the delisted asset is skipped
    btc = out["BTC"].tiers
    assert rows(btc) == [(0, 150e6, 40, 0.0125, 0), (150e6, tier_parsers.NO_CAP, 20, 0.025, 1_875_000)]
    assert rows(out["XYZ"].tiers) == [(0, tier_parsers.NO_CAP, 3, 1 / 6, 0)]  # no margin table: one tier
    for sym in ("BTC", "ETH", "SOL"):
        assert rows(out[sym].tiers) == rows(instrument("hyperliquid", sym).tiers)


# --- boundary rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exchange", "symbol", "value", "tier"),
    [
        ("binance", "ETHUSDT", 300_000.0, 2),  # a notional equal to a floor belongs to the higher bracket
        ("binance", "ETHUSDT", 299_999.99, 1),
        ("bybit", "ETHUSDT", 900_000.0, 1),  # riskLimitValue is inclusive
        ("bybit", "ETHUSDT", 900_000.01, 2),
        ("gate", "BTC_USDT", 1_000_000.0, 1),  # risk_limit is inclusive
        ("gate", "BTC_USDT", 1_000_000.01, 2),
        ("okx", "BTC-USDT-SWAP", 5.0, 1),  # maxSz 500 contracts = 5 BTC, inclusive
        ("hyperliquid", "BTC", 150_000_000.0, 2),  # a tier starts at its lowerBound
    ],
)
def test_boundary_rule_in_lookup_and_kernel(exchange, symbol, value, tier) -> None:
    table = instrument(exchange, symbol).tiers
    assert int(table.lookup(value)) + 1 == tier
    assert core.tiers_for(exchange, symbol, notional=value)["tier"] == tier
    # the kernel: a position whose size (OKX) or entry notional is exactly the value
    ep = 100_000.0 if table.basis == "notional" else 50_000.0
    qty = value / ep if table.basis == "notional" else value
    res = core.liquidation_price(
        exchange=exchange, symbol=symbol, side="long", entry_price=ep, quantity=np.array([qty]), margin=value
    )
    assert res["tier"][0] == tier


def test_partial_table_refuses_beyond_known_rows() -> None:
    with pytest.raises(ValueError, match=r"tiers: the position is beyond the known rows of a partial tier table"):
        core.liquidation_price(exchange="okx", symbol="BTC-USDT-SWAP", side="long", entry_price=50_000, quantity=5.01,
                               leverage=10)  # fmt: skip
    with pytest.raises(ValueError, match="partial tier table"):
        core.tiers_for("bybit", "ETHUSDT", notional=24_000_000.01)
    assert core.tiers_for("bybit", "ETHUSDT", notional=24_000_000.0)["tier"] == 13


def test_overlay_takes_precedence_and_resets() -> None:
    doc = tier_parsers.okx(load("okx_position_tiers_btc_usdt.json"), ct_val=0.01, as_of="2026-11-30")
    try:
        install_overlay({"okx": doc})
        res = core.liquidation_price(exchange="okx", symbol="BTC-USDT-SWAP", side="long", entry_price=50_000,
                                     quantity=6.0, leverage=10)  # fmt: skip
        assert res["tier"] == 2 and res["tiers_as_of"] == "2026-11-30"
    finally:
        install_overlay({})
    assert instrument("okx", "BTC-USDT-SWAP").tiers.as_of == "2022-02-11"
