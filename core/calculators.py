"""Exchange-calculator functions: PnL/ROE, target price, max open, average entry, break-even and funding.

All take scalars or arrays (broadcast together), return dicts of the same shape, and raise one
``ValueError`` naming the argument on bad input. Rates are decimals (0.0005 = 0.05 %); ``roe`` and
``target_roe`` are decimals (0.2 = 20 %); fields ending in ``_pct`` are percent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._inputs import (
    as_float,
    broadcast,
    check,
    choice,
    finite,
    non_negative,
    number,
    positive,
    rate,
    require,
    side_array,
)
from .contracts import CONTRACT_TYPES, position_value, resolve_contract, unrealized_pnl
from .errors import InputError
from .tiers import partial_message


def _contract(
    contract_type: str | None, contract_size: Any, exchange: str | None, symbol: str | None
) -> tuple[str, Any]:
    """Contract type and size; inverse needs ``contract_size`` or a known ``symbol``."""
    contract = resolve_contract(exchange or "binance", symbol, contract_type, contract_size, margin=False)
    if contract.contract_type == "inverse":
        return "inverse", positive("contract_size", as_float("contract_size", contract.contract_size))
    return "linear", np.asarray(1.0)


def _contract_without_symbol(contract_type: str | None, contract_size: Any) -> tuple[str, Any]:
    """Contract type and size where no symbol is given: linear unless ``contract_type`` says inverse, which
    needs ``contract_size``."""
    if contract_type == "inverse":
        return _contract("inverse", contract_size, None, None)
    if contract_type is not None:
        choice("contract_type", contract_type, CONTRACT_TYPES)
    return "linear", 1.0


def _out(shape: tuple[int, ...], **fields: np.ndarray) -> dict[str, Any]:
    n = int(np.prod(shape)) if shape else 1
    res = {}
    for k, v in fields.items():
        v = np.broadcast_to(np.asarray(v, dtype=float), (n,)) if np.ndim(v) <= 1 else v
        res[k] = float(v.reshape(-1)[0]) if shape == () else np.ascontiguousarray(v).reshape(shape)
    return res


@np.errstate(all="ignore")  # overflow/NaN are reported by the callers, not warned
def pnl(
    *,
    side: Any,
    entry_price: Any,
    exit_price: Any,
    quantity: Any,
    leverage: Any,
    contract_type: str | None = None,
    contract_size: Any = None,
    open_fee_rate: Any = 0.0,
    close_fee_rate: Any = 0.0,
    funding_paid: Any = 0.0,
    exchange: str | None = None,
    symbol: str | None = None,
) -> dict[str, Any]:
    """Profit and loss of a closed trade (Binance calculator "PNL" tab, Bybit "Profit/Loss").

    Source: https://www.binance.com/en/support/faq/360036498511 — USDⓈ-M ``IM = Q·EP/leverage``,
    ``PnL = side·Q·(exit − EP)``; COIN-M ``IM = N·CS/EP/leverage``, ``PnL = side·N·CS·(1/EP − 1/exit)``;
    ``ROE = PnL / IM`` (the page's ROE shortcut for USDⓈ-M is wrong; PnL/IM is what the calculator shows).

    Parameters
    ----------
    side, entry_price, exit_price, quantity, leverage : the trade; prices in quote per base unit,
        quantity in base units (linear) or contracts (inverse).
    contract_type, contract_size : "linear"/"inverse"; inverse needs USD per contract (or ``symbol``).
    open_fee_rate, close_fee_rate : decimal fee rates on the open and close notional.
    funding_paid : funding paid over the holding period in the margin currency (positive = paid).

    Returns
    -------
    dict
        ``initial_margin``, ``pnl``, ``roe`` (decimal, PnL / IM), ``pnl_pct`` (percent of the entry value),
        ``fees`` (open value × open fee + close value × close fee), ``net_pnl`` (pnl − fees − funding_paid),
        ``net_roe``; margin currency (quote for linear, coin for inverse).
    """
    ct, cs = _contract(contract_type, contract_size, exchange, symbol)
    shape, a = broadcast(
        {
            "side": side_array(side),
            "entry_price": number("entry_price", entry_price, positive, required=True),
            "exit_price": number("exit_price", exit_price, positive, required=True),
            "quantity": number("quantity", quantity, positive, required=True),
            "leverage": _leverage(leverage),
            "open_fee_rate": number("open_fee_rate", open_fee_rate, rate, default=0.0),
            "close_fee_rate": number("close_fee_rate", close_fee_rate, rate, default=0.0),
            "funding_paid": number("funding_paid", funding_paid, finite, default=0.0),
            "contract_size": cs,
        }
    )
    s, ep, xp, q, cs = a["side"], a["entry_price"], a["exit_price"], a["quantity"], a["contract_size"]
    open_value = position_value(q, ep, ct, cs)
    close_value = position_value(q, xp, ct, cs)
    im = open_value / a["leverage"]
    p = unrealized_pnl(side=s, entry_price=ep, mark_price=xp, quantity=q, contract_type=ct, contract_size=cs)
    fees = open_value * a["open_fee_rate"] + close_value * a["close_fee_rate"]
    net = p - fees - a["funding_paid"]
    return _out(
        shape,
        initial_margin=im,
        pnl=p,
        roe=p / im,
        pnl_pct=p / open_value * 100.0,
        fees=fees,
        net_pnl=net,
        net_roe=net / im,
    )


def _price_or_nan(price: np.ndarray) -> np.ndarray:
    """A price where it is positive and finite, NaN ("no such price") elsewhere."""
    return np.where(np.isfinite(price) & (price > 0), price, np.nan)


def _leverage(leverage: Any) -> np.ndarray:
    lev = as_float("leverage", require("leverage", leverage))
    with np.errstate(invalid="ignore"):
        check("leverage", lev, np.isfinite(lev) & (lev >= 1), "must be a finite number >= 1")
    return lev


@np.errstate(all="ignore")  # overflow/NaN are reported by the callers, not warned
def target_price(
    *,
    side: Any,
    entry_price: Any,
    leverage: Any,
    target_roe: Any,
    contract_type: str | None = None,
) -> dict[str, Any]:
    """Exit price that yields ``target_roe`` (decimal, ROE = PnL / initial margin) at ``leverage``.

    Source: https://www.binance.com/en/support/faq/360036498511 — USDⓈ-M long ``EP·(1 + ROE/leverage)``,
    short ``EP·(1 − ROE/leverage)``; COIN-M ``side·EP/(side − ROE/leverage)``. Bybit's inverse example
    (long 5x @ 7,000, ROI 20 % → 7,291.67) follows the same form.

    Returns ``{"target_price"}`` in quote per base unit; NaN where no positive price gives that ROE
    (e.g. a short asking for ROE ≥ leverage, or an inverse long asking for ROE ≥ leverage).
    """
    ct = "linear" if contract_type is None else choice("contract_type", contract_type, CONTRACT_TYPES)
    shape, a = broadcast(
        {
            "side": side_array(side),
            "entry_price": number("entry_price", entry_price, positive, required=True),
            "leverage": _leverage(leverage),
            "target_roe": number("target_roe", target_roe, finite, required=True),
        }
    )
    s, ep, r = a["side"], a["entry_price"], a["target_roe"] / a["leverage"]
    tp = ep * (1.0 + s * r) if ct == "linear" else s * ep / (s - r)
    return _out(shape, target_price=_price_or_nan(tp))


@np.errstate(all="ignore")  # overflow/NaN are reported by the callers, not warned
def max_open(
    *,
    side: Any,
    entry_price: Any,
    leverage: Any,
    available_balance: Any,
    exchange: str = "binance",
    symbol: str | None = None,
    taker_fee_rate: Any = None,
    mark_price: Any = None,
    last_price: Any = None,
    contract_type: str | None = None,
    contract_size: Any = None,
    tiers: Any = None,
) -> dict[str, Any]:
    """Largest position that can be opened (Binance calculator "Max Open").

    Source: Binance "How to Calculate Cost Required to Open a Position",
    https://www.binance.com/en/support/faq/87fa7ee33b574f7084d42bd2ce2e463b —
    ``cost = initial margin + open loss`` must not exceed the available balance; IM uses an "assuming
    price" (long: the order price; short: ``max(order price, mark, last·(1 + 0.15 %))``); open loss
    ``= Q·|min(0, side·(mark − order price))|`` (COIN-M ``N·CS·|min(0, side·(1/order − 1/mark))|``). We add the
    taker fee to open, ``Q·EP·fee``, which the exchange also reserves. Binance does not publish the
    Max-Open formula itself; the bracket table caps the notional at the chosen leverage (the largest
    ``notional_cap`` among tiers whose max leverage ≥ leverage). With a partial table (``complete`` false)
    whose last known cap would bind, the exchange's cap is unknown: ``ValueError`` naming ``tiers``.

    Returns
    -------
    dict
        ``max_quantity`` (base units or contracts), ``max_notional`` (margin currency, at entry),
        ``cost_per_unit``, ``tier_notional_cap``, ``limited_by`` ("balance" or "tier"; scalar str or array).
    """
    rules, symbol, ct, cs, table, _ = resolve_contract(exchange, symbol, contract_type, contract_size, None, tiers)
    if table is None:
        raise InputError("tiers", "needed for max_open (the symbol has no packaged table)")
    fee = rules.default_taker_fee if taker_fee_rate is None else taker_fee_rate
    shape, a = broadcast(
        {
            "side": side_array(side),
            "entry_price": number("entry_price", entry_price, positive, required=True),
            "leverage": _leverage(leverage),
            "available_balance": number("available_balance", available_balance, non_negative, required=True),
            "taker_fee_rate": number("taker_fee_rate", fee, rate),
            "mark_price": as_float("mark_price", mark_price),
            "last_price": as_float("last_price", last_price),
            "contract_size": as_float("contract_size", 1.0 if cs is None else cs),
        }
    )
    s, ep, lev, f = a["side"], a["entry_price"], a["leverage"], a["taker_fee_rate"]
    mk = np.where(np.isnan(a["mark_price"]), ep, a["mark_price"])
    positive("mark_price", mk)
    last = a["last_price"]
    with np.errstate(invalid="ignore"):
        check("last_price", last, np.isnan(last) | (np.isfinite(last) & (last > 0)), "must be a finite number > 0")
    assume = np.where(s > 0, ep, np.fmax(np.maximum(ep, mk), last * 1.0015))
    too_high = lev > table.max_leverage[0]
    if np.any(too_high):
        raise InputError("leverage", f"above the symbol's maximum leverage {table.max_leverage[0]:g}")
    cap_idx = np.searchsorted(-table.max_leverage, -lev, side="right") - 1
    cap = table.caps[cap_idx]
    cs_ = a["contract_size"]
    if ct == "linear":
        cost = assume / lev + np.abs(np.minimum(0.0, s * (mk - ep))) + ep * f
        q_tier = cap if table.basis == "quantity" else cap / ep
    else:
        cost = cs_ / assume / lev + cs_ * np.abs(np.minimum(0.0, s * (1.0 / ep - 1.0 / mk))) + cs_ / ep * f
        q_tier = cap / cs_ if table.basis == "quantity" else cap * ep / cs_
    q_bal = a["available_balance"] / cost
    beyond_known = (cap_idx == len(table) - 1) & (q_tier < q_bal)
    if not table.complete and np.any(beyond_known):  # the exchange's own cap lies beyond the known rows
        raise InputError(
            "tiers", f"the largest position the balance opens is {partial_message(table)}", kind="too_large"
        )
    q = np.minimum(q_bal, q_tier)
    limited = np.where(q_tier < q_bal, "tier", "balance")
    res = _out(
        shape,
        max_quantity=q,
        max_notional=position_value(q, ep, ct, cs_),
        cost_per_unit=cost,
        tier_notional_cap=np.broadcast_to(cap, q.shape),
    )
    res["limited_by"] = str(limited.reshape(-1)[0]) if shape == () else np.broadcast_to(limited, q.shape).reshape(shape)
    return res


@np.errstate(all="ignore")  # overflow/NaN are reported by the callers, not warned
def average_entry(
    *,
    fills: Any = None,
    prices: Any = None,
    quantities: Any = None,
    contract_type: str | None = None,
) -> dict[str, Any]:
    """Average entry price of several fills (Binance "Open Price" tab, Bybit "Entry Price" tab).

    Linear: quantity-weighted mean ``Σq·p / Σq`` (Bybit example 1 @ 7,000, 0.2 @ 7,500, 0.15 @ 6,900 →
    7,062.96). Inverse: harmonic mean ``Σq / Σ(q/p)`` with q in contracts, because inverse PnL is linear in
    ``1/price`` (no exchange page states it; ``docs/formulas.md`` §10).

    Parameters
    ----------
    fills : list of ``{price, quantity}``, or
    prices, quantities : arrays whose last axis holds the fills (broadcast together), for many positions.

    Returns ``{"average_entry_price", "total_quantity"}`` (reduced over the last axis).
    """
    ct = "linear" if contract_type is None else choice("contract_type", contract_type, CONTRACT_TYPES)
    if fills is not None:
        if prices is not None or quantities is not None:
            raise InputError("fills", "give either fills or prices and quantities")
        if not isinstance(fills, list | tuple) or not fills:
            raise InputError("fills", "must be a non-empty list of {price, quantity}")
        for i, fill in enumerate(fills):
            if not isinstance(fill, dict) or set(fill) != {"price", "quantity"}:
                raise InputError(f"fills[{i}]", "must be an object with price and quantity")
        prices = [f["price"] for f in fills]
        quantities = [f["quantity"] for f in fills]
    p = number("prices", prices, positive, required=True)
    q = number("quantities", quantities, positive, required=True)
    if p.ndim == 0 and q.ndim == 0:
        p, q = p.reshape(1), q.reshape(1)
    shape, _ = broadcast({"prices": p, "quantities": q})
    p, q = np.broadcast_to(p, shape), np.broadcast_to(q, shape)
    total = q.sum(axis=-1)
    avg = (q * p).sum(axis=-1) / total if ct == "linear" else total / (q / p).sum(axis=-1)
    if np.ndim(avg) == 0:
        return {"average_entry_price": float(avg), "total_quantity": float(total)}
    return {"average_entry_price": avg, "total_quantity": total}


@np.errstate(all="ignore")  # overflow/NaN are reported by the callers, not warned
def break_even_price(
    *,
    side: Any,
    entry_price: Any,
    open_fee_rate: Any = 0.0,
    close_fee_rate: Any = 0.0,
    funding_paid: Any = 0.0,
    quantity: Any = None,
    contract_type: str | None = None,
    contract_size: Any = None,
) -> dict[str, Any]:
    """Exit price at which the trade nets zero after fees (and funding, if given).

    Convention (exact, stated because calculators differ): the open fee is ``f_open`` × entry value, the
    close fee ``f_close`` × exit value; funding paid ``F`` (margin currency, positive = paid) must be
    recovered too. Linear: long ``(EP·Q·(1+f_open) + F)/(Q·(1−f_close))``, short
    ``(EP·Q·(1−f_open) − F)/(Q·(1+f_close))`` — with ``F = 0``: ``EP·(1+f_open)/(1−f_close)`` and
    ``EP·(1−f_open)/(1+f_close)``. Inverse (coin, ``V = N·CS``): long ``V·(1+f_close)/(V/EP·(1−f_open) − F)``,
    short ``V·(1−f_close)/(V/EP·(1+f_open) + F)``. Binance's own position break-even
    ("How to Visualize the Breakeven Price", 2023-02-22) excludes funding and fees; some third-party
    calculators use the approximation ``EP·(1 ± (f_open + f_close))``.

    Returns ``{"break_even_price"}`` (quote per base unit; NaN where funding makes break-even unreachable).
    """
    ct, cs = _contract_without_symbol(contract_type, contract_size)
    fp = number("funding_paid", funding_paid, finite, default=0.0)
    if quantity is None and np.any(fp != 0):
        raise InputError("quantity", "required when funding_paid is given")
    shape, a = broadcast(
        {
            "side": side_array(side),
            "entry_price": number("entry_price", entry_price, positive, required=True),
            "open_fee_rate": number("open_fee_rate", open_fee_rate, rate, default=0.0),
            "close_fee_rate": number("close_fee_rate", close_fee_rate, rate, default=0.0),
            "funding_paid": fp,
            "quantity": number("quantity", quantity, positive, default=1.0),
            "contract_size": np.asarray(cs, dtype=float),
        }
    )
    s, ep, fo, fc, F, q = (
        a[k] for k in ("side", "entry_price", "open_fee_rate", "close_fee_rate", "funding_paid", "quantity")
    )
    if ct == "linear":
        be = np.where(s > 0, (ep * q * (1 + fo) + F) / (q * (1 - fc)), (ep * q * (1 - fo) - F) / (q * (1 + fc)))
    else:
        v = q * a["contract_size"]
        be = np.where(s > 0, v * (1 + fc) / (v / ep * (1 - fo) - F), v * (1 - fc) / (v / ep * (1 + fo) + F))
    return _out(shape, break_even_price=_price_or_nan(be))


@np.errstate(all="ignore")  # overflow/NaN are reported by the callers, not warned
def funding_payments(
    *,
    side: Any,
    quantity: Any,
    mark_prices: Any,
    funding_rates: Any,
    contract_type: str | None = None,
    contract_size: Any = None,
) -> dict[str, Any]:
    """Funding paid or received at each funding timestamp, and the total.

    Source: Binance "Introduction to Binance Futures Funding Rates",
    https://www.binance.com/en/support/faq/360033525031 (Bybit and OKX alike): payment per interval = position value
    at mark price × funding rate; rate > 0 means longs pay shorts. Linear value ``Q·mark`` (quote),
    inverse ``N·CS/mark`` (coin).

    Parameters
    ----------
    side, quantity : the position (arrays broadcast against the series' leading axes).
    mark_prices, funding_rates : series along the last axis (rates are decimals per interval).

    Returns
    -------
    dict
        ``payments`` (same shape as the broadcast series; positive = the position pays, negative = it
        receives) and ``total`` (summed over the last axis).
    """
    ct, cs = _contract_without_symbol(contract_type, contract_size)
    s = side_array(side)
    q = number("quantity", quantity, positive, required=True)
    mk = number("mark_prices", mark_prices, positive, required=True)
    r = number("funding_rates", funding_rates, finite, required=True)
    if mk.ndim == 0 and r.ndim == 0:
        mk = mk.reshape(1)
    shape, _ = broadcast(
        {
            "side": np.asarray(s, dtype=float),
            "quantity": q,
            "mark_prices": mk,
            "funding_rates": r,
            "contract_size": np.asarray(cs, dtype=float),
        }
    )
    payments = s * position_value(q, mk, ct, cs) * r
    payments = np.broadcast_to(payments, shape)
    total = payments.sum(axis=-1)
    return {"payments": np.ascontiguousarray(payments), "total": float(total) if np.ndim(total) == 0 else total}


__all__ = ["pnl", "target_price", "max_open", "average_entry", "break_even_price", "funding_payments"]
