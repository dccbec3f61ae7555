"""A small, safe expression language for your own entry and exit rules over the market frame's columns.

``close > rolling_max(high, 24) and funding_rate < -0.0005`` is parsed with Python's :mod:`ast` and checked
against a strict whitelist before anything is computed (never ``eval``): numbers, the frame's column names,
``+ - * /``, comparisons (chains allowed), ``and``/``or``/``not``, parentheses, and these functions:

* ``rolling_max(x, n)``, ``rolling_min(x, n)``, ``rolling_mean(x, n)``: over the ``n`` bars *before* the
  current one (a level fixed before the bar, so ``close > rolling_max(high, 24)`` is a breakout);
* ``shift(x, n)``: ``x`` ``n`` bars ago (``n ≥ 1``); ``abs(x)``.

Every value at bar ``t`` uses bars up to ``t`` only: a rule is decided on bar ``t``'s close and its order fills
at bar ``t+1``'s open. ``funding_rate`` is forward filled (known from its timestamp on); a comparison with a
missing value (NaN) is false. Windows are whole numbers from 1 to 100,000; a rule has at most 2,000 characters
and 400 syntax-tree nodes.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

import numpy as np
import pandas as pd

FUNCTIONS = ("rolling_max", "rolling_min", "rolling_mean", "shift", "abs")
MAX_LENGTH = 2000
MAX_NODES = 400
MAX_WINDOW = 100_000
_BINOPS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide}
_CMPOPS = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
           ast.Eq: np.equal, ast.NotEq: np.not_equal}  # fmt: skip


class RuleError(ValueError):
    """A rule that cannot be used; the message names the field and says what is allowed."""


def _window(field: str, node: ast.AST, name: str) -> int:
    if not (isinstance(node, ast.Constant) and type(node.value) is int and 1 <= node.value <= MAX_WINDOW):
        raise RuleError(f"{field}: the window of {name}() must be a whole number from 1 to {MAX_WINDOW}")
    return int(node.value)


def _rolling(x: np.ndarray, n: int, how: str) -> np.ndarray:
    out = getattr(pd.Series(x).rolling(n, min_periods=n), how)().to_numpy()
    return np.concatenate([[np.nan], out[:-1]])  # the n bars before this one


def _shift(x: np.ndarray, n: int) -> np.ndarray:
    if n >= len(x):
        return np.full(len(x), np.nan)
    return np.concatenate([np.full(n, np.nan), x[:-n]])


def evaluate(rule: str, columns: Mapping[str, np.ndarray], field: str = "rule") -> np.ndarray:
    """The rule's value on every bar: a boolean array. ``columns`` are 1-D float arrays of one length.

    Raises :class:`RuleError` (a ``ValueError``) naming ``field`` for anything outside the language.
    """
    if not isinstance(rule, str) or not rule.strip():
        raise RuleError(f"{field}: a non-empty expression over the columns")
    if len(rule) > MAX_LENGTH:
        raise RuleError(f"{field}: at most {MAX_LENGTH} characters")
    try:
        tree = ast.parse(rule.strip(), mode="eval")
    except SyntaxError as exc:
        raise RuleError(f"{field}: not an expression ({exc.msg} at character {exc.offset})") from None
    except (RecursionError, MemoryError, ValueError):
        raise RuleError(f"{field}: not an expression (too deeply nested)") from None
    n = len(next(iter(columns.values())))

    def num(node: ast.AST) -> np.ndarray:
        v = ev(node)
        return v.astype(float) if v.dtype == bool else v

    def ev(node: ast.AST) -> np.ndarray:
        if isinstance(node, ast.BoolOp):
            vals = [ev(v).astype(bool) for v in node.values]
            return np.logical_and.reduce(vals) if isinstance(node.op, ast.And) else np.logical_or.reduce(vals)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ~ev(node.operand).astype(bool)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = num(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            with np.errstate(divide="ignore", invalid="ignore"):
                return _BINOPS[type(node.op)](num(node.left), num(node.right))
        if isinstance(node, ast.Compare) and all(type(op) in _CMPOPS for op in node.ops):
            out = np.ones(n, dtype=bool)
            left = num(node.left)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = num(right_node)
                with np.errstate(invalid="ignore"):
                    out &= _CMPOPS[type(op)](left, right)
                left = right
            return out
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return np.full(n, float(node.value))
        if isinstance(node, ast.Name):
            if node.id not in columns:
                raise RuleError(f"{field}: unknown column {node.id!r} (columns: {', '.join(sorted(columns))})")
            return np.asarray(columns[node.id], dtype=float)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            name = node.func.id
            if name not in FUNCTIONS:
                raise RuleError(f"{field}: unknown function {name!r} (functions: {', '.join(FUNCTIONS)})")
            if name == "abs":
                if len(node.args) != 1:
                    raise RuleError(f"{field}: abs() takes one argument")
                return np.abs(num(node.args[0]))
            if len(node.args) != 2:
                raise RuleError(f"{field}: {name}(x, n) takes a series and a window")
            x, w = num(node.args[0]), _window(field, node.args[1], name)
            return _shift(x, w) if name == "shift" else _rolling(x, w, name.removeprefix("rolling_"))
        what = type(node).__name__
        raise RuleError(
            f"{field}: {what} is not allowed (numbers, columns, + - * /, comparisons, and/or/not, "
            f"{', '.join(FUNCTIONS)})"
        )

    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise RuleError(f"{field}: at most {MAX_NODES} terms")
    try:
        out = ev(tree.body)
    except RecursionError:
        raise RuleError(f"{field}: too deeply nested") from None
    if out.dtype != bool:
        raise RuleError(f"{field}: must be a condition (a comparison, or and/or/not of comparisons)")
    return out


def frame_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The numeric columns of a market frame as rules see them (funding forward filled)."""
    out = {}
    for k in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[k]):
            v = frame[k].to_numpy(dtype=float)
            out[k] = pd.Series(v).ffill().to_numpy() if k == "funding_rate" else v
    return out
