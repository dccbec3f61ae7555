"""Bad input to the public functions raises one ValueError that names the argument."""

from __future__ import annotations

import numpy as np
import pytest

import core

BASE = dict(side="long", entry_price=100_000.0, quantity=0.5, leverage=10.0)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"entry_price": -1.0}, "entry_price"),
        ({"entry_price": 0.0}, "entry_price"),
        ({"entry_price": np.nan}, "entry_price"),
        ({"entry_price": np.inf}, "entry_price"),
        ({"entry_price": "abc"}, "entry_price"),
        ({"quantity": 0.0}, "quantity"),
        ({"quantity": -2.0}, "quantity"),
        ({"quantity": np.nan}, "quantity"),
        ({"leverage": 0.5}, "leverage"),
        ({"leverage": np.nan}, "leverage"),
        ({"leverage": 151.0}, "leverage"),  # BTCUSDT tier 1 allows 150x
        ({"leverage": None}, "leverage"),  # isolated without margin
        ({"margin": -5.0, "leverage": None}, "margin"),
        ({"side": "up"}, "side"),
        ({"side": 0}, "side"),
        ({"side": True}, "side"),
        ({"exchange": "ftx"}, "exchange"),
        ({"symbol": "NOPEUSDT"}, "symbol"),
        ({"contract_type": "quanto"}, "contract_type"),
        ({"contract_type": "inverse"}, "contract_type"),  # BTCUSDT is linear
        ({"margin_mode": "portfolio"}, "margin_mode"),
        ({"margin_mode": "cross"}, "wallet_balance"),
        ({"margin_mode": "cross", "wallet_balance": -1.0}, "wallet_balance"),
        ({"mark_price": -3.0}, "mark_price"),
        ({"maintenance_margin_rate": 1.5}, "maintenance_margin_rate"),
        ({"maintenance_amount": 10.0}, "maintenance_amount"),
        ({"taker_fee_rate": -0.1}, "taker_fee_rate"),
        ({"quantity": 1e9}, "quantity"),  # beyond the last tier's cap
        ({"entry_price": np.array([1.0, 2.0]), "quantity": np.array([1.0, 2.0, 3.0])}, "quantity"),
        ({"tiers": [{"notional_floor": 5}]}, "tiers"),
    ],
)
def test_liquidation_price_bad_input_names_the_field(override, field) -> None:
    kwargs = {**BASE, **override}
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        core.liquidation_price(**kwargs)


def test_array_error_names_first_bad_index() -> None:
    with pytest.raises(ValueError, match=r"entry_price: .*index 2"):
        core.liquidation_price(side="long", entry_price=np.array([1.0, 2.0, -3.0]), quantity=1.0, leverage=2.0)


def test_unknown_symbol_accepted_with_overrides() -> None:
    res = core.liquidation_price(**BASE, symbol="NEWUSDT", maintenance_margin_rate=0.01)
    assert res["tier"] == 0 and res["liquidation_price"] > 0
    with pytest.raises(ValueError, match="^contract_size"):
        core.liquidation_price(**BASE, symbol="NEWUSD", contract_type="inverse", maintenance_margin_rate=0.01)


def test_raise_errors_false_reports_codes_per_row() -> None:
    res = core.liquidation_price(
        side=np.array([1.0, 1.0, -1.0]),
        entry_price=np.array([100.0, -1.0, 100.0]),
        quantity=1.0,
        leverage=np.array([10.0, 10.0, 500.0]),
        raise_errors=False,
    )
    assert list(res["error_code"] != 0) == [False, True, True]
    assert np.isnan(res["liquidation_price"][1:]).all() and res["liquidation_price"][0] > 0


@pytest.mark.parametrize(
    ("fn", "kwargs", "field"),
    [
        (core.pnl, dict(side="long", entry_price=1, exit_price=-1, quantity=1, leverage=2), "exit_price"),
        (core.pnl, dict(side="long", entry_price=1, exit_price=1, quantity=1, leverage=0), "leverage"),
        (
            core.pnl,
            dict(side="long", entry_price=1, exit_price=1, quantity=1, leverage=2, contract_type="inverse"),
            "contract_size",
        ),
        (
            core.pnl,
            dict(side="long", entry_price=1, exit_price=1, quantity=1, leverage=2, open_fee_rate=2),
            "open_fee_rate",
        ),
        (core.target_price, dict(side="long", entry_price=1, leverage=2, target_roe=np.nan), "target_roe"),
        (core.max_open, dict(side="long", entry_price=1, leverage=200, available_balance=10), "leverage"),
        (core.max_open, dict(side="long", entry_price=1, leverage=2, available_balance=-10), "available_balance"),
        (core.average_entry, dict(fills=[{"price": -1, "quantity": 1}]), "prices"),
        (core.average_entry, dict(fills=[{"price": 1}]), "fills"),
        (core.average_entry, dict(fills=[]), "fills"),
        (core.break_even_price, dict(side="long", entry_price=1, funding_paid=5), "quantity"),
        (
            core.funding_payments,
            dict(side="long", quantity=1, mark_prices=[1, -2], funding_rates=[0, 0]),
            "mark_prices",
        ),
        (
            core.funding_payments,
            dict(side="long", quantity=1, mark_prices=[1, 2], funding_rates=[0, 0, 0]),
            "funding_rates",
        ),
        (core.tiers_for, dict(exchange="binance", symbol="BTCUSDT", notional=-5), "notional"),
        (core.tiers_for, dict(exchange="binance", symbol="XXX"), "symbol"),
        (core.portfolio_liquidation, dict(wallet_balance=10, positions=[]), "positions"),
        (core.portfolio_liquidation, dict(wallet_balance=np.nan, positions=[]), "wallet_balance"),
        (
            core.portfolio_liquidation,
            dict(wallet_balance=10, positions=[dict(symbol="BTCUSDT", side="long", entry_price=1, quantity=-1)]),
            r"positions\[0\].quantity",
        ),
    ],
)
def test_calculators_bad_input_names_the_field(fn, kwargs, field) -> None:
    with pytest.raises(ValueError, match=rf"^{field}"):
        fn(**kwargs)
