"""A time budget for the long loops of the engine (Monte Carlo steps, liquidation-map bars, cascade
steps): a caller sets a deadline with :func:`time_budget` and the loops call :func:`check`, which raises
:class:`BudgetExceeded` once the deadline has passed. Without a budget, :func:`check` does nothing.

The deadline lives in a :mod:`contextvars` variable, so threads (and asyncio tasks) each have their own and
a library caller that never sets one pays one variable read per check.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

_deadline: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar("liqrisk_deadline", default=None)


class BudgetExceeded(RuntimeError):
    """The computation ran past its time budget; ``where`` names the loop, ``budget`` the seconds allowed."""

    def __init__(self, where: str, budget: float):
        super().__init__(f"{where}: over the time budget of {budget:g} s")
        self.where = where
        self.budget = budget


def start(seconds: float | None) -> contextvars.Token:
    """Set a deadline ``seconds`` from now (``None``: no budget); returns the token for :func:`stop`."""
    return _deadline.set(None if seconds is None else (time.monotonic() + seconds, seconds))


def restart() -> None:
    """Start the current budget again from now, whole (a request that waited for its turn before any work)."""
    current = _deadline.get()
    if current is not None:
        _deadline.set((time.monotonic() + current[1], current[1]))


def stop(token: contextvars.Token) -> None:
    _deadline.reset(token)


@contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """``with time_budget(2.0): ...``: the engine's loops inside raise :class:`BudgetExceeded` after 2 s."""
    token = start(seconds)
    try:
        yield
    finally:
        stop(token)


def check(where: str) -> None:
    """Raise :class:`BudgetExceeded` naming ``where`` if the current deadline has passed."""
    current = _deadline.get()
    if current is not None and time.monotonic() > current[0]:
        raise BudgetExceeded(where, current[1])
