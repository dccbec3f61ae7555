"""Calculator routes: PnL, target price, max open, average entry, break-even and funding."""

from __future__ import annotations

from flask import Blueprint

import core

from ..errors import ApiError
from ..jsonio import respond
from ..schemas.calculators import (
    AverageEntrySchema,
    BreakEvenSchema,
    FundingSchema,
    MaxOpenSchema,
    PnlSchema,
    TargetPriceSchema,
)
from ._common import call, load

bp = Blueprint("calculators", __name__, url_prefix="/v1")

pnl_schema = PnlSchema()
target_schema = TargetPriceSchema()
max_open_schema = MaxOpenSchema()
average_schema = AverageEntrySchema()
break_even_schema = BreakEvenSchema()
funding_schema = FundingSchema()


@bp.post("/pnl")
def pnl():
    return respond(call(core.pnl, **load(pnl_schema)))


@bp.post("/target-price")
def target_price():
    return respond(call(core.target_price, nullable=("target_price",), **load(target_schema)))


@bp.post("/max-open")
def max_open():
    return respond(call(core.max_open, **load(max_open_schema)))


@bp.post("/average-entry")
def average_entry():
    return respond(call(core.average_entry, **load(average_schema)))


@bp.post("/break-even")
def break_even():
    return respond(call(core.break_even_price, nullable=("break_even_price",), **load(break_even_schema)))


@bp.post("/funding")
def funding():
    data = load(funding_schema)
    if len(data["mark_prices"]) != len(data["funding_rates"]):
        raise ApiError(
            422,
            "mark_prices and funding_rates must have the same length",
            {"funding_rates": [f"has {len(data['funding_rates'])} items, mark_prices has {len(data['mark_prices'])}"]},
        )
    return respond(call(core.funding_payments, **data))
