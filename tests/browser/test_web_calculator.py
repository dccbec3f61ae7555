"""The web calculator in a real browser: every tab is filled as a trader would, its request is the expected JSON,
every number it shows is the API's own answer for that request (rounded only for display), a bad field gets the
API's message next to it, and each tab is photographed at 1280 px and 390 px."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import pytest


@dataclass
class Case:
    tab: str
    form: str
    endpoint: str
    fill: dict[str, str] = field(default_factory=dict)
    body: dict = field(default_factory=dict)
    mode: str | None = None  # label of the tab's mode switch, when the form is not the first one
    lead: str = ""  # a result key that must be shown
    bad: tuple = ()  # (input path, bad value, the error path the API names, or a tuple of the accepted ones)


SQUEEZE_N = 48

CASES = [
    Case(
        "liquidation",
        "liq-one",
        "/v1/liquidation-price",
        fill={"exchange": "bybit", "side": "short", "entry_price": "3,150.5", "quantity": "2", "leverage": "25"},
        body={
            "exchange": "bybit",
            "symbol": "BTCUSDT",
            "contract_type": "linear",
            "side": "short",
            "margin_mode": "isolated",
            "entry_price": 3150.5,
            "quantity": 2,
            "leverage": 25,
        },
        lead="liquidation_price",
        bad=("leverage", "500", "leverage"),
    ),
    Case(
        "liquidation",
        "liq-many",
        "/v1/portfolio/liquidation",
        mode="Several positions (cross account)",
        fill={"wallet_balance": "8000", "positions[1].quantity": "4", "positions[1].mark_price": "3100"},
        body={
            "exchange": "binance",
            "wallet_balance": 8000,
            "positions": [
                {"symbol": "BTCUSDT", "side": "long", "entry_price": 60000, "quantity": 0.5},
                {"symbol": "ETHUSDT", "side": "short", "entry_price": 3000, "quantity": 4, "mark_price": 3100},
            ],
        },
        lead="margin_ratio",
        bad=("positions[1].entry_price", "-3000", "positions[1].entry_price"),
    ),
    Case(
        "pnl",
        "pnl",
        "/v1/pnl",
        fill={"side": "short", "exit_price": "57500", "funding_paid": "4.2"},
        body={
            "side": "short",
            "contract_type": "linear",
            "entry_price": 60000,
            "exit_price": 57500,
            "quantity": 0.5,
            "leverage": 20,
            "open_fee_rate": 0.0005,
            "close_fee_rate": 0.0005,
            "funding_paid": 4.2,
        },
        lead="net_pnl",
        bad=("leverage", "0", "leverage"),
    ),
    Case(
        "target",
        "target",
        "/v1/target-price",
        fill={"target_roe": "-0.35"},
        body={"side": "long", "contract_type": "linear", "entry_price": 60000, "leverage": 20, "target_roe": -0.35},
        lead="target_price",
        bad=("target_roe", "half", "target_roe"),
    ),
    Case(
        "max-open",
        "max-open",
        "/v1/max-open",
        fill={"exchange": "okx", "available_balance": "2500", "leverage": "10"},
        body={
            "exchange": "okx",
            "symbol": "BTC-USDT-SWAP",
            "side": "long",
            "entry_price": 60000,
            "leverage": 10,
            "available_balance": 2500,
        },
        lead="max_quantity",
        bad=("available_balance", "-1", "available_balance"),
    ),
    Case(
        "average",
        "average",
        "/v1/average-entry",
        fill={"fills[1].price": "57250", "fills[1].quantity": "0.35"},
        body={
            "contract_type": "linear",
            "fills": [{"price": 60000, "quantity": 0.1}, {"price": 57250, "quantity": 0.35}],
        },
        lead="average_entry_price",
        # the engine names the column it checks and the first bad row in the message
        bad=("fills[1].quantity", "-0.2", ("fills[1].quantity", "quantities")),
    ),
    Case(
        "break-even",
        "break-even",
        "/v1/break-even",
        fill={"side": "short", "open_fee_rate": "0.0002"},
        body={"side": "short", "entry_price": 60000, "open_fee_rate": 0.0002, "close_fee_rate": 0.0005},
        lead="break_even_price",
        bad=("entry_price", "0", "entry_price"),
    ),
    Case(
        "funding",
        "funding",
        "/v1/funding",
        fill={"mark_prices": "60000, 60500\n61000", "funding_rates": "0.0001 -0.0002 0.0003"},
        body={
            "side": "long",
            "contract_type": "linear",
            "quantity": 0.5,
            "mark_prices": [60000, 60500, 61000],
            "funding_rates": [0.0001, -0.0002, 0.0003],
        },
        lead="total",
        bad=("funding_rates", "0.0001 abc 0.0003", "funding_rates[1]"),
    ),
    Case(
        "probability",
        "probability",
        "/v1/risk/liquidation-probability",
        fill={"horizon_hours": "24", "volatility": "0.85"},
        body={
            "side": "long",
            "mark_price": 60000,
            "liquidation_price": 57000,
            "volatility": 0.85,
            "horizon_hours": 24,
            "model": "gbm",
        },
        lead="probability",
        bad=("volatility", "-0.6", "volatility"),
    ),
    Case(
        "position-size",
        "position-size",
        "/v1/risk/position-size",
        fill={"risk_fraction": "0.02", "stop_price": "58800"},
        body={
            "exchange": "binance",
            "symbol": "BTCUSDT",
            "side": "long",
            "equity": 10000,
            "risk_fraction": 0.02,
            "entry_price": 60000,
            "stop_price": 58800,
        },
        lead="quantity",
        bad=("risk_fraction", "2", "risk_fraction"),
    ),
    Case(
        "squeeze",
        "squeeze",
        "/v1/market/squeeze-score",
        fill={"series.long_short_ratio": " ".join(["0.7"] * SQUEEZE_N)},
        body={},  # the sample series built by the page; checked for shape below
        lead="score",
        bad=("series.open_interest", " ".join(["-1"] * SQUEEZE_N), "series.open_interest"),
    ),
    Case(
        "backtest",
        "backtest",
        "/v1/backtests",
        fill={"dataset.bars": "1500", "strategy.leverage": "5", "strategy.side": "short"},
        body={
            "dataset": {"name": "synthetic", "bars": 1500, "timeframe": "1h", "seed": 7},
            "include_trades": True,
            "equity_points": 400,
            "strategy": {
                "side": "short",
                "exchange": "binance",
                "symbol": "BTCUSDT",
                "leverage": 5,
                "stop_pct": 0.04,
                "take_profit_pct": 0.12,
                "size_value": 0.25,
                "init_cash": 10000,
                "fee_rate": 0.0005,
            },
        },
        lead="metrics.total_return",
        bad=("strategy.leverage", "500", "strategy.leverage"),
    ),
]
IDS = [c.form for c in CASES]


def open_form(page, case: Case):
    page.goto(f"/#{case.tab}")
    page.wait_for_selector("body[data-ready]")
    if case.mode:
        page.get_by_label(case.mode, exact=True).check()
    form = page.locator(f"form#{case.form}")
    form.wait_for(state="visible")
    if form.locator("select[data-kind=exchange] option").count():
        page.wait_for_function(
            f"document.querySelectorAll('#{case.form} select[data-kind=exchange] option').length > 1"
        )
    return form


def fill(form, path: str, value: str) -> None:
    control = form.locator(f'[data-path="{path}"]')
    kind = control.get_attribute("data-kind")
    if kind == "radio":
        control.locator(f'input[value="{value}"]').check()
    elif kind in ("select", "exchange"):
        control.select_option(value)
    else:
        control.fill(value)


def submit(page, form, endpoint: str):
    with page.expect_response(lambda r: r.url.endswith(endpoint) and r.request.method == "POST") as info:
        form.locator("button[type=submit]").click()
    page.wait_for_selector(f"form#{form.get_attribute('id')}:not([data-state=busy])[data-state]", timeout=120_000)
    return info.value


def api_job_result(api, location: str) -> dict:
    """The finished job's result, read outside the browser."""
    status, job = api(location, None)
    assert status == 200 and job["status"] == "succeeded", job
    return job["result"]


def resolve(obj, key: str):
    for part in key.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


def shown_number(text: str) -> tuple[float, float]:
    """The number a cell shows and half a unit of its last shown digit (the rounding it may carry)."""
    t = text.replace(",", "").replace("%", "").strip().replace("\u2212", "-")
    decimals = len(t.split(".")[1]) if "." in t else 0
    return float(t), 0.5 * 10.0**-decimals


def check_shown_values(form, answer: dict) -> int:
    """Every [data-key] in the result holds the API's value for that key and shows it correctly rounded."""
    cells = form.evaluate(
        """f => [...f.querySelectorAll('.result [data-key]')].map(e =>
             ({key: e.dataset.key, raw: e.dataset.value, fmt: e.dataset.fmt, text: e.innerText}))"""
    )  # one round trip for all cells
    checked = 0
    for cell in cells:
        key, raw, text = cell["key"], cell["raw"], cell["text"]
        expected = resolve(answer, key)
        if expected is None:
            assert raw == "null" and text == "none", (key, raw, text)
            continue
        if isinstance(expected, str):
            assert raw == expected, (key, raw, expected)
            continue
        assert float(raw) == pytest.approx(expected, rel=1e-12, abs=1e-300), (key, raw, expected)
        assert re.fullmatch(r"-?[\d,]+(\.\d+)?( %)?", text.strip()), (key, text)
        value, half = shown_number(text)
        want = expected * 100.0 if cell["fmt"] == "rate" else expected  # a decimal shown as %
        assert math.isclose(value, want, abs_tol=half * 1.0001 + 1e-12), (key, text, expected)
        checked += 1
    return checked


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_tab_shows_the_api_numbers_and_errors(page, api, screenshots, case: Case) -> None:
    form = open_form(page, case)
    for path, value in case.fill.items():
        fill(form, path, value)
    response = submit(page, form, case.endpoint)
    if response.status == 503 and case.form == "backtest":
        pytest.skip(f"backtests run as jobs and no job worker could be started: {response.text()[:200]}")
    assert response.status in (200, 202), response.text()
    sent = json.loads(response.request.post_data)
    if case.body:
        assert sent == case.body
    else:
        assert set(sent["series"]) == {"close", "funding_rate", "open_interest", "long_short_ratio"}
        assert (
            all(len(v) == SQUEEZE_N for v in sent["series"].values()) and sent["series"]["long_short_ratio"][0] == 0.7
        )
    if response.status == 202:  # a job: the page polled it to the end; its result is the answer shown
        assert form.locator("progress").count() == 1
        answer = api_job_result(api, response.headers["location"])
    else:
        status, answer = api(case.endpoint, sent)
        assert status == 200
    assert form.get_attribute("data-state") == "done"
    assert form.locator(f'.result [data-key="{case.lead}"]').is_visible()
    assert check_shown_values(form, answer) >= 1
    shown = form.locator(".result").inner_text()
    assert "[object Object]" not in shown and "undefined" not in shown, shown
    if case.form == "liq-one":  # each warning in words, as the API gives it ({code, message})
        for warning in answer.get("warnings") or []:
            assert warning["message"] in shown, (warning, shown)
    if case.form == "backtest":
        assert form.locator(".result svg.chart polyline").count() == 1
        assert form.locator(".result tbody tr").count() == min(100, len(answer["trades"]))
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page scrolls sideways: {width} px"
    page.screenshot(path=str(screenshots / f"{case.form}-{page.viewport_name}.png"), full_page=True)
    if page.viewport_name == "desktop":  # once per tab: the same form with one bad field
        check_bad_field(page, api, screenshots, form, case)


def check_bad_field(page, api, screenshots, form, case: Case) -> None:
    """The API's message for a bad field is shown next to that field, marked invalid and described by it."""
    path, value, accepted = case.bad
    fill(form, path, value)
    response = submit(page, form, case.endpoint)
    problem = response.json()
    named = [p for p in ((accepted,) if isinstance(accepted, str) else accepted) if p in problem["errors"]]
    assert response.status == 422 and named, problem
    error_path = named[0]
    _, again = api(case.endpoint, json.loads(response.request.post_data))
    assert again["errors"] == problem["errors"]
    control = form.locator(f'[data-path="{path}"]')
    assert control.get_attribute("aria-invalid") == "true"
    slot = page.locator(f"#{control.get_attribute('data-err')}")
    assert slot.is_visible()
    for message in problem["errors"][error_path]:
        assert message in slot.inner_text()
    described = control.get_attribute("aria-describedby") or ""
    assert control.get_attribute("data-err") in described.split()
    assert form.locator(".problem[role=alert]").is_visible()
    assert form.locator(".result [data-key]").count() == 0  # the previous answer is gone
    if case.form in ("liq-one", "average"):
        page.screenshot(path=str(screenshots / f"{case.form}-error-{page.viewport_name}.png"), full_page=True)


@pytest.mark.parametrize("viewport", ["desktop"], indirect=True)
def test_tabs_work_from_the_keyboard(page) -> None:
    page.goto("/")
    page.wait_for_selector("body[data-ready]")
    first = page.locator("[role=tab]").first
    first.focus()
    assert first.get_attribute("aria-selected") == "true"
    page.keyboard.press("ArrowRight")
    second = page.locator("[role=tab]").nth(1)
    assert second.get_attribute("aria-selected") == "true"
    assert page.evaluate("document.activeElement.id") == second.get_attribute("id")
    assert page.locator(f"#{second.get_attribute('aria-controls')}").is_visible()
    page.keyboard.press("End")
    assert page.locator("[role=tab]").last.get_attribute("aria-selected") == "true"
    assert page.url.endswith("#backtest")
    # every visible input has a label the browser resolves
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('[role=tabpanel]:not([hidden]) input, '
                + '[role=tabpanel]:not([hidden]) select, [role=tabpanel]:not([hidden]) textarea')]
           .filter(e => e.offsetParent !== null && e.labels.length === 0).map(e => e.id)"""
    )
    assert unlabelled == []


@pytest.mark.parametrize("viewport", ["phone"], indirect=True)
def test_squeeze_series_from_a_pasted_csv(page, api) -> None:
    case = next(c for c in CASES if c.form == "squeeze")
    form = open_form(page, case)
    rows = [(60000 + 50 * i, -0.0001 * (i % 7), 1.0e9 + 2.0e6 * i, 0.9 + 0.01 * (i % 5)) for i in range(40)]
    csv = "open_interest,close,long_short_ratio,funding_rate\n" + "\n".join(f"{o},{c},{r},{f}" for c, f, o, r in rows)
    form.locator("details.paste summary").click()
    page.get_by_label("CSV with a header row").fill(csv)
    page.get_by_role("button", name="Fill the series from the CSV").click()
    assert "40 rows" in form.locator("details.paste [aria-live]").inner_text()
    response = submit(page, form, case.endpoint)
    sent = json.loads(response.request.post_data)["series"]
    assert sent["close"] == [r[0] for r in rows] and sent["open_interest"] == [r[2] for r in rows]
    assert sent["funding_rate"] == [r[1] for r in rows] and sent["long_short_ratio"] == [r[3] for r in rows]
    _, answer = api(case.endpoint, {"series": sent})
    assert check_shown_values(form, answer) >= 5


@pytest.mark.parametrize("viewport", ["desktop"], indirect=True)
def test_api_key_entered_on_the_page_is_sent(page, keyed_server) -> None:
    """With LIQRISK_API_KEYS set the page still loads; a call without the key shows the 401 problem and opens
    the key box; the key typed there is sent as X-API-Key and the same form then answers."""
    page.goto(keyed_server + "/#pnl")
    page.wait_for_selector("body[data-ready]")
    form = page.locator("form#pnl")
    response = submit(page, form, "/v1/pnl")
    assert response.status == 401 and form.get_attribute("data-state") == "error"
    assert "X-API-Key" in form.locator(".problem").inner_text()
    key = page.get_by_label("API key (only when this service requires one; kept for this browser tab)")
    assert key.is_visible()
    key.fill("browser-key")
    key.press("Enter")
    response = submit(page, form, "/v1/pnl")
    assert response.status == 200 and response.request.headers["x-api-key"] == "browser-key"
    assert form.locator('.result [data-key="net_pnl"]').is_visible()
