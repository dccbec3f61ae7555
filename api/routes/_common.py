"""Helpers shared by the route modules: load a schema from the JSON body, call a core function and turn
its ValueError (or an overflowing result) into a problem response."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from marshmallow import Schema

from ..errors import ApiError, from_value_error
from ..jsonio import body
from ..schemas.base import drop_none
from ..schemas.flat import loader


def load(schema: Schema, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body (or ``data``, the body as already read) loaded by ``schema`` (flat bodies of valid numbers and
    strings on a fast path that gives the same dict, see :mod:`..schemas.flat`), without its ``None`` values."""
    return drop_none(loader(schema).load(body() if data is None else data))


def call(
    fn: Callable[..., dict[str, Any]], prefix: str = "", nullable: tuple[str, ...] = (), **kwargs: Any
) -> dict[str, Any]:
    """``fn(**kwargs)``. A ValueError becomes a 422/404 naming the field. A result that is not finite where
    the contract promises a number (inputs so near the float range that products overflow or underflow)
    becomes a 422; NaN stays only in the ``nullable`` fields, where it means "none" (JSON null)."""
    try:
        result = fn(**kwargs)
    except ValueError as exc:
        raise from_value_error(exc, prefix) from None
    bad = []
    for k, v in result.items():
        if isinstance(v, float):
            if not math.isfinite(v) and (k not in nullable or math.isinf(v)):
                bad.append(k)
        elif isinstance(v, np.ndarray) and v.dtype.kind == "f":
            if np.isinf(v).any() or (k not in nullable and np.isnan(v).any()):
                bad.append(k)
    if bad:
        raise ApiError(
            422,
            "the inputs are too large or too small to compute: " + ", ".join(bad),
            {"body": [f"{k} is out of the computable range; use values nearer 1" for k in bad]},
        )
    return result
