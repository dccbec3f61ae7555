"""The messages of the liquidation kernel's row codes: the field and message of each error code, the
code and message of each warning bit, and the readers that turn a result's ``error_code`` and
``warning_flags`` into :class:`~core.errors.InputError` rows and warnings (used by :func:`core.liquidation_price`,
:func:`core.portfolio_liquidation` and the HTTP batch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _kernels
from ._inputs import first_bad
from .errors import InputError

ERRORS = {
    _kernels.ERR_SIDE: ("side", "must be long or short (+1 / -1)"),
    _kernels.ERR_ENTRY: ("entry_price", "must be a finite number > 0"),
    _kernels.ERR_QTY: ("quantity", "must be a finite number > 0"),
    _kernels.ERR_LEV: ("leverage", "must be a finite number >= 1"),
    _kernels.ERR_LEV_MAX: ("leverage", "above the maximum leverage of the position's tier"),
    _kernels.ERR_MARGIN: ("margin", "must be a finite number > 0"),
    _kernels.ERR_LEV_MISSING: ("leverage", "required for isolated margin when margin is not given"),
    _kernels.ERR_WALLET: ("wallet_balance", "must be a finite number >= 0"),
    _kernels.ERR_MARK: ("mark_price", "must be a finite number > 0"),
    _kernels.ERR_MMR: ("maintenance_margin_rate", "must be a decimal rate in [0, 1)"),
    _kernels.ERR_AMOUNT: ("maintenance_amount", "must be a finite number"),
    _kernels.ERR_FEE: ("taker_fee_rate", "must be a decimal rate in [0, 1)"),
    _kernels.ERR_CSIZE: ("contract_size", "must be a finite number > 0"),
    _kernels.ERR_TOO_LARGE: ("quantity", "the position is larger than the last tier's cap"),
    _kernels.ERR_PARTIAL: (
        "tiers",
        "the position is beyond the known rows of a partial tier table; the exchange's further tiers are not "
        "known here, so none is invented: give the current table in `tiers`, or load it with "
        "`liqrisk tiers refresh` into LIQRISK_TIERS_DIR",
    ),
    _kernels.ERR_OTHER: ("other_positions", "must sum to finite maintenance margin and unrealised PnL"),
    _kernels.ERR_OVERFLOW: (
        "quantity",
        "quantity x price is outside the range that can be computed (overflow or underflow)",
    ),
}

WARNINGS = {
    _kernels.W_TIER_CHANGED: (
        "tier_changed",
        "the notional at the liquidation price falls in another tier than at entry; the liquidation price "
        "was solved with the tier at the liquidation price (Binance rule)",
    ),
    _kernels.W_NO_LIQUIDATION: (
        "no_liquidation",
        "the margin covers the position's loss at any price (a long down to zero), so there is no liquidation price",
    ),
    _kernels.W_BEYOND_MARK: ("beyond_mark", "the mark price is already at or beyond the liquidation price"),
    _kernels.W_IMPLIED_LEVERAGE: (
        "implied_leverage_above_max",
        "notional / margin exceeds the tier's maximum leverage; the exchange would not open this position",
    ),
    _kernels.W_RETIER_FAILED: (
        "tier_not_consistent",
        "no tier is consistent at the liquidation price; the entry tier was used",
    ),
}

#: error codes of a position the tier table cannot price (past the last tier's cap, or past the known rows of
#: a partial table): kind ``too_large``
TOO_LARGE_CODES = (_kernels.ERR_TOO_LARGE, _kernels.ERR_PARTIAL)


def raise_first_error(codes: np.ndarray, shape: tuple[int, ...], a: dict[str, np.ndarray]) -> None:
    """Raise the :class:`InputError` of the first non-zero code (its rows: every row with that code)."""
    if not codes.any():
        return
    i = int(np.argmax(codes != 0))
    field, message = ERRORS.get(int(codes[i]), ("body", "the position could not be computed"))
    where = first_bad((codes != 0).reshape(shape)) if shape else ""
    if codes[i] == _kernels.ERR_LEV_MAX:
        lev = a["leverage"][0 if a["leverage"].size == 1 else i]
        message = f"{lev:g} is above the maximum leverage of the position's tier"
    kind = "too_large" if codes[i] in TOO_LARGE_CODES else "invalid"
    rows = np.flatnonzero(codes == codes[i]) if shape else None
    raise InputError(field, f"{message}{where}", kind=kind, rows=rows)


def describe_errors(error_code: Any) -> list[InputError]:
    """The rows of each error code of a ``raise_errors=False`` result, as one (unraised) :class:`InputError`
    per code in code order, with the code's field, message and ``rows`` (flat indices)."""
    flat = np.asarray(error_code).reshape(-1)
    out = []
    for code in np.unique(flat[flat != 0]).tolist():
        field, message = ERRORS.get(code, ("body", "the position could not be computed"))
        kind = "too_large" if code in TOO_LARGE_CODES else "invalid"
        out.append(InputError(field, message, kind=kind, rows=np.flatnonzero(flat == code)))
    return out


def describe_warnings(flags: Any) -> Any:
    """Scalar flags → list of ``{code, message}``; array flags → ``{code: flat indices}``."""
    if type(flags) is int and not flags:  # the common single position without warnings
        return []
    if isinstance(flags, int | np.integer):
        return [{"code": code, "message": msg} for bit, (code, msg) in WARNINGS.items() if flags & bit]
    flat = np.asarray(flags).reshape(-1)
    if not flat.any():
        return {}
    return {code: np.flatnonzero(flat & bit) for bit, (code, _) in WARNINGS.items() if (flat & bit).any()}
