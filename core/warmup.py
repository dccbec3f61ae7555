"""Compile (or load from numba's on-disk cache) every kernel configuration the rulesets can ask for, so
that no request or test pays numba's compile time. ``python -m core.warmup`` is run by ``make install``
and the Dockerfile; gunicorn's master calls :func:`warm_up` before forking workers.
"""

from __future__ import annotations

import sys
import time

import numba
import numpy as np

from . import _kernels, market, solve_nb
from ._inputs import side_codes_nb
from .kernel_args import INPUT_FIELDS, kernel_arguments, table_arguments
from .rulesets import get_ruleset
from .tiers import EXCHANGES, TierTable


def configurations() -> list[tuple[bool, ...]]:
    """Distinct kernel configurations over exchanges × contract types × margin modes × tier bases, each
    serial (small batches) and parallel (large ones)."""
    configs = set()
    for exchange in EXCHANGES:
        rules = get_ruleset(exchange)
        for inverse in (False, True):
            for cross in (False, True):
                for qty_basis in (False, True) if exchange == "okx" else (False,):
                    configs.update(
                        (
                            inverse,
                            cross,
                            rules.mm_basis == "entry",
                            rules.retier,
                            rules.fee_in_mm,
                            rules.close_fee_in_mm,
                            qty_basis,
                            parallel,
                        )
                        for parallel in (False, True)
                    )
    return sorted(configs)


def first_configurations() -> list[tuple[bool, ...]]:
    """The serial configurations of the default exchange's linear contracts (isolated and cross): what a
    server loads before it answers its first request; the others follow in the background
    (``gunicorn.conf.py``)."""
    rules = get_ruleset("binance")
    return [
        (False, cross, rules.mm_basis == "entry", rules.retier, rules.fee_in_mm, rules.close_fee_in_mm, False, False)
        for cross in (False, True)
    ]


def warm_up(
    verbose: bool = False, run: bool = False, parallel: bool | None = None, configs: list | None = None
) -> float:
    """Compile every configuration, or load it from numba's on-disk cache; returns the seconds taken.

    With ``run=False`` (what gunicorn's master uses) the kernels are only compiled/loaded, never executed,
    so no worker thread pool exists before the workers fork (numba's OpenMP layer is not fork-safe).
    ``parallel=None`` loads the parallel variants only when numba may use more than one thread (gunicorn
    pins each worker to one, so they would never run there and only cost start-up time). ``configs`` limits
    the kernels to those configurations (default: :func:`configurations`).
    """
    if parallel is None:
        parallel = numba.config.NUMBA_NUM_THREADS > 1
    start = time.perf_counter()
    one = np.ones(1)
    nan = np.full(1, np.nan)
    inputs = {k: nan for k in INPUT_FIELDS}  # NaN: not given (margin, mark price, overrides)
    inputs.update(side=one, entry_price=one * 100, quantity=one, leverage=one * 10, wallet_balance=one * 1000)
    inputs.update(other_positions=one * 0, taker_fee_rate=one * 0, contract_size=one)
    table = table_arguments(
        TierTable(np.zeros(1), np.full(1, np.inf), np.full(1, 100.0), np.full(1, 0.01), np.zeros(1))
    )
    for config in configurations() if configs is None else configs:
        if config[-1] and not parallel:
            continue
        t0 = time.perf_counter()
        out = _kernels.empty_outputs(1)
        args = kernel_arguments(1, inputs, table, out)
        kernel = _kernels.liquidation_kernel(*config)
        if run:
            kernel(*args)
        else:
            kernel.compile(tuple(numba.typeof(a) for a in args))
        if verbose:
            print(f"kernel {config}: {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    market.wilder_smooth_nb.compile((numba.float64[::1], numba.float64, numba.float64))
    side_codes_nb.compile((numba.uint32[:, ::1],))
    compile_solvers()
    return time.perf_counter() - start


def compile_solvers() -> None:
    """The jitted solver pieces that Python code calls directly (:meth:`core.tier_table.TierTable.lookup`, the
    portfolio solver), for the argument types those callers pass."""
    f, i, b = numba.float64[::1], numba.int64[::1], numba.boolean[::1]
    solve_nb.tier_indices_nb.compile((f, f, f))
    solve_nb.shared_prices_nb.compile((i, f, f, f, numba.boolean, numba.float64, f, f, f))
    solve_nb.held_tiers_nb.compile((i, i, i, f, f, b, b, f, f, f, f, f, f, i))


if __name__ == "__main__":
    seconds = warm_up(verbose="-v" in sys.argv, parallel=True)
    print(f"liqrisk: {len(configurations())} kernel configurations ready in {seconds:.1f} s", file=sys.stderr)
