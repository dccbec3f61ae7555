"""The one error type of bad input: :class:`InputError`, a ``ValueError`` that names the request field.

Every public function of :mod:`core` raises it for input it cannot price, with the field as the HTTP API
names it (``leverage``, ``tiers[3].notional_cap``, ``positions[0].symbol``), the rows of a batch it
concerns, and its kind, so that callers (the HTTP API, the CLI, the backtester) decide the response from
attributes, never from the text. ``str(exc)`` is ``"field: message"``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

Kind = Literal["invalid", "unknown", "too_large"]

#: ``invalid``: a value outside what the field allows; ``unknown``: an exchange or symbol no ruleset or
#: tier table knows; ``too_large``: more than the engine computes (rows, paths, buckets, a position past
#: the last tier's cap)
KINDS: tuple[str, ...] = ("invalid", "unknown", "too_large")


class InputError(ValueError):
    """Bad input to a :mod:`core` function, naming the field.

    Attributes
    ----------
    field : the request field, as a path (``"leverage"``, ``"tiers[3].notional_cap"``, ``"body"`` when the
        error concerns no single field).
    message : what is wrong and what is allowed.
    kind : ``"invalid"``, ``"unknown"`` or ``"too_large"`` (see :data:`KINDS`).
    rows : ``None``, or the sorted 0-based (flat, C-order) indices of the array elements or batch rows the
        error concerns.
    """

    def __init__(self, field: str, message: str, *, kind: Kind = "invalid", rows: Any = None):
        if kind not in KINDS:
            raise TypeError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.kind = kind
        self.rows = None if rows is None else np.unique(np.asarray(rows, dtype=np.int64).reshape(-1))

    def within(self, prefix: str) -> InputError:
        """The same error inside the list item or object ``prefix`` (``"positions[2]"``): the field becomes
        ``positions[2].symbol``. An unknown symbol inside an item makes the item invalid (the request names
        no missing resource), so ``unknown`` becomes ``invalid`` there."""
        kind: Kind = "invalid" if self.kind == "unknown" and prefix.endswith("]") else self.kind
        return InputError(f"{prefix}.{self.field}", self.message, kind=kind, rows=self.rows)

    def __reduce__(self) -> tuple[Any, ...]:  # picklable with its keyword arguments (job workers)
        return (_rebuild, (self.field, self.message, self.kind, self.rows))


def _rebuild(field: str, message: str, kind: Kind, rows: Any) -> InputError:
    return InputError(field, message, kind=kind, rows=rows)


def as_input_error(exc: ValueError) -> InputError:
    """``exc`` itself when it is an :class:`InputError`; otherwise a plain ``ValueError("field: message")``
    from code outside :mod:`core` read as an invalid value of ``field`` (``body`` when its text names none)."""
    if isinstance(exc, InputError):
        return exc
    text = str(exc)
    field, _, message = text.partition(": ")
    if not message or " " in field:
        field, message = "body", text
    return InputError(field, message)
