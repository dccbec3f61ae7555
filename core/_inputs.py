"""Input coercion shared by the public functions: numbers and arrays to float64, broadcasting to the
kernels' "length 1 or n" layout, categorical fields, and turning results back into scalars."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

from . import lean_cache
from .errors import InputError

#: the only side names, exactly as the HTTP API and the CLI take them (no buy/sell aliases, no other case:
#: "buy" is an order side, and a short position is opened by selling, so one spelling avoids both readings)
SIDES = {"long": 1.0, "short": -1.0}
SIDE_RULE = 'must be "long" or "short" (not buy/sell, lower case)'


def as_float(name: str, value: Any, *, default: float | None = None) -> np.ndarray:
    """``value`` as a float64 array (no copy for float64 input); ``None`` gives ``default`` (NaN when
    ``default`` is None: "not given"). Non-numeric input raises ``ValueError`` naming ``name``."""
    if value is None:
        return np.asarray(np.nan if default is None else default, dtype=np.float64)
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        return value
    if isinstance(value, bool | np.bool_) or (isinstance(value, np.ndarray) and value.dtype == bool):
        raise InputError(name, "must be a number, not a boolean")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(name, "must be a number or an array of numbers") from None
    return arr


def require(name: str, value: Any) -> Any:
    if value is None:
        raise InputError(name, "required")
    return value


def side_array(side: Any, *, validate: bool = True) -> np.ndarray:
    """``side`` as +1.0 (long) / −1.0 (short): accepts "long"/"short" (exactly, as the HTTP API and the CLI
    do), ±1 for numeric arrays, or arrays of either. Anything else raises :class:`~core.errors.InputError`
    naming ``side`` (with its rows), so callers use the result as it is. ``validate=False`` leaves numeric
    values unchecked, for the liquidation kernel, which reports each bad row itself."""
    if side is None:
        raise InputError("side", "required (long or short)")
    if isinstance(side, str):
        if side not in SIDES:
            raise InputError("side", f"{SIDE_RULE}, not {side!r}")
        return np.asarray(SIDES[side])
    arr = np.asarray(side)
    if arr.dtype.kind in "USO":
        return _side_strings(arr)
    if arr.dtype == bool:
        raise InputError("side", "must be long or short (or +1 / -1), not a boolean")
    if arr.dtype.kind in "iuf":
        out = np.asarray(arr, dtype=np.float64)  # one kernel signature; no copy for float64
        if validate:
            check("side", out, (out == 1) | (out == -1), "must be long or short (+1 / -1)")
        return out
    raise InputError("side", "must be long or short")


def _side_strings(arr: np.ndarray) -> np.ndarray:
    """An array of side names as ±1.0. Exact "long"/"short" are read in one compiled pass over the
    characters (no per-row Python, no lower-casing copy of the column); any other value is refused."""
    if arr.dtype.kind == "S":
        arr = arr.astype(str)
    if arr.dtype.kind == "U" and arr.dtype.itemsize > 0:
        flat = np.ascontiguousarray(arr).reshape(-1)
        out = side_codes_nb(flat.view(np.uint32).reshape(flat.size, -1)).reshape(arr.shape)
    else:
        out = np.zeros(arr.shape)
        out[arr == "long"] = 1.0
        out[arr == "short"] = -1.0
    if np.any(out == 0):
        raise InputError("side", SIDE_RULE, rows=np.flatnonzero(out == 0))
    return out


@lean_cache.mark
@njit(cache=True)
def side_codes_nb(chars: np.ndarray) -> np.ndarray:
    """+1.0 for rows spelling "long", −1.0 for "short", 0 otherwise; ``chars`` is the UCS-4 code points
    of a fixed-width string array, one row per string, padded with zeros."""
    n, width = chars.shape
    out = np.zeros(n)
    if width < 4:
        return out
    for i in range(n):
        c = chars[i]
        if c[0] == 108 and c[1] == 111 and c[2] == 110 and c[3] == 103:  # l o n g
            end, sign = 4, 1.0
        elif width >= 5 and c[0] == 115 and c[1] == 104 and c[2] == 111 and c[3] == 114 and c[4] == 116:  # short
            end, sign = 5, -1.0
        else:
            continue
        for j in range(end, width):  # the rest must be numpy's zero padding
            if c[j] != 0:
                break
        else:
            out[i] = sign
    return out


def broadcast(named: dict[str, np.ndarray]) -> tuple[tuple[int, ...], dict[str, np.ndarray]]:
    """Broadcast the arrays together; return the shape and 1-D arrays of length 1 (scalars) or n.

    Arrays already of the full shape are raveled without a copy when contiguous; only arrays of a
    different non-scalar shape are materialised. Mismatched shapes raise ``ValueError`` naming the two
    arguments that disagree.
    """
    shapes = {a.shape for a in named.values() if a.ndim}
    if not shapes:  # all scalars: the common single-position call, no numpy broadcasting machinery
        return (), {name: arr.reshape(1) for name, arr in named.items()}
    try:
        shape = shapes.pop() if len(shapes) == 1 else np.broadcast_shapes(*shapes, ())
    except ValueError:
        shape = None
    if shape is None:
        first = None
        for name, arr in named.items():
            if arr.ndim == 0:
                continue
            if first is None:
                first = (name, arr.shape)
                continue
            try:
                np.broadcast_shapes(first[1], arr.shape)
            except ValueError:
                raise InputError(
                    f"{name}", f"shape {arr.shape} does not broadcast with {first[0]} shape {first[1]}"
                ) from None
        raise InputError("arrays", "shapes do not broadcast")
    flat = {}
    for name, arr in named.items():
        if arr.size == 1:
            flat[name] = arr.reshape(1)
        elif arr.shape == shape:
            flat[name] = np.ascontiguousarray(arr).reshape(-1)  # no copy when already contiguous
        else:
            flat[name] = np.ascontiguousarray(np.broadcast_to(arr, shape)).reshape(-1)
    return shape, flat


def unflatten(out: dict[str, np.ndarray], shape: tuple[int, ...], ints: tuple[str, ...] = ()) -> dict[str, Any]:
    """Reshape kernel outputs to ``shape``; a scalar shape gives Python scalars."""
    if shape == ():
        return {k: (int(v[0]) if k in ints else float(v[0])) for k, v in out.items()}
    return {k: v.reshape(shape) for k, v in out.items()}


def choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InputError(name, f"must be one of {', '.join(allowed)}, not {value!r}")
    return value


def first_bad(mask: np.ndarray) -> str:
    """ " (first at index i)" for the first True of ``mask``; empty for scalars."""
    if mask.ndim == 0:
        return ""
    idx = tuple(int(i) for i in np.argwhere(mask)[0])
    return f" (first at index {idx[0] if len(idx) == 1 else idx})"


def check(name: str, arr: np.ndarray, ok: np.ndarray, rule: str) -> None:
    """Raise ``ValueError`` "name: rule" when any element fails ``ok`` (NaN fails)."""
    bad = ~ok
    if np.any(bad):
        raise InputError(name, f"{rule}{first_bad(bad)}", rows=np.flatnonzero(bad) if bad.ndim else None)


def positive(name: str, arr: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        check(name, arr, np.isfinite(arr) & (arr > 0), "must be a finite number > 0")
    return arr


def non_negative(name: str, arr: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        check(name, arr, np.isfinite(arr) & (arr >= 0), "must be a finite number >= 0")
    return arr


def finite(name: str, arr: np.ndarray) -> np.ndarray:
    check(name, arr, np.isfinite(arr), "must be a finite number")
    return arr


def rate(name: str, arr: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        check(name, arr, np.isfinite(arr) & (arr >= 0) & (arr < 1), "must be a decimal rate in [0, 1)")
    return arr


def number(
    name: str,
    value: Any,
    rule: Callable[[str, np.ndarray], np.ndarray],
    *,
    default: float | None = None,
    required: bool = False,
) -> np.ndarray:
    """``value`` as a float64 array checked by ``rule`` (:func:`positive`, :func:`non_negative`,
    :func:`finite` or :func:`rate`). Not given (``None``) is ``default`` (NaN, which every rule refuses,
    when ``default`` is None), or "required" when ``required``; each error names ``name``."""
    if required:
        require(name, value)
    return rule(name, as_float(name, value, default=default))
