"""The engine's compiled functions load from numba's on-disk cache without numba's compiler registries.

Before numba loads a function from its cache it refreshes the target context (``Cache.load_overload`` in
``numba/core/caching.py``): it imports and installs every typing template and lowering implementation it has
(typed dicts and lists, jitclass, random generators, linear algebra: about 60 modules), ~0.2 s of a server's
start-up. A ``@njit`` function needs none of that to be loaded and called, only numba's runtime (NRT), which its
object code calls; numba's compiler refreshes both contexts itself before it types anything
(``CompilerBase.__init__`` in ``numba/core/compiler.py``), so a function missing from the cache still compiles.

Only the dispatchers :func:`mark` was given load this way, and only once :func:`enable` was called (the API
server's master does, ``gunicorn.conf.py``): other cached functions, such as ``@vectorize`` ufuncs, whose wrapper
is built with the registries after the load, and every process that did not enable it (tests, job workers, the
CLI), keep numba's own behaviour. Where numba's cache lacks the two private methods this uses, :func:`mark`
changes nothing.
"""

from __future__ import annotations

from typing import Any

#: whether marked dispatchers load without the registries (set once in the API server's master)
_enabled = False


def enable() -> None:
    """Marked dispatchers load from the cache without numba's compiler registries from now on (inherited by
    forked workers)."""
    global _enabled
    _enabled = True


def mark(dispatcher: Any) -> Any:
    """Let ``dispatcher`` (a ``@njit(cache=True)`` function) load without the registries once :func:`enable` was
    called; returns it, so it can decorate."""
    cache = getattr(dispatcher, "_cache", None)
    if not all(hasattr(cache, name) for name in ("_load_overload", "_guard_against_spurious_io_errors")):
        return dispatcher
    full = cache.load_overload

    def load_overload(sig: Any, target_context: Any) -> Any:
        if not _enabled:
            return full(sig, target_context)
        from numba.core.runtime import nrt

        nrt.rtsys.initialize(target_context)  # what the object code calls; the rest of the refresh is skipped
        with cache._guard_against_spurious_io_errors():
            return cache._load_overload(sig, target_context)
        return None  # the guard swallowed an I/O error: numba then compiles, as its own method does

    cache.load_overload = load_overload
    return dispatcher
