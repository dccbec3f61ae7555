"""Published worked examples (exchange pages, Binance's calculator, Hyperliquid's API), each with its source.

Each case names the core function, its keyword arguments (as in the HTTP API) and the expected outputs
with a tolerance. The HTTP tests replay the same cases through the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FREQTRADE_BINANCE = (
    "Binance FAQ b3c689c1f50a44cabb3a84e663b81d93 worked example, as encoded in freqtrade "
    "tests/exchange/test_binance.py::test_liquidation_price_binance @c9ae5e1e"
)
HL_SOURCE = (
    "Hyperliquid API liquidationPx recorded in freqtrade tests/exchange/test_hyperliquid.py @3b1fb5af "
    "(2024; asset max leverage BTC/ETH 50x, SOL/DOGE 20x)"
)


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    function: str
    kwargs: dict[str, Any]
    expected: dict[str, float]
    abs_tol: float | None = None
    rel_tol: float | None = None
    array_fields: tuple[str, ...] = field(default=("side", "entry_price", "quantity"))


#: Binance's cross-margin example: one account (wallet 1,535,443.01 USDT) holding two longs, each given with its
#: bracket's MMR and maintenance amount, and what each holds at the example's mark price
BINANCE_DOC_WALLET = 1535443.01
BINANCE_DOC_POSITIONS = {
    "btcusdt": dict(
        symbol="BTCUSDT",
        side="long",
        entry_price=32481.98,
        quantity=109.488,
        maintenance_margin_rate=0.025,
        maintenance_amount=16300.0,
    ),
    "ethusdt": dict(
        symbol="ETHUSDT",
        side="long",
        entry_price=1456.84,
        quantity=3683.979,
        maintenance_margin_rate=0.1,
        maintenance_amount=135365.0,
    ),
}
BINANCE_DOC_HELD = {
    "btcusdt": {"mark_price": 31967.27, "maintenance_margin": 71200.811444, "unrealized_pnl": -56354.56848},
    "ethusdt": {"mark_price": 1335.18, "maintenance_margin": 356512.508122, "unrealized_pnl": -448192.88514},
}
#: (cross liquidation price with the other position held, isolated one with the wallet as margin)
BINANCE_DOC_EXPECTED = {"btcusdt": (26316.89, 18778.73), "ethusdt": (1153.26, 1114.78)}


def _binance_doc_cases(name: str, other: str) -> list[Case]:
    position = dict(exchange="binance", **BINANCE_DOC_POSITIONS[name])
    held = BINANCE_DOC_HELD[other]
    cross, isolated = BINANCE_DOC_EXPECTED[name]
    return [
        Case(
            f"binance-um-doc-cross-oneway-{name}",
            FREQTRADE_BINANCE,
            "liquidation_price",
            dict(
                position,
                margin_mode="cross",
                wallet_balance=BINANCE_DOC_WALLET,
                other_positions=[{k: held[k] for k in ("maintenance_margin", "unrealized_pnl")}],
            ),
            {"liquidation_price": cross},
            abs_tol=0.01,
        ),
        Case(
            f"binance-um-isolated-oneway-{name}-from-doc-example",
            "freqtrade tests/exchange/test_binance.py::test_liquidation_price_binance @c9ae5e1e (isolated variant)",
            "liquidation_price",
            dict(position, margin=BINANCE_DOC_WALLET),
            {"liquidation_price": isolated},
            abs_tol=0.01,
        ),
    ]


CASES: list[Case] = [
    *_binance_doc_cases("btcusdt", other="ethusdt"),
    *_binance_doc_cases("ethusdt", other="btcusdt"),
    Case(
        "binance-cm-calculator-cross-btcusd-long",
        "dev.binance.vision thread 6292: Binance calculator output 33,599.40 (MMR 12.5 %, cum 11.605 BTC)",
        "liquidation_price",
        dict(
            exchange="binance",
            symbol="BTCUSD_PERP",
            contract_type="inverse",
            contract_size=100,
            side="long",
            entry_price=45000.0,
            quantity=100000,
            margin_mode="cross",
            wallet_balance=101.0,
            maintenance_margin_rate=0.125,
            maintenance_amount=11.605,
        ),
        {"liquidation_price": 33599.4},
        abs_tol=0.1,
    ),
    Case(
        "binance-cm-calculator-cross-btcusd-long-packaged-tiers",
        "same example, tier looked up in the packaged 2021 COIN-M BTCUSD brackets (200-400 BTC: 12.5 %, 11.605)",
        "liquidation_price",
        dict(
            exchange="binance",
            symbol="BTCUSD_PERP",
            side="long",
            entry_price=45000.0,
            quantity=100000,
            margin_mode="cross",
            wallet_balance=101.0,
        ),
        {"liquidation_price": 33599.4, "tier": 7, "maintenance_margin_rate": 0.125},
        abs_tol=0.1,
    ),
    Case(
        "bybit-usdt-doc-isolated-long-50x",
        "https://www.bybit.com/en/help-center/s/article/Liquidation-Price-USDT-Contract (Example 1)",
        "liquidation_price",
        dict(
            exchange="bybit",
            symbol="BTCUSDT",
            side="long",
            entry_price=20000,
            quantity=1,
            leverage=50,
            maintenance_margin_rate=0.005,
            maintenance_amount=0.0,
        ),
        {"liquidation_price": 19700, "initial_margin": 400, "maintenance_margin": 100},
        abs_tol=0.01,
    ),
    Case(
        "bybit-inverse-legacy-doc-cross-long",
        "https://help.bybit.com/hc/en-us/articles/360039261334 (legacy inverse cross example; the page prints "
        "LP 5,739.50 while its own equation gives 5,739.08, hence the 0.5 tolerance)",
        "liquidation_price",
        dict(
            exchange="bybit",
            symbol="BTCUSD",
            contract_type="inverse",
            contract_size=1,
            side="long",
            entry_price=8000,
            quantity=10000,
            margin_mode="cross",
            wallet_balance=0.5,
            maintenance_margin_rate=0.005,
            taker_fee_rate=0.00075,
        ),
        {"liquidation_price": 5739.5, "bankruptcy_price": 5718.57},
        abs_tol=0.5,
    ),
    Case(
        "bybit-calc-inverse-target-price-long",
        "https://help.bybit.com/hc/en-us/articles/360039260154 (legacy inverse calculator, Example 2: ~7,292)",
        "target_price",
        dict(side="long", entry_price=7000, leverage=5, target_roe=0.2, contract_type="inverse"),
        {"target_price": 7291.67},
        abs_tol=0.5,
        array_fields=("side", "entry_price", "leverage", "target_roe"),
    ),
    Case(
        "bybit-calc-average-entry-price",
        "https://www.bybit.com/en/help-center/article/Calculator-for-Perpetual-and-Futures-Standard-Account "
        "(Entry Price tab example)",
        "average_entry",
        dict(
            fills=[{"quantity": 1, "price": 7000}, {"quantity": 0.2, "price": 7500}, {"quantity": 0.15, "price": 6900}]
        ),
        {"average_entry_price": 7062.96},
        abs_tol=0.1,
        array_fields=(),
    ),
    Case(
        "binance-um-doc-initial-margin-long-20x",
        "https://www.binance.com/en/support/faq/87fa7ee33b574f7084d42bd2ce2e463b (1 BTC @ 9,253.30, 20x -> 462.66)",
        "pnl",
        dict(side="long", entry_price=9253.3, exit_price=9253.3, quantity=1, leverage=20),
        {"initial_margin": 462.66},
        abs_tol=0.01,
        array_fields=("side", "entry_price", "exit_price", "quantity", "leverage"),
    ),
    Case(
        "binance-cm-doc-initial-margin-20x",
        "https://www.binance.com/en/support/faq/be2c7d9d95b04a7e8044ed02dd7dfe5c (10 contracts x 100 USD @ 9,800, 20x)",
        "pnl",
        dict(
            side="long",
            entry_price=9800,
            exit_price=9800,
            quantity=10,
            leverage=20,
            contract_type="inverse",
            contract_size=100,
        ),
        {"initial_margin": 0.0051},
        abs_tol=5e-5,
        array_fields=("side", "entry_price", "exit_price", "quantity", "leverage"),
    ),
]

# (coin, side, entry, size, isolated margin, leverage, asset max leverage, Hyperliquid liquidationPx)
HYPERLIQUID = [
    ("ETH", "long", 2458.5, 0.015, 36.864593, 1.0, 50, 0.86915825),
    ("BTC", "long", 63287.0, 0.00039, 24.673292, 1.0, 50, 22.37166537),
    ("SOL", "long", 146.82, 0.16, 23.482979, 1.0, 20, 0.05269872),
    ("SOL", "long", 145.83, 0.33, 24.045107, 2.0, 20, 74.83696193),
    ("ETH", "long", 2459.5, 0.0199, 24.454895, 2.0, 50, 1243.0411908),
    ("BTC", "long", 62739.0, 0.00077, 24.137992, 2.0, 50, 31708.03843631),
    ("DOGE", "long", 0.11586, 437.0, 25.29769, 2.0, 20, 0.05945697),
    ("ETH", "short", 2642.8, 0.019, 25.091876, 2.0, 50, 3924.18322043),
    ("SOL", "short", 155.89, 0.32, 24.924941, 2.0, 20, 228.07847866),
    ("DOGE", "short", 0.14333, 351.0, 25.136807, 2.0, 20, 0.20970228),
    ("BTC", "short", 68595.0, 0.00069, 23.64871, 2.0, 50, 101849.99354283),
    ("BTC", "short", 65536.0, 0.00099, 21.604172, 3.0, 50, 86493.46174617),
    ("SOL", "long", 173.06, 0.6, 20.735658, 5.0, 20, 142.05186667),
    ("ETH", "long", 2545.5, 0.0329, 20.909894, 4.0, 50, 1929.23322895),
    ("BTC", "short", 67400.0, 0.00031, 20.887308, 1.0, 50, 133443.97317151),
    ("ETH", "short", 2552.0, 0.0327, 20.833393, 4.0, 50, 3157.53150453),
    ("BTC", "long", 66930.0, 0.0015, 20.043862, 5.0, 50, 54108.51043771),
    ("BTC", "long", 67033.0, 0.00121, 20.251817, 4.0, 50, 50804.00091827),
    ("ETH", "long", 2521.9, 0.0237, 19.902091, 3.0, 50, 1699.14071943),
    ("BTC", "short", 68139.0, 0.00145, 19.72573, 5.0, 50, 80933.61590987),
    ("SOL", "short", 178.29, 0.11, 19.605036, 1.0, 20, 347.82205322),
    ("SOL", "long", 176.23, 0.33, 19.364946, 3.0, 20, 120.56240404),
    ("SOL", "short", 173.08, 0.33, 19.01881, 3.0, 20, 225.08561715),
    ("BTC", "short", 68240.0, 0.00105, 17.887922, 4.0, 50, 84431.79820839),
    ("ETH", "short", 2518.4, 0.007, 17.62263, 1.0, 50, 4986.05799151),
    ("ETH", "long", 2533.2, 0.0347, 17.555195, 5.0, 50, 2047.7642302),
    ("DOGE", "long", 0.13284, 360.0, 15.943218, 3.0, 20, 0.09082388),
    ("SOL", "short", 163.11, 0.48, 15.650731, 5.0, 20, 190.94213618),
    ("BTC", "long", 67141.0, 0.00067, 14.979079, 3.0, 50, 45236.52992613),
]

for _i, (_coin, _side, _ep, _q, _m, _lev, _maxlev, _lp) in enumerate(HYPERLIQUID):
    for _mode in ("isolated", "cross"):
        extra = {"margin": _m} if _mode == "isolated" else {"margin_mode": "cross", "wallet_balance": _m}
        CASES.append(
            Case(
                f"hyperliquid-api-{_mode}-{_i:02d}-{_coin.lower()}-{_side}-{_lev:g}x",
                HL_SOURCE
                + (
                    ""
                    if _mode == "isolated"
                    else "; cross with account value = that margin gives the same price (freqtrade test)"
                ),
                "liquidation_price",
                dict(
                    exchange="hyperliquid",
                    symbol=_coin,
                    side=_side,
                    entry_price=_ep,
                    quantity=_q,
                    maintenance_margin_rate=1 / (2 * _maxlev),
                    **extra,
                ),
                {"liquidation_price": _lp},
                rel_tol=1e-4,
            )
        )

# Bracket lookups quoted in the Binance FAQ (2020 BTCUSDT table; a custom tier table today).
BINANCE_2020_BTCUSDT_TIERS = [
    {"notional_floor": 0, "notional_cap": 50_000, "max_leverage": 125, "maintenance_margin_rate": 0.004},
    {"notional_floor": 50_000, "notional_cap": 250_000, "max_leverage": 100, "maintenance_margin_rate": 0.005},
    {"notional_floor": 250_000, "notional_cap": 1_000_000, "max_leverage": 50, "maintenance_margin_rate": 0.01},
    {"notional_floor": 1_000_000, "notional_cap": 5_000_000, "max_leverage": 20, "maintenance_margin_rate": 0.025},
]
BRACKET_CASES = [
    # (notional, expected MMR, expected maintenance amount or None) — FAQ: "264,000 USDT -> 1 %";
    # "500,000 USDT ... maintenance amount 1,300 USDT" (= 250,000 x (1 % - 0.5 %) + 50).
    (264_000, 0.01, None),
    (500_000, 0.01, 1300.0),
]
