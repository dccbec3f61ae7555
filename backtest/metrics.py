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

from . import engine

METRICS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "trades", "win_rate", "profit_factor",
           "exposure", "fees_paid", "funding_paid", "liquidations", "rejected_entries")  # fmt: skip


def compute(res: engine.SimResult, init_cash: float, bar_seconds: int) -> dict[str, np.ndarray]:
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
        trades = st[:, engine.S_TRADES]
        out = {
            "total_return": final - 1.0,
            "cagr": np.where(final > 0, final ** (1.0 / years) - 1.0, -1.0),
            "sharpe": rnb.sharpe_ratio_nb(rets, ann),
            "sortino": rnb.sortino_ratio_nb(rets, ann),
            "max_drawdown": rnb.max_drawdown_nb(rets),
            "trades": trades.astype(np.int64),
            "win_rate": np.where(trades > 0, st[:, engine.S_WINS] / np.maximum(trades, 1), np.nan),
            "profit_factor": np.where(
                st[:, engine.S_GROSS_LOSS] > 0,
                st[:, engine.S_GROSS_WIN] / np.where(st[:, engine.S_GROSS_LOSS] > 0, st[:, engine.S_GROSS_LOSS], 1.0),
                np.where(st[:, engine.S_GROSS_WIN] > 0, np.inf, np.nan),
            ),
            "exposure": st[:, engine.S_EXPOSURE] / n,
            "fees_paid": st[:, engine.S_FEES].copy(),
            "funding_paid": st[:, engine.S_FUNDING].copy(),
            "liquidations": st[:, engine.S_LIQS].astype(np.int64),
            "rejected_entries": st[:, engine.S_REJECTED].astype(np.int64),
        }
    out["sharpe"] = np.where(np.isfinite(out["sharpe"]), out["sharpe"], np.nan)
    out["sortino"] = np.where(np.isfinite(out["sortino"]), out["sortino"], np.nan)
    return out


def trade_records(res: engine.SimResult, index=None) -> list[dict]:
    """The trades as dicts (prices in quote per base, quantity in base units, money in quote)."""
    out = []
    for row in res.trades:
        e, x = int(row[engine.T_ENTRY_BAR]), int(row[engine.T_EXIT_BAR])
        out.append({
            "column": int(row[engine.T_COL]),
            "side": "long" if row[engine.T_SIDE] > 0 else "short",
            "entry_time": index[e].isoformat() if index is not None else e,
            "exit_time": index[x].isoformat() if index is not None else x,
            "entry_bar": e,
            "exit_bar": x,
            "entry_price": float(row[engine.T_ENTRY]),
            "exit_price": float(row[engine.T_EXIT]),
            "quantity": float(row[engine.T_QTY]),
            "leverage": float(row[engine.T_LEV]),
            "margin": float(row[engine.T_MARGIN]),
            "liquidation_price": float(row[engine.T_LP_ENTRY]) if np.isfinite(row[engine.T_LP_ENTRY]) else None,
            "exit_liquidation_price": float(row[engine.T_LP]) if np.isfinite(row[engine.T_LP]) else None,
            "pnl": float(row[engine.T_PNL]),
            "fees": float(row[engine.T_FEES]),
            "funding": float(row[engine.T_FUNDING]),
            "exit_reason": engine.REASONS[int(row[engine.T_REASON])],
        })  # fmt: skip
    return out
