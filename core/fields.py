"""The position and market input fields, each declared once: name, JSON type, unit, range, allowed values,
default and meaning.

The API's marshmallow schemas, the batch route's columns and the ``liqrisk calc`` options are built from (or
checked against) this table, and ``tests/test_field_spec.py`` fails when ``openapi.yaml`` says otherwise.
Pure data: no Flask, no marshmallow. Whether a field is required depends on the request it is part of: the
``required`` here is the single-position request's (``Position`` in ``openapi.yaml``); other requests name
their own required fields.

Units: prices in quote currency per base unit; ``quantity`` in base units for linear contracts and contracts
for inverse ones; amounts and balances in the margin currency; rates are decimals (0.0005 = 0.05 %).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .tiers import EXCHANGES

#: the largest number in size the API takes (products of larger values overflow a float64)
MAX_NUMBER = 1e300

SIDES = ("long", "short")
CONTRACT_TYPES = ("linear", "inverse")
MARGIN_MODES = ("isolated", "cross")
POSITION_MODES = ("one_way", "hedge")

TYPES = ("number", "string", "integer", "boolean")


@dataclass(frozen=True)
class Field:
    """One input field.

    ``minimum``/``maximum`` bound the value (``exclusive_*`` when the bound itself is refused). ``choices``
    lists the allowed words of an enum; ``min_length``/``max_length`` bound a free string. ``default`` is the
    value the API fills in when the field is not given (``None``: left to the engine, e.g. the symbol's own
    contract type). ``range_in_schema``: the request schema refuses an out-of-range value itself (with
    :meth:`rule`), also where the engine would not use it; otherwise the engine checks the range with its own
    message naming the field.
    """

    name: str
    type: str
    description: str
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: tuple[str, ...] | None = None
    min_length: int | None = None
    max_length: int | None = None
    default: Any = None
    required: bool = False
    range_in_schema: bool = False

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"{self.name}: type must be one of {', '.join(TYPES)}, not {self.type!r}")

    def rule(self) -> str:
        """The allowed values in words ("must be a finite number > 0"), as the error messages say them."""
        if self.choices is not None:
            return f"must be one of {', '.join(self.choices)}"
        if self.type == "string":
            return f"must be a string of {self.min_length or 0}-{self.max_length} characters"
        low = self.minimum is not None and self.minimum > -MAX_NUMBER
        high = self.maximum is not None and self.maximum < MAX_NUMBER
        if low and high:
            left, right = "(" if self.exclusive_minimum else "[", ")" if self.exclusive_maximum else "]"
            what = "a decimal rate" if self.unit == "decimal" else "a finite number"
            return f"must be {what} in {left}{self.minimum:g}, {self.maximum:g}{right}"
        if low:
            return f"must be a finite number {'>' if self.exclusive_minimum else '>='} {self.minimum:g}"
        if high:
            return f"must be a finite number {'<' if self.exclusive_maximum else '<='} {self.maximum:g}"
        return "must be a finite number"

    def json_schema(self) -> dict[str, Any]:
        """The field as a JSON Schema (OpenAPI 3.1) property: type, bounds, enum, lengths and default."""
        out: dict[str, Any] = {"type": self.type}
        if self.choices is not None:
            out["enum"] = list(self.choices)
        if self.min_length is not None:
            out["minLength"] = self.min_length
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        if self.minimum is not None:
            out["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            out["exclusiveMaximum" if self.exclusive_maximum else "maximum"] = self.maximum
        if self.default is not None:
            out["default"] = self.default
        return out


def _price(name: str, description: str, **kw: Any) -> Field:
    return Field(name, "number", description, "quote currency per base unit", 0, MAX_NUMBER, True, **kw)


def _rate(name: str, description: str, **kw: Any) -> Field:
    return Field(name, "number", description, "decimal", 0, 1, False, True, **kw)


def _amount(name: str, description: str, unit: str = "margin currency", **kw: Any) -> Field:
    return Field(name, "number", description, unit, -MAX_NUMBER, MAX_NUMBER, **kw)


def _balance(name: str, description: str, **kw: Any) -> Field:
    return Field(name, "number", description, "margin currency", 0, MAX_NUMBER, **kw)


#: the position of ``POST /v1/liquidation-price``
_POSITION = (
    Field("exchange", "string", "exchange whose rules and tiers apply", choices=EXCHANGES, default="binance"),
    Field(
        "symbol",
        "string",
        "the exchange's own instrument name, e.g. BTCUSDT, BTCUSD_PERP, BTC-USDT-SWAP, BTC_USDT, BTC "
        "(default: the exchange's default symbol)",
        min_length=1,
        max_length=64,
    ),
    Field(
        "contract_type",
        "string",
        "linear (quote-margined) or inverse (coin-margined) (default: the symbol's)",
        choices=CONTRACT_TYPES,
    ),
    Field(
        "contract_size",
        "number",
        "USD per contract for inverse contracts (default: the symbol's)",
        "USD per contract",
        0,
        MAX_NUMBER,
        True,
        range_in_schema=True,
    ),
    Field("margin_mode", "string", "isolated or cross margin", choices=MARGIN_MODES, default="isolated"),
    Field(
        "position_mode",
        "string",
        "one-way or hedge mode (Binance hedge legs)",
        choices=POSITION_MODES,
        default="one_way",
    ),
    Field("side", "string", "position side", choices=SIDES, required=True),
    _price("entry_price", "entry price, quote currency per base unit", required=True),
    Field(
        "quantity",
        "number",
        "size: base units (linear) or contracts (inverse)",
        "base units or contracts",
        0,
        MAX_NUMBER,
        True,
        required=True,
    ),
    Field(
        "leverage",
        "number",
        "leverage, x; required for isolated margin without margin, at most the tier's maximum",
        "x",
        1,
        MAX_NUMBER,
    ),
    Field(
        "margin",
        "number",
        "isolated margin incl. added margin, margin currency (instead of leverage)",
        "margin currency",
        0,
        MAX_NUMBER,
        True,
    ),
    _balance("wallet_balance", "wallet balance, margin currency; required for cross margin"),
    _price("mark_price", "mark price, quote currency per base unit (default: the entry price)"),
    _rate("maintenance_margin_rate", "maintenance margin rate, decimal (default: the tier's)"),
    _amount("maintenance_amount", "maintenance amount (cum), margin currency (default: the tier's)"),
    _rate("taker_fee_rate", "taker fee rate, decimal (default: the exchange's)"),
)
#: another position of a cross wallet, given as a summary
_SUMMARY = (
    _balance("maintenance_margin", "maintenance margin of another position, margin currency"),
    _amount("unrealized_pnl", "unrealised PnL of another position, margin currency"),
)
#: the calculators' trade fields
_TRADE = (
    _price("exit_price", "exit price, quote currency per base unit"),
    _price("last_price", "last traded price, quote currency per base unit (default: the mark price)"),
    _price("stop_price", "stop-loss price, quote currency per base unit"),
    _rate("open_fee_rate", "fee rate on opening, decimal", default=0.0),
    _rate("close_fee_rate", "fee rate on closing, decimal", default=0.0),
    _amount("funding_paid", "funding paid (+) or received (-), margin currency", default=0.0),
    _balance("available_balance", "balance available to open with, margin currency"),
    _amount("target_roe", "target return on margin, decimal (0.2 = 20 %)", unit="decimal"),
)

#: every field by name
FIELDS: dict[str, Field] = {f.name: f for f in (*_POSITION, *_SUMMARY, *_TRADE)}

#: the fields of one position of ``POST /v1/liquidation-price`` (besides its ``tiers`` and ``other_positions``)
POSITION_FIELDS = tuple(f.name for f in _POSITION)
#: another position of a cross wallet given as a summary: its maintenance margin and unrealised PnL
SUMMARY_FIELDS = tuple(f.name for f in _SUMMARY)
#: the fields a position of a cross account given in full must give
PORTFOLIO_POSITION_REQUIRED = ("symbol", "side", "entry_price", "quantity")
#: a position of ``POST /v1/portfolio/liquidation`` (linear contracts)
PORTFOLIO_POSITION_FIELDS = (
    *PORTFOLIO_POSITION_REQUIRED,
    "mark_price",
    "maintenance_margin_rate",
    "maintenance_amount",
)
#: another position of a cross wallet given in full (priced with the request's exchange rules; may be inverse)
OTHER_POSITION_FIELDS = (*PORTFOLIO_POSITION_FIELDS, "contract_type", "contract_size")

#: the columns of a batch: the :data:`POSITION_FIELDS` (each one value per row, as ``core.liquidation_price``
#: takes them as arrays or as one word per call), in the order the batch parses them: the first error of a row
#: is the one reported
BATCH_FIELDS = (
    "side",
    "entry_price",
    "quantity",
    "leverage",
    "margin",
    "wallet_balance",
    "mark_price",
    "maintenance_margin_rate",
    "maintenance_amount",
    "taker_fee_rate",
    "contract_size",
    "exchange",
    "symbol",
    "contract_type",
    "margin_mode",
    "position_mode",
)


def field(name: str) -> Field:
    """The declared field called ``name`` (``KeyError`` naming it when there is none)."""
    try:
        return FIELDS[name]
    except KeyError:
        raise KeyError(f"{name}: no such field in core.fields") from None
