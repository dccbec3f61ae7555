"""``liqrisk`` command line: ``liqrisk calc <calculator> --<field> <value> ...`` prints a calculator's
result as JSON (field names as in the HTTP API). Values are parsed as JSON when they parse (numbers,
lists, objects), else taken as strings: ``--fills '[{"price": 100, "quantity": 1}]'``.

The ``liqrisk`` console script (:mod:`api.cli`) adds ``serve`` (and the backtester's commands); core
itself imports neither api nor backtest.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from .jsonable import to_jsonable


def _calculators() -> dict[str, Callable[..., Any]]:
    import core

    return {
        "liquidation-price": core.liquidation_price,
        "portfolio-liquidation": core.portfolio_liquidation,
        "pnl": core.pnl,
        "target-price": core.target_price,
        "max-open": core.max_open,
        "average-entry": core.average_entry,
        "break-even": core.break_even_price,
        "funding": core.funding_payments,
        "tiers": core.tiers_for,
    }


def _parse_fields(tokens: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--") or len(tok) <= 2:
            raise SystemExit(f"liqrisk calc: expected --<field>, got {tok!r}")
        key = tok[2:]
        if "=" in key:
            key, raw = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(tokens):
                raise SystemExit(f"liqrisk calc: --{key} needs a value")
            raw = tokens[i + 1]
            i += 2
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        fields[key.replace("-", "_")] = value
    return fields


def calc(name: str, tokens: list[str]) -> int:
    calculators = _calculators()
    if name not in calculators:
        print(f"liqrisk calc: unknown calculator {name!r}; choose from {', '.join(calculators)}", file=sys.stderr)
        return 2
    fields = _parse_fields(tokens)
    if name == "tiers":
        fields.setdefault("exchange", "binance")
        fields.setdefault("symbol", "BTCUSDT")
    try:
        result = calculators[name](**fields)
    except ValueError as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 1
    except TypeError as exc:
        print(json.dumps({"error": f"unknown or missing field: {exc}"}), file=sys.stderr)
        return 1
    print(json.dumps(to_jsonable(result), indent=2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``calc`` to a ``liqrisk`` argument parser."""
    p_calc = sub.add_parser("calc", help="run a calculator and print its result as JSON")
    p_calc.add_argument(
        "calculator",
        help="liquidation-price, portfolio-liquidation, pnl, target-price, max-open, average-entry, break-even, "
        "funding, tiers",
    )
    p_calc.add_argument("fields", nargs=argparse.REMAINDER, help="--<field> <value> pairs")
    p_calc.set_defaults(func=lambda args: calc(args.calculator, args.fields))


def main(argv: list[str] | None = None) -> int:
    """``python -m core.cli calc ...`` (the ``liqrisk`` command, in :mod:`api.cli`, adds serve/backtest)."""
    parser = argparse.ArgumentParser(prog="liqrisk", description="liqrisk: crypto-derivatives risk engine")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
