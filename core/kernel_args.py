"""The liquidation kernel's arguments, bound by name.

The kernel (:mod:`core._kernels`) takes 32 positional arguments: the row count, the per-position inputs, the
tier table and one output buffer per result. Callers never write them out: they build a dict of inputs, one
of the table and one of outputs, and :func:`kernel_arguments` orders them by :data:`INPUT_FIELDS`,
:data:`TABLE_FIELDS` and :data:`OUTPUT_FIELDS`. At import the tuples are checked against the kernel's own
parameter names, so reordering either the kernel or a tuple fails at once instead of swapping results.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from . import _kernels
from .tiers import TierTable

#: per-position inputs in kernel order, named like the request fields (float64 arrays of length 1 or n;
#: NaN = not given). ``other_positions`` is the other positions' Σ unrealised PnL − Σ maintenance margin.
INPUT_FIELDS = (
    "side",
    "entry_price",
    "quantity",
    "leverage",
    "margin",
    "mark_price",
    "wallet_balance",
    "other_positions",
    "maintenance_margin_rate",
    "maintenance_amount",
    "taker_fee_rate",
    "contract_size",
)
#: the tier table's arguments in kernel order (:func:`table_arguments`)
TABLE_FIELDS = ("floors", "caps", "max_leverage", "maintenance_margin_rate", "maintenance_amount", "complete")
#: the result buffers in kernel order (:func:`core._kernels.empty_outputs`)
OUTPUT_FIELDS = _kernels.OUTPUT_FIELDS

# The kernel's own (short) parameter name of each field: the import check maps the tuples above through
# these and compares the result with the kernel's signature, so the pairing is by name, not position.
_INPUT_PARAMETERS = {
    "side": "side",
    "entry_price": "entry",
    "quantity": "qty",
    "leverage": "lev",
    "margin": "margin",
    "mark_price": "mark",
    "wallet_balance": "wallet",
    "other_positions": "other",
    "maintenance_margin_rate": "mmr_o",
    "maintenance_amount": "amt_o",
    "taker_fee_rate": "fee",
    "contract_size": "csize",
}
_TABLE_PARAMETERS = {
    "floors": "floors",
    "caps": "caps",
    "max_leverage": "t_maxlev",
    "maintenance_margin_rate": "t_mmr",
    "maintenance_amount": "t_amt",
    "complete": "complete",
}
_OUTPUT_PARAMETERS = {
    "liquidation_price": "lp_out",
    "bankruptcy_price": "bp_out",
    "notional": "notional_out",
    "initial_margin": "im_out",
    "maintenance_margin": "mm_out",
    "maintenance_margin_rate": "mmr_out",
    "maintenance_amount": "amt_out",
    "tier": "tier_out",
    "max_leverage": "maxlev_out",
    "distance_pct": "dist_out",
    "liquidation_tier": "liq_tier_out",
    "warning_flags": "flags_out",
    "error_code": "err_out",
}


def table_arguments(table: TierTable) -> dict[str, Any]:
    """The tier table as the kernel reads it: bounds for its half-open lookup
    (:attr:`~core.tiers.TierTable.kernel_bounds`), per-tier max leverage, MMR and amount, completeness."""
    floors, caps = table.kernel_bounds
    return {
        "floors": floors,
        "caps": caps,
        "max_leverage": table.max_leverage,
        "maintenance_margin_rate": table.mmr,
        "maintenance_amount": table.amount,
        "complete": table.complete,
    }


def kernel_arguments(
    n: int, inputs: dict[str, np.ndarray], table: dict[str, Any], out: dict[str, np.ndarray]
) -> tuple[Any, ...]:
    """``(n, *inputs, *table, *outputs)`` in kernel order, each looked up by its name."""
    return (
        n,
        *(inputs[k] for k in INPUT_FIELDS),
        *(table[k] for k in TABLE_FIELDS),
        *(out[k] for k in OUTPUT_FIELDS),
    )


def _check_signature() -> None:
    """The tuples above name the kernel's parameters in its order (a dispatcher is built, nothing compiled)."""
    kernel = _kernels.liquidation_kernel(False, False, False, False, False, False, False)
    params = tuple(inspect.signature(kernel.py_func).parameters)
    expected = (
        "n",
        *(_INPUT_PARAMETERS[k] for k in INPUT_FIELDS),
        *(_TABLE_PARAMETERS[k] for k in TABLE_FIELDS),
        *(_OUTPUT_PARAMETERS[k] for k in OUTPUT_FIELDS),
    )
    if params != expected:
        raise ImportError(f"core.kernel_args: the kernel takes {params}, the field tuples give {expected}")


_check_signature()
