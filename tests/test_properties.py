"""Property tests (hypothesis) of the invariants every ruleset must satisfy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import core
from core.rulesets import get_ruleset

LINEAR = [
    ("binance", "BTCUSDT"),
    ("binance", "ETHUSDT"),
    ("binance", "SOLUSDT"),
    ("bybit", "BTCUSDT"),
    ("okx", "BTC-USDT-SWAP"),
    ("gate", "BTC_USDT"),
    ("hyperliquid", "BTC"),
    ("hyperliquid", "ETH"),
]
INVERSE = [("binance", "BTCUSD_PERP"), ("bybit", "BTCUSD")]

prices = st.floats(min_value=50.0, max_value=200_000.0)
notionals = st.floats(min_value=20.0, max_value=2e7)
sides = st.sampled_from(["long", "short"])


def _contract_size(exchange: str, symbol: str) -> float:
    return core.tiers_for(exchange, symbol)["contract_size"] or 1.0


def _value(inverse: bool, q: float, cs: float, price: float) -> float:
    return q * cs / price if inverse else q * price


def _upnl(inverse: bool, s: int, q: float, cs: float, ep: float, price: float) -> float:
    return s * q * cs * (1 / ep - 1 / price) if inverse else s * q * (price - ep)


def _maintenance(
    exchange: str, symbol: str, inverse: bool, q: float, cs: float, ep: float, price: float, fee: float, bp: float
) -> float:
    """Maintenance margin at ``price`` written independently from the rulesets' descriptions."""
    rules = get_ruleset(exchange)
    table = core.tiers_for(exchange, symbol)
    basis_value = q * cs if table["basis"] == "quantity" else None
    if rules.mm_basis == "entry":  # Bybit: on the entry value, plus the close fee at bankruptcy
        t = core.tiers_for(exchange, symbol, notional=_value(inverse, q, cs, ep))
        mm = _value(inverse, q, cs, ep) * t["maintenance_margin_rate"] - t["maintenance_amount"]
        return mm + (fee * _value(inverse, q, cs, bp) if rules.close_fee_in_mm and fee > 0 else 0.0)
    lookup = basis_value if basis_value is not None else _value(inverse, q, cs, price if rules.retier else ep)
    lookup = min(lookup, table["tiers"][-1]["notional_cap"] * (1 - 1e-12))  # past the last cap: the last tier
    t = core.tiers_for(exchange, symbol, notional=lookup)
    a = t["maintenance_margin_rate"] + (fee if rules.fee_in_mm else 0.0)
    return _value(inverse, q, cs, price) * a - t["maintenance_amount"]


def _position(data, exchange: str, symbol: str, inverse: bool):
    ep = data.draw(prices, label="entry_price")
    notional = data.draw(notionals, label="notional")
    cs = _contract_size(exchange, symbol)
    q = notional / cs if inverse else notional / ep
    if inverse:
        q = max(1.0, round(q))
    value = _value(inverse, q, cs, ep)
    table = core.tiers_for(exchange, symbol)
    basis = q * cs if table["basis"] == "quantity" else value
    assume(basis < table["tiers"][-1]["notional_cap"])
    maxlev = core.tiers_for(exchange, symbol, notional=basis)["max_leverage"]
    lev = data.draw(st.floats(min_value=1.0, max_value=float(maxlev)), label="leverage")
    return ep, q, cs, lev


@settings(max_examples=150, deadline=None)
@given(data=st.data(), market=st.sampled_from(LINEAR + INVERSE), side=sides, cross=st.booleans())
def test_margin_balance_equals_maintenance_at_liquidation(data, market, side, cross) -> None:
    exchange, symbol = market
    inverse = market in INVERSE
    ep, q, cs, lev = _position(data, exchange, symbol, inverse)
    s = 1 if side == "long" else -1
    margin = _value(inverse, q, cs, ep) / lev
    kwargs = dict(exchange=exchange, symbol=symbol, side=side, entry_price=ep, quantity=q, leverage=lev)
    if cross:
        kwargs.update(margin_mode="cross", wallet_balance=margin * data.draw(st.floats(0.5, 3.0), label="wallet_x"))
        margin = kwargs["wallet_balance"]
    res = core.liquidation_price(**kwargs)
    lp = res["liquidation_price"]
    if math.isnan(lp):
        assert res["warnings"] and res["warnings"][0]["code"] in ("no_liquidation",)
        return
    fee = get_ruleset(exchange).default_taker_fee
    balance = margin + _upnl(inverse, s, q, cs, ep, lp)
    mm = _maintenance(exchange, symbol, inverse, q, cs, ep, lp, fee, res["bankruptcy_price"])
    scale = _value(inverse, q, cs, ep)
    assert balance == pytest.approx(mm, abs=1e-9 * scale + 1e-12, rel=1e-9)
    # bankruptcy: the margin balance is zero (after the close fee where the ruleset charges it there)
    bp = res["bankruptcy_price"]
    if not math.isnan(bp):
        rules = get_ruleset(exchange)
        charged = fee if (rules.fee_in_mm or rules.close_fee_in_mm) else 0.0
        assert margin + _upnl(inverse, s, q, cs, ep, bp) == pytest.approx(
            charged * _value(inverse, q, cs, bp), abs=1e-9 * scale + 1e-12
        )


@settings(max_examples=150, deadline=None)
@given(data=st.data(), market=st.sampled_from(LINEAR + INVERSE), side=sides)
def test_long_below_entry_short_above(data, market, side) -> None:
    exchange, symbol = market
    inverse = market in INVERSE
    ep, q, cs, lev = _position(data, exchange, symbol, inverse)
    res = core.liquidation_price(exchange=exchange, symbol=symbol, side=side, entry_price=ep, quantity=q, leverage=lev)
    lp = res["liquidation_price"]
    if math.isnan(lp):
        return
    bp = res["bankruptcy_price"]  # NaN for a 1x long: bankrupt only at a price of zero
    if side == "long":
        assert lp < ep and (math.isnan(bp) or bp <= lp * (1 + 1e-12))
    else:
        assert lp > ep and (math.isnan(bp) or bp >= lp * (1 - 1e-12))


@settings(max_examples=100, deadline=None)
@given(data=st.data(), market=st.sampled_from(LINEAR + INVERSE), side=sides)
def test_liquidation_moves_toward_entry_as_leverage_rises(data, market, side) -> None:
    exchange, symbol = market
    inverse = market in INVERSE
    ep, q, cs, lev = _position(data, exchange, symbol, inverse)
    levs = np.linspace(1.0, lev, 12)
    res = core.liquidation_price(exchange=exchange, symbol=symbol, side=side, entry_price=ep, quantity=q, leverage=levs)
    dist = np.abs(res["liquidation_price"] - ep)
    dist = dist[~np.isnan(dist)]
    assert np.all(np.diff(dist) <= 1e-9 * ep)


@settings(max_examples=200, deadline=None)
@given(
    side=sides,
    ep=prices,
    lev=st.floats(1.0, 125.0),
    roe=st.floats(-0.99, 5.0),
    inverse=st.booleans(),
    q=st.floats(0.001, 1000.0),
)
def test_pnl_at_target_price_gives_target_roe(side, ep, lev, roe, inverse, q) -> None:
    ct = "inverse" if inverse else "linear"
    tp = core.target_price(side=side, entry_price=ep, leverage=lev, target_roe=roe, contract_type=ct)["target_price"]
    if math.isnan(tp):
        return
    res = core.pnl(
        side=side, entry_price=ep, exit_price=tp, quantity=q, leverage=lev, contract_type=ct, contract_size=10
    )
    assert res["roe"] == pytest.approx(roe, abs=1e-9)


@given(price=prices, q=st.floats(0.001, 1e6), inverse=st.booleans())
def test_average_entry_of_one_fill_is_that_fill(price, q, inverse) -> None:
    res = core.average_entry(fills=[{"price": price, "quantity": q}], contract_type="inverse" if inverse else "linear")
    assert res["average_entry_price"] == pytest.approx(price, rel=1e-12)
    assert res["total_quantity"] == pytest.approx(q)


@settings(max_examples=100, deadline=None)
@given(
    side=sides,
    ep=prices,
    fo=st.floats(0, 0.002),
    fc=st.floats(0, 0.002),
    q=st.floats(0.01, 100.0),
    funding=st.floats(-50, 50),
    inverse=st.booleans(),
)
def test_break_even_nets_zero(side, ep, fo, fc, q, funding, inverse) -> None:
    ct = "inverse" if inverse else "linear"
    kwargs = dict(contract_size=100) if inverse else {}
    f = funding / ep if inverse else funding  # keep coin funding in a sane range
    be = core.break_even_price(
        side=side,
        entry_price=ep,
        open_fee_rate=fo,
        close_fee_rate=fc,
        funding_paid=f,
        quantity=q,
        contract_type=ct,
        **kwargs,
    )["break_even_price"]
    if math.isnan(be):
        return
    res = core.pnl(
        side=side,
        entry_price=ep,
        exit_price=be,
        quantity=q,
        leverage=1,
        open_fee_rate=fo,
        close_fee_rate=fc,
        funding_paid=f,
        contract_type=ct,
        **kwargs,
    )
    assert res["net_pnl"] == pytest.approx(0.0, abs=1e-7 * (res["initial_margin"] + abs(f)))


@settings(max_examples=50, deadline=None)
@given(data=st.data(), side=sides)
def test_portfolio_single_position_equals_cross_liquidation(data, side) -> None:
    ep = data.draw(prices)
    q = data.draw(st.floats(0.001, 50.0))
    wallet = q * ep * data.draw(st.floats(0.02, 2.0))
    single = core.liquidation_price(side=side, entry_price=ep, quantity=q, margin_mode="cross", wallet_balance=wallet)
    port = core.portfolio_liquidation(
        wallet_balance=wallet, positions=[dict(symbol="BTCUSDT", side=side, entry_price=ep, quantity=q)]
    )
    a, b = single["liquidation_price"], float(port["liquidation_price"][0])
    assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9)


def test_portfolio_finds_the_liquidation_a_lower_tier_gives() -> None:
    """A cross long near 1x (hypothesis found it): at its entry tier's maintenance amount the margin never runs
    out, but at the first tier, far below, it does; the single-position solve and the portfolio agree on it."""
    ep, q = 120_000.0, 25.0
    wallet = q * ep * 0.99609375
    single = core.liquidation_price(side="long", entry_price=ep, quantity=q, margin_mode="cross", wallet_balance=wallet)
    port = core.portfolio_liquidation(
        wallet_balance=wallet, positions=[dict(symbol="BTCUSDT", side="long", entry_price=ep, quantity=q)]
    )
    assert single["liquidation_price"] == pytest.approx(470.63253012048193, rel=1e-12)
    assert float(port["liquidation_price"][0]) == pytest.approx(single["liquidation_price"], rel=1e-9)
    assert [w["code"] for w in port["warnings"]] == ["tier_changed"]
