"""The liquidation kernel's arguments, bound by name.

The kernel (:mod:`core._kernels`) takes 32 positional arguments: the row count, the per-position inputs, the
tier table and one output buffer per result. Callers never write them out: they build a dict of inputs, one
of the table and one of outputs, and :func:`kernel_arguments` orders them by :data:`INPUT_FIELDS`,
:data:`TABLE_FIELDS` and :data:`OUTPUT_FIELDS`. At import the tuples are checked against the kernel's own
parameter names, so reordering either the kernel or a tuple fails at once instead of swapping results.

One position (the HTTP API's single request) skips the dicts: :class:`OnePosition` holds its argument tuples,
laid out by the same field tuples once, and :func:`table_tuple` a table's arguments, built once per table.
"""

from __future__ import annotations

import inspect
import struct
import weakref
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


_TABLE_TUPLES: dict[int, tuple[weakref.ref, tuple[Any, ...]]] = {}


def table_tuple(table: TierTable) -> tuple[Any, ...]:
    """:func:`table_arguments` in kernel order, built once per table object (tables are immutable; an entry
    goes when its table does, so a reloaded or user-supplied table never meets another's arguments)."""
    key = id(table)
    found = _TABLE_TUPLES.get(key)
    if found is not None and found[0]() is table:
        return found[1]
    args = table_arguments(table)
    value = tuple(args[k] for k in TABLE_FIELDS)
    _TABLE_TUPLES[key] = (weakref.ref(table, lambda _, key=key: _TABLE_TUPLES.pop(key, None)), value)
    return value


class OnePosition:
    """Preallocated buffers for one position's kernel call. The inputs are one float64 row written with one
    ``struct.pack_into``; the outputs lie in one block of memory in :data:`OUTPUT_FIELDS` order (each at its
    dtype's native alignment, as ``struct`` lays them out) and are read back with one ``unpack_from``. The
    kernel sees length-1 contiguous arrays of the usual dtypes (so the same compiled code as any call). Use
    under :data:`core._kernels.KERNEL_LOCK` only: the buffers are shared."""

    def __init__(self) -> None:
        self._pack = struct.Struct("@" + "d" * len(INPUT_FIELDS))
        self.inputs = np.zeros(len(INPUT_FIELDS))
        chars = [_kernels.SCALAR_OUTPUTS[k].dtype.char for k in OUTPUT_FIELDS]
        self._unpack = struct.Struct("@" + "".join(chars))
        self.outputs = np.zeros(-(-self._unpack.size // 8))  # float64: aligned for every dtype
        raw = self.outputs.view(np.uint8)
        tail = []
        for i, k in enumerate(OUTPUT_FIELDS):
            dtype = _kernels.SCALAR_OUTPUTS[k].dtype
            offset = struct.calcsize("@" + "".join(chars[: i + 1])) - dtype.itemsize
            tail.append(raw[offset : offset + dtype.itemsize].view(dtype))
        self.head = (1, *(self.inputs[i : i + 1] for i in range(len(INPUT_FIELDS))))
        self.tail = tuple(tail)

    def fill(self, row: list[float]) -> None:
        """Write one position's inputs (Python floats in :data:`INPUT_FIELDS` order)."""
        self._pack.pack_into(self.inputs, 0, *row)

    def results(self) -> dict[str, Any]:
        """The outputs of the last call as Python floats and ints, keyed in :data:`OUTPUT_FIELDS` order."""
        return dict(zip(OUTPUT_FIELDS, self._unpack.unpack_from(self.outputs), strict=True))


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
