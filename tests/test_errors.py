"""core.InputError: the field, rows and kind of bad input, read by the API from attributes (never the text)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import core
from api.errors import from_value_error
from core.errors import as_input_error

BASE = dict(side="long", entry_price=100_000.0, quantity=0.5, leverage=10.0)


def _raised(fn, **kwargs) -> core.InputError:
    with pytest.raises(core.InputError) as info:
        fn(**kwargs)
    return info.value


def test_unknown_symbol_and_exchange_are_kind_unknown() -> None:
    err = _raised(core.liquidation_price, **BASE, symbol="NOPEUSDT")
    assert (err.field, err.kind, err.rows) == ("symbol", "unknown", None)
    assert str(err) == f"symbol: {err.message}" and err.message.startswith("unknown symbol 'NOPEUSDT' for binance")
    assert isinstance(err, ValueError)
    err = _raised(core.tiers_for, exchange="ftx", symbol="BTCUSDT")
    assert (err.field, err.kind) == ("exchange", "unknown")


def test_batch_rows_are_the_rows_with_that_error() -> None:
    err = _raised(
        core.liquidation_price,
        side=["long", "short", "long", "long"],
        entry_price=100.0,
        quantity=1.0,
        leverage=np.array([2.0, 0.5, 3.0, 0.1]),
    )
    assert (err.field, err.kind) == ("leverage", "invalid")
    assert err.rows.tolist() == [1, 3]
    assert str(err) == "leverage: must be a finite number >= 1 (first at index 1)"
    # N-d input: rows are flat (C-order) indices; the text keeps the first N-d index
    err = _raised(
        core.pnl,
        side="long",
        entry_price=np.array([[1.0, -1.0], [2.0, -3.0]]),
        exit_price=2.0,
        quantity=1.0,
        leverage=2.0,
    )
    assert err.field == "entry_price" and err.rows.tolist() == [1, 3]
    assert str(err).endswith("(first at index (0, 1))")


def test_position_beyond_the_last_tier_is_too_large() -> None:
    err = _raised(core.liquidation_price, **{**BASE, "quantity": 1e6, "leverage": 1.0})
    assert (err.field, err.kind, err.rows) == ("quantity", "too_large", None)
    assert err.message == "the position is larger than the last tier's cap"
    err = _raised(core.tiers_for, exchange="binance", symbol="BTCUSDT", notional=1e15)
    assert (err.field, err.kind) == ("notional", "too_large")


def test_item_of_a_list_names_its_path_and_an_unknown_symbol_there_is_invalid() -> None:
    positions = [
        {"symbol": "BTCUSDT", "side": "long", "entry_price": 100_000.0, "quantity": 0.1},
        {"symbol": "NOPEUSDT", "side": "short", "entry_price": 1.0, "quantity": 1.0},
    ]
    err = _raised(core.portfolio_liquidation, wallet_balance=1000.0, positions=positions)
    assert (err.field, err.kind) == ("positions[1].symbol", "invalid")
    assert err.message.startswith("unknown symbol 'NOPEUSDT'")


def test_portfolio_past_the_known_rows_is_too_large_and_past_the_last_cap_keeps_the_last_tier() -> None:
    big = {"symbol": "BTCUSDT", "side": "long", "entry_price": 100_000.0, "quantity": 1e5}  # 1e10 USDT
    err = _raised(core.portfolio_liquidation, wallet_balance=1e9, exchange="bybit", positions=[big])  # partial
    assert (err.field, err.kind) == ("positions[0].tiers", "too_large")
    held = core.portfolio_liquidation(wallet_balance=1e11, positions=[big])  # Binance: complete, cap 1.8e9
    table = core.tiers_for("binance", "BTCUSDT")["tiers"]
    assert held["tier"].tolist() == [len(table)]
    assert held["maintenance_margin_rate"][0] == table[-1]["maintenance_margin_rate"]


def test_one_side_parser_names_the_rows() -> None:
    err = _raised(core.pnl, side=[1, 0, -1, 2], entry_price=1.0, exit_price=2.0, quantity=1.0, leverage=2.0)
    assert (err.field, err.rows.tolist()) == ("side", [1, 3])
    err = _raised(core.position_size, side=0.5, equity=1000.0, risk_fraction=0.01, entry_price=100.0, stop_price=90.0)
    assert (err.field, err.rows) == ("side", None)
    legs = [{"symbol": "BTCUSDT", "side": s, "entry_price": 1.0, "quantity": 1.0} for s in ("long", "buy")]
    err = _raised(core.portfolio_liquidation, wallet_balance=10.0, positions=legs, position_mode="hedge")
    assert (err.field, err.rows.tolist()) == ("positions[1].side", [1])
    # the liquidation kernel checks each row itself: without raising, a bad side is that row's error
    res = core.liquidation_price(side=[1.0, 0.0], entry_price=100.0, quantity=1.0, leverage=2.0, raise_errors=False)
    assert [(e.field, e.rows.tolist()) for e in core.describe_errors(res["error_code"])] == [("side", [1])]


def test_describe_errors_gives_each_code_its_rows() -> None:
    res = core.liquidation_price(
        side=["long", "long", "long"],
        entry_price=[100.0, -1.0, 100.0],
        quantity=[1.0, 1.0, 1e12],
        leverage=2.0,
        raise_errors=False,
    )
    errs = core.describe_errors(res["error_code"])
    assert [(e.field, e.kind, e.rows.tolist()) for e in errs] == [
        ("entry_price", "invalid", [1]),
        ("quantity", "too_large", [2]),
    ]


def test_pickles_with_its_attributes() -> None:
    err = core.InputError("tiers[3].notional_cap", "must be greater than notional_floor", kind="invalid", rows=[4, 2])
    back = pickle.loads(pickle.dumps(err))
    assert (back.field, back.message, back.kind, back.rows.tolist(), str(back)) == (
        "tiers[3].notional_cap",
        "must be greater than notional_floor",
        "invalid",
        [2, 4],
        str(err),
    )
    with pytest.raises(TypeError):
        core.InputError("x", "y", kind="bad")


@pytest.mark.parametrize(
    ("exc", "prefix", "status", "errors"),
    [
        (core.InputError("symbol", "unknown symbol 'X'", kind="unknown"), "", 404, {"symbol": ["unknown symbol 'X'"]}),
        (core.InputError("symbol", "unknown", kind="unknown"), "strategy", 404, {"strategy.symbol": ["unknown"]}),
        (core.InputError("quantity", "too big", kind="too_large"), "", 422, {"quantity": ["too big"]}),
        (core.InputError("body", "bad", kind="invalid"), "strategy", 422, {"body": ["bad"]}),
        # a plain ValueError from outside core (the backtester) is read as an invalid value of its field
        (ValueError("bars.time: must increase"), "", 422, {"bars.time": ["must increase"]}),
        (ValueError("no field here"), "strategy", 422, {"body": ["no field here"]}),
    ],
)
def test_the_one_mapping_to_problem_details(exc, prefix, status, errors) -> None:
    api_err = from_value_error(exc, prefix)
    assert (api_err.status, api_err.detail, api_err.errors) == (status, str(exc), errors)
    assert as_input_error(exc).kind in ("invalid", "unknown", "too_large")


def test_http_statuses_follow_the_kind(client) -> None:
    r = client.post("/v1/liquidation-price", json={**BASE, "symbol": "NOPEUSDT"})
    assert r.status_code == 404 and r.mimetype == "application/problem+json" and list(r.json["errors"]) == ["symbol"]
    r = client.post("/v1/liquidation-price", json={**BASE, "quantity": 1e6, "leverage": 1})
    assert r.status_code == 422
    assert r.json["errors"] == {"quantity": ["the position is larger than the last tier's cap"]}
    r = client.post(
        "/v1/liquidation-price/batch",
        json={"positions": {"side": ["long", "long"], "entry_price": [100.0, 100.0], "quantity": [1.0, 1.0],
                            "leverage": [2.0, 0.5]}},
    )  # fmt: skip
    assert r.status_code == 200
    assert r.json["errors"] == [{"field": "leverage", "message": "must be a finite number >= 1", "rows": [1]}]


@pytest.fixture
def client():
    from api import TestConfig, create_app

    return create_app(TestConfig).test_client()
