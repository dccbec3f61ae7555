"""``liqrisk calc``: options built from the HTTP schemas, the same answers and refusals as HTTP and the
Python API, ``--help`` for every calculator, argparse's own errors for unknown options and bad values."""

from __future__ import annotations

import json

import pytest

import core
from api.calc_cli import CALCULATORS, _fields
from api.cli import main


def _calc(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["calc", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_calc_prints_json(capsys) -> None:
    code, out, _ = _calc(
        capsys, "liquidation-price", "--side", "long", "--entry_price", "20000", "--quantity", "1",
        "--leverage", "50", "--exchange", "bybit", "--maintenance-margin-rate", "0.005",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["liquidation_price"] == 19700


def test_calc_json_values_and_field_errors(capsys) -> None:
    code, out, _ = _calc(
        capsys, "average-entry", "--fills", '[{"price": 100, "quantity": 1}, {"price": 200, "quantity": 1}]'
    )
    assert code == 0 and json.loads(out)["average_entry_price"] == 150
    code, _, err = _calc(
        capsys,
        "pnl",
        "--side",
        "long",
        "--entry-price",
        "-1",
        "--exit-price",
        "1",
        "--quantity",
        "1",
        "--leverage",
        "1",
    )
    assert code == 1 and "--entry-price" in err


def test_calc_null_for_no_liquidation(capsys) -> None:
    code, out, _ = _calc(
        capsys, "liquidation-price", "--side", "long", "--entry-price", "100", "--quantity", "1", "--margin", "100",
        "--exchange", "generic", "--maintenance-margin-rate", "0",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["liquidation_price"] is None


@pytest.mark.parametrize("name", sorted(CALCULATORS))
def test_every_calculator_has_help_with_each_option(capsys, name) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["calc", name, "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    props, required, _ = _fields(*CALCULATORS[name])
    for field in props:
        assert f"--{field.replace('_', '-')}" in text, field
    assert text.count("(required)") == len(required)
    assert "(default:" in text or not set(props) - required


@pytest.mark.parametrize(
    "argv",
    [
        ["calc", "pnl", "--levrage", "3"],  # a typo: argparse's own "unrecognized arguments"
        ["calc", "nope"],  # an unknown calculator: argparse's "invalid choice"
        ["calc", "pnl", "--leverage", "ten"],  # not a number
        ["calc", "tiers", "--exchange", "binance"],  # a path part missing
    ],
)
def test_bad_options_get_argparse_errors_not_tracebacks(capsys, argv) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


@pytest.mark.parametrize("side", ["buy", "sell", "SHORT", "Long"])
def test_side_spellings_refused_everywhere(capsys, client, side) -> None:
    """One spelling, "long" or "short": the CLI, the Python API and HTTP all refuse the others."""
    with pytest.raises(SystemExit):
        main(["calc", "pnl", "--side", side, "--entry-price", "1", "--exit-price", "2", "--quantity", "1"])
    assert "long" in capsys.readouterr().err
    with pytest.raises(ValueError, match='side: must be "long" or "short"'):
        core.pnl(side=side, entry_price=1, exit_price=2, quantity=1, leverage=1)
    body = {"side": side, "entry_price": 1, "exit_price": 2, "quantity": 1, "leverage": 1}
    resp = client.post("/v1/pnl", json=body)
    assert resp.status_code == 422 and "side" in resp.get_json()["errors"]


def test_cli_answers_as_http(capsys, client) -> None:
    body = {"side": "short", "entry_price": 3500, "exit_price": 3000, "quantity": 2, "leverage": 5}
    code, out, _ = _calc(capsys, "pnl", *[x for k, v in body.items() for x in (f"--{k.replace('_', '-')}", str(v))])
    assert code == 0 and json.loads(out) == client.post("/v1/pnl", json=body).get_json()
    code, out, _ = _calc(capsys, "tiers", "--exchange", "binance", "--symbol", "BTCUSDT", "--notional", "500000")
    assert code == 0
    assert json.loads(out) == client.get("/v1/exchanges/binance/tiers/BTCUSDT?notional=500000").get_json()
