"""Loaders: Binance and freqtrade layouts, checks with messages naming file, line and column, and the aligned
market frame (funding on its bar, coarse liquidations only once known, the taker-flow proxy)."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from backtest import data

HOUR = 3_600_000
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC


def kline_rows(n, start=T0, step=HOUR):
    rows = []
    for i in range(n):
        t = start + i * step
        o = 100 + i
        rows.append([t, o, o + 2, o - 1, o + 1, 10.0, t + step - 1, 1000.0, 5, 6.0, 600.0, 0])
    return rows


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def csv_lines(rows):
    return [",".join(str(x) for x in r) for r in rows]


def test_binance_klines_without_header_ms_epoch(tmp_path):
    p = write(tmp_path / "k.csv", csv_lines(kline_rows(5)))
    got = data.load_klines(p, "1h")
    assert len(got.frame) == 4 and got.report.partial_last_dropped  # a dump's last kline is presumed open
    assert got.frame.index[0] == pd.Timestamp("2025-01-01", tz="UTC")
    assert got.frame["taker_sell_base"].iloc[0] == 4.0
    kept = data.load_klines(p, "1h", now=pd.Timestamp("2030-01-01", tz="UTC"))
    assert len(kept.frame) == 5 and not kept.report.partial_last_dropped


def test_binance_klines_with_header_iso_times_duplicates_and_gaps(tmp_path):
    rows = kline_rows(6)
    del rows[3]  # a missing hour
    rows.insert(1, rows[1])  # a duplicate
    lines = [",".join(data.KLINE_COLUMNS)]
    for r in rows:
        r = list(r)
        r[0] = pd.Timestamp(r[0], unit="ms", tz="UTC").isoformat()
        r[6] = pd.Timestamp(r[6], unit="ms", tz="UTC").isoformat()
        lines.append(",".join(map(str, r)))
    got = data.load_klines(write(tmp_path / "k.csv", lines), "1h", now=pd.Timestamp("2030-01-01", tz="UTC"))
    assert got.report.duplicates == 1
    assert got.report.missing_bars == 1 and got.report.first_gap.startswith("2025-01-01T02:00")
    assert got.frame.index.is_monotonic_increasing and len(got.frame) == 5


@pytest.mark.parametrize(
    "bad,line,column",
    [
        ((2, 1, "abc"), 3, "open"),
        ((1, 2, "nan"), 2, "high"),
        ((2, 0, "yesterday"), 3, "open_time"),
        ((3, 2, "90"), 4, "high"),  # high below open/close
    ],
)
def test_bad_klines_name_file_line_and_column(tmp_path, bad, line, column):
    rows = kline_rows(5)
    r, c, v = bad
    rows[r][c] = v
    p = write(tmp_path / "bad.csv", csv_lines(rows))
    with pytest.raises(data.DataError) as e:
        data.load_klines(p, "1h")
    assert e.value.row == line and e.value.column == column
    assert "bad.csv" in str(e.value) and f"line {line}" in str(e.value)


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(data.DataError, match="empty"):
        data.load_klines(write(tmp_path / "e.csv", [""]))
    with pytest.raises(data.DataError, match="cannot read"):
        data.load_ohlcv(str(tmp_path / "nope.csv"))
    with pytest.raises(data.DataError, match="column 'sumOpenInterest'"):
        data.load_open_interest(write(tmp_path / "x.csv", ["a,b", "1,2"]))


def test_freqtrade_gzip_and_funding_layouts(tmp_path):
    lines = ["date,open,high,low,close,volume"] + [
        f"2025-01-01T{h:02d}:00:00Z,{100 + h},{102 + h},{99 + h},{101 + h},5" for h in range(10)
    ]
    p = tmp_path / "SOL_USDT_USDT-1h-futures.csv.gz"
    p.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    got = data.load_ohlcv(str(p), "1h")
    assert len(got.frame) == 10 and got.report.missing_bars == 0
    f = data.load_funding(write(tmp_path / "f.csv", ["date,funding_rate", "2025-01-01T00:00:00Z,0.0001",
                                                  "2025-01-01T08:00:00Z,-0.0003"]))  # fmt: skip
    assert f.frame["funding_rate"].tolist() == [0.0001, -0.0003]
    lines = ["symbol,fundingTime,fundingRate,markPrice", "BTCUSDT,2025-01-01 00:00:00+00:00,0.0001,",
             "BTCUSDT,2025-01-01 08:00:00.008000+00:00,0.0002,95000.5"]  # fmt: skip
    b = data.load_funding(write(tmp_path / "b.csv", lines))
    assert b.frame.index[1] == pd.Timestamp("2025-01-01 08:00", tz="UTC")  # settlement lag floored
    assert np.isnan(b.frame["funding_mark_price"].iloc[0])
    with pytest.raises(data.DataError, match="decimals"):
        data.load_funding(write(tmp_path / "pct.csv", ["date,funding_rate", "2025-01-01T00:00:00Z,0.3"]))


def test_market_frame_alignment(tmp_path):
    idx = pd.date_range("2025-01-01", periods=72, freq="h", tz="UTC")
    ohlcv = pd.DataFrame({"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.0, "volume": 1.0}, index=idx)
    funding = pd.DataFrame(
        {"funding_rate": [0.0001, 0.0002]},
        index=pd.DatetimeIndex(["2025-01-01 08:00:00.008", "2025-01-02 16:00:00.003"], tz="UTC"),
    )
    liq = pd.DataFrame({"long_liq": [5.0, 7.0, 9.0], "short_liq": [1.0, 2.0, 3.0]},
                       index=pd.DatetimeIndex(["2025-01-01", "2025-01-02", "2025-01-03"], tz="UTC"))  # fmt: skip
    f, warnings = data.market_frame(ohlcv, funding=funding, liquidations=liq, timeframe="1h")
    assert f["funding_rate"].notna().sum() == 2
    assert f.loc["2025-01-01 08:00", "funding_rate"].item() == 0.0001
    # a daily figure is known at the end of its day: it sits on that day's last bar, not its first
    assert f.loc["2025-01-01 23:00", "long_liq"].item() == 5.0 and f.loc["2025-01-01 00:00", "long_liq"].item() == 0
    assert (f["mark_low"] == f["low"]).all() and any("mark-price" in w for w in warnings)
    assert f["liq_source"].iloc[0] == "data"


def test_liquidation_proxy_flags_loud_one_sided_bars():
    n = 60
    idx = pd.date_range("2025-01-01", periods=n, freq="h", tz="UTC")
    f = pd.DataFrame({"open": 100.0, "high": 100.5, "low": 99.5, "close": 100.0, "volume": 10.0,
                      "taker_buy": 5.0, "taker_sell": 5.0}, index=idx)  # fmt: skip
    f.iloc[50, f.columns.get_loc("high")] = 110.0
    f.iloc[50, f.columns.get_loc("close")] = 108.0
    f.iloc[50, f.columns.get_loc("volume")] = 100.0
    f.iloc[50, f.columns.get_loc("taker_buy")] = 80.0
    f.iloc[50, f.columns.get_loc("taker_sell")] = 20.0
    long_liq, short_liq = data.liquidation_proxy(f)
    assert short_liq[50] == 60.0 and short_liq.sum() == 60.0 and long_liq.sum() == 0.0


def test_frame_from_columns_checks():
    n = 20
    cols = {"time": [T0 + i * HOUR for i in range(n)], "open": [100.0] * n, "high": [101.0] * n,
            "low": [99.0] * n, "close": [100.0] * n, "funding_rate": [None] * n}  # fmt: skip
    f, _ = data.frame_from_columns(cols)
    assert len(f) == n and f.index[0] == pd.Timestamp("2025-01-01", tz="UTC")
    with pytest.raises(ValueError, match="bars.time: must increase"):
        data.frame_from_columns({**cols, "time": cols["time"][:5] + cols["time"][4:-1]})
    with pytest.raises(ValueError, match="bars.close: 19 values"):
        data.frame_from_columns({**cols, "close": [100.0] * (n - 1)})
    with pytest.raises(ValueError, match="bars.low: prices must be > 0"):
        data.frame_from_columns({**cols, "low": [0.0] * n})


def test_real_binance_layouts(shared_data):
    folder = shared_data / "binance_btcusdt_perp_1h_2023_2025"
    k = data.load_klines(str(folder / "BTCUSDT_fapi_klines_1h.csv"), "1h")
    assert k.report.partial_last_dropped and len(k.frame) == 24_882 and k.report.missing_bars == 0
    prem = data.load_klines(str(folder / "BTCUSDT_premiumIndexKlines_1h.csv"), "1h")  # same layout, OHLC = premium
    assert len(prem.frame) == 24_882 and prem.frame["close"].abs().max() < 0.05
    f = data.load_funding(str(folder / "BTCUSDT_fundingRate.csv"))
    assert len(f.frame) == 3_111
    oi = data.load_open_interest(str(folder / "BTCUSDT_openInterestHist_1h.csv"))
    assert len(oi.frame) == 500
    liq = data.load_liquidations(str(shared_data / "coinalyze_btc_daily_2020_2025" / "bitcoin_liquidation_history.csv"))
    assert len(liq.frame) == 1_841
    frame, _, warnings = data.load_dataset(str(folder), "BTCUSDT", "1h")
    assert frame["funding_rate"].notna().sum() > 3000 and frame["open_interest"].notna().sum() >= 499
    assert frame["taker_buy"].notna().all()


def test_the_folder_listing_and_the_loader_read_the_same_file_names(tmp_path):
    from backtest import datasets

    times = pd.date_range("2025-01-01", periods=30, freq="1h", tz="UTC")
    ohlcv = ["date,open,high,low,close,volume"] + [f"{t.isoformat()},100,101,99,100.5,10" for t in times]
    klines, mark, funding = (datasets.file_names(kind, "SOL", "1h") for kind in ("klines", "mark", "funding"))
    assert klines[1] == "SOL_USDT_USDT-1h-futures.csv" and mark[1] == "SOL_USDT_USDT-1h-mark.csv"
    write(tmp_path / klines[1], ohlcv)
    write(tmp_path / mark[1], ohlcv)
    settle = [T0 + h * HOUR for h in (0, 8, 16, 24)]
    write(
        tmp_path / funding[2],
        ["symbol,fundingTime,fundingRate,markPrice"] + [f"SOLUSDT,{t},0.0001,100" for t in settle],
    )
    write(tmp_path / "notes.csv", ["not,a,dataset"])
    listed = datasets.discover(str(tmp_path))
    assert listed == [{"name": tmp_path.name, "symbol": "SOLUSDT", "timeframe": "1h", "start": times[0].isoformat(),
                       "end": times[-1].isoformat(), "has_mark": True, "has_funding": True}]  # fmt: skip
    frame, reports, warnings = data.load_dataset(str(tmp_path), "SOL_USDT", "1h")
    assert [r.path for r in reports] == [str(tmp_path / name) for name in (klines[1], mark[1], funding[2])]
    assert len(frame) == 30 and int(frame["funding_rate"].notna().sum()) == 4
    assert not any("mark" in w or "funding" in w for w in warnings)
