from __future__ import annotations

import json

from core.cli import main


def test_calc_prints_json(capsys) -> None:
    assert (
        main(
            [
                "calc",
                "liquidation-price",
                "--side",
                "long",
                "--entry_price",
                "20000",
                "--quantity",
                "1",
                "--leverage",
                "50",
                "--exchange",
                "bybit",
                "--maintenance_margin_rate",
                "0.005",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["liquidation_price"] == 19700


def test_calc_json_values_and_errors(capsys) -> None:
    assert (
        main(["calc", "average-entry", "--fills", '[{"price": 100, "quantity": 1}, {"price": 200, "quantity": 1}]'])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["average_entry_price"] == 150
    assert (
        main(
            [
                "calc",
                "pnl",
                "--side",
                "long",
                "--entry_price",
                "-1",
                "--exit_price",
                "1",
                "--quantity",
                "1",
                "--leverage",
                "1",
            ]
        )
        == 1
    )
    assert "entry_price" in capsys.readouterr().err
    assert main(["calc", "nope"]) == 2


def test_calc_null_for_no_liquidation(capsys) -> None:
    assert (
        main(
            [
                "calc",
                "liquidation-price",
                "--side",
                "long",
                "--entry_price",
                "100",
                "--quantity",
                "1",
                "--margin",
                "100",
                "--exchange",
                "generic",
                "--maintenance_margin_rate",
                "0",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["liquidation_price"] is None


def test_liqrisk_command_has_calc_and_serve(capsys) -> None:
    from api.cli import main as liqrisk

    assert (
        liqrisk(
            [
                "calc",
                "target-price",
                "--side",
                "long",
                "--entry_price",
                "100",
                "--leverage",
                "10",
                "--target_roe",
                "0.5",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["target_price"] == 105
