"""Per-column performance metrics from the simulator's equity curves and totals (vectorbt's returns kernels).

Units: ``total_return``, ``cagr``, ``max_drawdown`` (≤ 0), ``win_rate``, ``exposure`` are decimals;
``sharpe``/``sortino`` are annualised with the bar frequency (365-day year, zero risk-free rate);
``rejected_entries`` counts entries the exchange's rules refused (leverage above the tier's maximum for that
notional); ``fees_paid`` (open/close fees plus the liquidation fee kept by the exchange) and ``funding_paid``
(net; > 0 = paid) are in quote currency; ``profit_factor`` = gross winning / gross losing net trade PnL
(inf if no loss).
Definitions follow vectorbt's ``ReturnsAccessor`` (https://vectorbt.dev/api/returns/accessors/).
"""

from __future__ import annotations

import numpy as np
from vectorbt.returns import nb as rnb

from . import engine as E

METRICS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "trades", "win_rate", "profit_factor",
           "exposure", "fees_paid", "funding_paid", "liquidations", "rejected_entries")  # fmt: skip


def compute(res: E.SimResult, init_cash: float, bar_seconds: int) -> dict[str, np.ndarray]:
    """One array per metric, one value per simulation column."""
    eq = res.equity
    n = eq.shape[0]
    st = res.state
    with np.errstate(divide="ignore", invalid="ignore"):
        prev = np.vstack([np.full((1, eq.shape[1]), init_cash), eq[:-1]])
        rets = np.where(prev > 0, eq / prev - 1.0, 0.0)
        ann = 365 * 86400 / bar_seconds
        years = n / ann
        final = eq[-1] / init_cash
        trades = st[:, E.S_TRADES]
        out = {
            "total_return": final - 1.0,
            "cagr": np.where(final > 0, final ** (1.0 / years) - 1.0, -1.0),
            "sharpe": rnb.sharpe_ratio_nb(rets, ann),
            "sortino": rnb.sortino_ratio_nb(rets, ann),
            "max_drawdown": rnb.max_drawdown_nb(rets),
            "trades": trades.astype(np.int64),
            "win_rate": np.where(trades > 0, st[:, E.S_WINS] / np.maximum(trades, 1), np.nan),
            "profit_factor": np.where(
                st[:, E.S_GROSS_LOSS] > 0,
                st[:, E.S_GROSS_WIN] / np.where(st[:, E.S_GROSS_LOSS] > 0, st[:, E.S_GROSS_LOSS], 1.0),
                np.where(st[:, E.S_GROSS_WIN] > 0, np.inf, np.nan),
            ),
            "exposure": st[:, E.S_EXPOSURE] / n,
            "fees_paid": st[:, E.S_FEES].copy(),
            "funding_paid": st[:, E.S_FUNDING].copy(),
            "liquidations": st[:, E.S_LIQS].astype(np.int64),
            "rejected_entries": st[:, E.S_REJECTED].astype(np.int64),
        }
    out["sharpe"] = np.where(np.isfinite(out["sharpe"]), out["sharpe"], np.nan)
    out["sortino"] = np.where(np.isfinite(out["sortino"]), out["sortino"], np.nan)
    return out


def trade_records(res: E.SimResult, index=None) -> list[dict]:
    """The trades as dicts (prices in quote per base, quantity in base units, money in quote)."""
    out = []
    for row in res.trades:
        e, x = int(row[E.T_ENTRY_BAR]), int(row[E.T_EXIT_BAR])
        out.append({
            "column": int(row[E.T_COL]),
            "side": "long" if row[E.T_SIDE] > 0 else "short",
            "entry_time": index[e].isoformat() if index is not None else e,
            "exit_time": index[x].isoformat() if index is not None else x,
            "entry_bar": e,
            "exit_bar": x,
            "entry_price": float(row[E.T_ENTRY]),
            "exit_price": float(row[E.T_EXIT]),
            "quantity": float(row[E.T_QTY]),
            "leverage": float(row[E.T_LEV]),
            "margin": float(row[E.T_MARGIN]),
            "liquidation_price": float(row[E.T_LP_ENTRY]) if np.isfinite(row[E.T_LP_ENTRY]) else None,
            "exit_liquidation_price": float(row[E.T_LP]) if np.isfinite(row[E.T_LP]) else None,
            "pnl": float(row[E.T_PNL]),
            "fees": float(row[E.T_FEES]),
            "funding": float(row[E.T_FUNDING]),
            "exit_reason": E.REASONS[int(row[E.T_REASON])],
        })  # fmt: skip
    return out
