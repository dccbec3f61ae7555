// What each tab asks for and shows. Field names are the API's JSON field paths (see /openapi.yaml), so an
// `errors` entry of a problem+json answer lands next to the input of the same path.

import { el } from "./form.js";
import { equityChart } from "./chart.js";
import { badge, list, table, warnings } from "./results.js";

const SIDE = { name: "side", label: "Side", kind: "radio", options: [["long", "Long"], ["short", "Short"]], value: "long" };
const CONTRACT = {
  name: "contract_type",
  label: "Contract",
  kind: "select",
  options: [["linear", "Linear (USDT/USDC-margined)"], ["inverse", "Inverse (coin-margined)"]],
  value: "linear",
};
const INVERSE_ONLY = { name: "contract_type", is: ["inverse"] };
const CONTRACT_SIZE = { name: "contract_size", label: "Contract size", kind: "number", unit: "USD per contract", when: INVERSE_ONLY, hint: "Default: from the symbol." };
const EXCHANGE = { name: "exchange", label: "Exchange", kind: "exchange", options: [["binance", "binance"]], value: "binance", hint: " " };
const SYMBOL = { name: "symbol", label: "Symbol", kind: "symbol", value: "BTCUSDT", hint: "The exchange's own instrument name." };
const ENTRY_PRICE = { name: "entry_price", label: "Entry price", kind: "number", value: "60000" };
const LEVERAGE = { name: "leverage", label: "Leverage", kind: "number", value: "20" };
const QUANTITY = { name: "quantity", label: "Quantity", kind: "number", value: "0.5" };
const FEES = [
  { name: "open_fee_rate", label: "Open fee rate", kind: "number", value: "0.0005", hint: "Decimal: 0.0005 = 0.05 %." },
  { name: "close_fee_rate", label: "Close fee rate", kind: "number", value: "0.0005" },
];

// ---- result views: a result is shown as a sequence of parts, each `(result, out) => node` (or nothing) -------

/** A renderer showing `parts` in order (all are built before any is shown, so each sees the empty result box). */
const view = (...parts) => (result, out) => {
  for (const node of parts.map((part) => part(result, out))) if (node) out.append(node);
};
/** The values `items` ([{key, label, fmt, lead}]) of the result. */
const values = (items) => (result) => list(result, items);
/** A table of the result's array at `key`. */
const rows = (key, columns, options) => (result) => table(result, key, columns, options);
/** A line with the coloured word of the result's `key` (a band, a regime). */
const word = (text, key) => (result) => el("p", { class: "band-line" }, text, badge(key, result[key]));
/** The result's warnings. */
const warned = (result) => warnings(result);

/** Default rendering: the listed values and the warnings. */
const show = (items) => view(values(items), warned);

// ---- liquidation price ---------------------------------------------------------------------------------

const LIQ_ITEMS = [
  { key: "liquidation_price", label: "Liquidation price", fmt: "price", lead: true },
  { key: "bankruptcy_price", label: "Bankruptcy price", fmt: "price" },
  { key: "distance_pct", label: "Distance from mark", fmt: "pct" },
  { key: "notional", label: "Notional", fmt: "money" },
  { key: "initial_margin", label: "Initial margin", fmt: "money" },
  { key: "maintenance_margin", label: "Maintenance margin", fmt: "money" },
  { key: "maintenance_margin_rate", label: "Maintenance margin rate", fmt: "rate" },
  { key: "maintenance_amount", label: "Maintenance amount", fmt: "money" },
  { key: "tier", label: "Tier at entry", fmt: "int" },
  { key: "liquidation_tier", label: "Tier at liquidation", fmt: "int" },
  { key: "max_leverage", label: "Tier's max leverage", fmt: "num" },
];

const liquidation = {
  id: "liq-one",
  title: "Liquidation price",
  mode: "One position",
  endpoint: "/v1/liquidation-price",
  about: "Where the exchange liquidates one position: isolated margin, or cross margin with the wallet balance.",
  fields: [
    { legend: "Market", fields: [EXCHANGE, SYMBOL, CONTRACT, CONTRACT_SIZE] },
    {
      legend: "Position",
      fields: [
        SIDE,
        { name: "margin_mode", label: "Margin mode", kind: "radio", options: [["isolated", "Isolated"], ["cross", "Cross"]], value: "isolated" },
        ENTRY_PRICE,
        { ...QUANTITY, hint: "Base units (linear) or contracts (inverse)." },
        { ...LEVERAGE, when: { name: "margin_mode", is: ["isolated"] } },
        { name: "wallet_balance", label: "Wallet balance", kind: "number", value: "5000", when: { name: "margin_mode", is: ["cross"] } },
        { name: "mark_price", label: "Mark price", kind: "number", hint: "Optional; default: the entry price." },
      ],
    },
    {
      legend: "Overrides (optional)",
      collapsed: true,
      fields: [
        { name: "margin", label: "Isolated margin incl. added margin", kind: "number", when: { name: "margin_mode", is: ["isolated"] } },
        { name: "maintenance_margin_rate", label: "Maintenance margin rate", kind: "number", hint: "Decimal; skips the tier table." },
        { name: "maintenance_amount", label: "Maintenance amount", kind: "number" },
        { name: "taker_fee_rate", label: "Taker fee rate", kind: "number" },
      ],
    },
  ],
  render: show(LIQ_ITEMS),
};

const portfolio = {
  id: "liq-many",
  title: "Portfolio liquidation",
  mode: "Several positions (cross account)",
  endpoint: "/v1/portfolio/liquidation",
  about: "One cross-margin wallet with several linear positions: each position's liquidation price with the others held.",
  fields: [
    { legend: "Account", fields: [EXCHANGE, { name: "wallet_balance", label: "Wallet balance", kind: "number", value: "10000" }] },
    {
      kind: "rows",
      name: "positions",
      legend: "Positions",
      item: "Position",
      min: 1,
      columns: [
        { name: "symbol", label: "Symbol", kind: "text" },
        { name: "side", label: "Side", kind: "select", options: [["long", "Long"], ["short", "Short"]] },
        { name: "entry_price", label: "Entry price", kind: "number" },
        { name: "quantity", label: "Quantity", kind: "number" },
        { name: "mark_price", label: "Mark price (optional)", kind: "number" },
      ],
      rows: [
        { symbol: "BTCUSDT", side: "long", entry_price: "60000", quantity: "0.5" },
        { symbol: "ETHUSDT", side: "short", entry_price: "3000", quantity: "5" },
      ],
    },
  ],
  render: view(
    values([
      { key: "margin_ratio", label: "Margin ratio", fmt: "rate", lead: true },
      { key: "margin_balance", label: "Margin balance", fmt: "money" },
      { key: "total_maintenance_margin", label: "Total maintenance margin", fmt: "money" },
      { key: "wallet_balance", label: "Wallet balance", fmt: "money" },
    ]),
    rows("positions", [
      { key: "symbol", label: "Symbol", fmt: "text" },
      { key: "side", label: "Side", fmt: "text" },
      { key: "liquidation_price", label: "Liquidation price", fmt: "price" },
      { key: "notional", label: "Notional", fmt: "money" },
      { key: "maintenance_margin", label: "Maint. margin", fmt: "money" },
      { key: "unrealized_pnl", label: "Unrealised PnL", fmt: "money" },
      { key: "tier", label: "Tier", fmt: "int" },
    ], { caption: "Positions" }),
    warned,
  ),
};

// ---- calculators ---------------------------------------------------------------------------------------

const pnl = {
  id: "pnl",
  title: "PnL / ROE",
  endpoint: "/v1/pnl",
  about: "Profit and return on margin of a closed (or marked) position, after fees and funding.",
  fields: [
    SIDE,
    CONTRACT,
    CONTRACT_SIZE,
    ENTRY_PRICE,
    { name: "exit_price", label: "Exit price", kind: "number", value: "63000" },
    QUANTITY,
    LEVERAGE,
    ...FEES,
    { name: "funding_paid", signed: true, label: "Funding paid", kind: "number", value: "0", hint: "Positive = paid, negative = received." },
  ],
  render: show([
    { key: "net_pnl", label: "Net PnL", fmt: "money", lead: true },
    { key: "net_roe", label: "Net ROE", fmt: "rate", lead: true },
    { key: "pnl", label: "PnL before fees", fmt: "money" },
    { key: "roe", label: "ROE before fees", fmt: "rate" },
    { key: "pnl_pct", label: "PnL of notional", fmt: "pct" },
    { key: "fees", label: "Fees", fmt: "money" },
    { key: "initial_margin", label: "Initial margin", fmt: "money" },
  ]),
};

const target = {
  id: "target",
  title: "Target price",
  endpoint: "/v1/target-price",
  about: "The exit price that gives a chosen return on margin.",
  fields: [
    SIDE,
    CONTRACT,
    ENTRY_PRICE,
    LEVERAGE,
    { name: "target_roe", signed: true, label: "Target ROE", kind: "number", value: "0.5", hint: "Decimal: 0.5 = +50 %, -0.2 = -20 %." },
  ],
  render: show([{ key: "target_price", label: "Target price", fmt: "price", lead: true }]),
};

const maxOpen = {
  id: "max-open",
  title: "Max open",
  endpoint: "/v1/max-open",
  about: "The largest position the balance can open at a leverage, within the tier limits.",
  fields: [
    EXCHANGE,
    SYMBOL,
    SIDE,
    ENTRY_PRICE,
    LEVERAGE,
    { name: "available_balance", label: "Available balance", kind: "number", value: "1000" },
    { name: "taker_fee_rate", label: "Taker fee rate", kind: "number", hint: "Optional; default: the exchange's." },
  ],
  render: show([
    { key: "max_quantity", label: "Max quantity", fmt: "qty", lead: true },
    { key: "max_notional", label: "Max notional", fmt: "money" },
    { key: "cost_per_unit", label: "Cost per unit", fmt: "money" },
    { key: "tier_notional_cap", label: "Tier notional cap", fmt: "money" },
    { key: "limited_by", label: "Limited by", fmt: "text" },
  ]),
};

const averageEntry = {
  id: "average",
  title: "Average entry",
  endpoint: "/v1/average-entry",
  about: "The average entry price of several fills (quantity-weighted; harmonic for inverse contracts).",
  fields: [
    CONTRACT,
    {
      kind: "rows",
      name: "fills",
      legend: "Fills",
      item: "Fill",
      min: 1,
      columns: [
        { name: "price", label: "Price", kind: "number" },
        { name: "quantity", label: "Quantity", kind: "number" },
      ],
      rows: [
        { price: "60000", quantity: "0.1" },
        { price: "58000", quantity: "0.2" },
      ],
    },
  ],
  // the engine names the columns it checks `prices` / `quantities` and the first bad index in the message
  alias: (path, message) => {
    const col = { prices: "price", quantities: "quantity" }[path];
    if (!col) return path;
    const m = /index (\d+)/.exec(message);
    return m ? `fills[${m[1]}].${col}` : "fills";
  },
  render: show([
    { key: "average_entry_price", label: "Average entry price", fmt: "price", lead: true },
    { key: "total_quantity", label: "Total quantity", fmt: "qty" },
  ]),
};

const breakEven = {
  id: "break-even",
  title: "Break-even",
  endpoint: "/v1/break-even",
  about: "The exit price at which the position neither gains nor loses after the opening and closing fees.",
  fields: [
    SIDE,
    ENTRY_PRICE,
    ...FEES,
    { name: "funding_paid", signed: true, label: "Funding paid", kind: "number", hint: "Optional; with a quantity, moves the price by funding." },
    { name: "quantity", label: "Quantity", kind: "number" },
  ],
  render: show([{ key: "break_even_price", label: "Break-even price", fmt: "price", lead: true }]),
};

const funding = {
  id: "funding",
  title: "Funding",
  endpoint: "/v1/funding",
  about: "Funding payments over intervals: one mark price and one funding rate per interval.",
  fields: [
    SIDE,
    CONTRACT,
    CONTRACT_SIZE,
    QUANTITY,
    { name: "mark_prices", label: "Mark prices", kind: "list", value: "60000 60250 59900 60400", hint: "One per interval; separate by spaces, commas or lines.", wide: true },
    { name: "funding_rates", label: "Funding rates", kind: "list", value: "0.0001 0.0001 -0.00005 0.0002", hint: "Decimals per interval (0.0001 = 0.01 %).", wide: true },
  ],
  render: view(
    values([{ key: "total", label: "Total (+ pays, − receives)", fmt: "money", lead: true }]),
    rows("payments", [
      { key: "#", label: "Interval" },
      { key: ".", label: "Payment", fmt: "money" },
    ], { caption: "Payments" }),
  ),
};

// ---- risk and market -----------------------------------------------------------------------------------

const probability = {
  id: "probability",
  title: "Liquidation probability",
  endpoint: "/v1/risk/liquidation-probability",
  about: "The chance that the mark price touches the liquidation price within a horizon.",
  fields: [
    SIDE,
    { name: "mark_price", label: "Mark price", kind: "number", value: "60000" },
    { name: "liquidation_price", label: "Liquidation price", kind: "number", value: "57000" },
    { name: "volatility", label: "Volatility", kind: "number", value: "0.6", hint: "Annualised, decimal: 0.6 = 60 %." },
    { name: "horizon_hours", label: "Horizon", kind: "number", unit: "hours", value: "168" },
    { name: "model", label: "Model", kind: "select", options: [["gbm", "Geometric Brownian motion"], ["student_t", "Student-t (fat tails, Monte Carlo)"]], value: "gbm" },
    { name: "drift", signed: true, label: "Drift", kind: "number", hint: "Optional; annualised, decimal." },
  ],
  render: view(
    word("Band: ", "band"),
    values([
      { key: "probability", label: "Probability", fmt: "rate", lead: true },
      { key: "score", label: "Score (0–100)", fmt: "score" },
      { key: "distance_sigmas", label: "Distance to liquidation (σ)", fmt: "num" },
      { key: "volatility", label: "Volatility used", fmt: "rate" },
      { key: "standard_error", label: "Standard error", fmt: "rate" },
    ]),
  ),
};

const positionSize = {
  id: "position-size",
  title: "Position size",
  endpoint: "/v1/risk/position-size",
  about: "How large a position can be so that a stop loses only the chosen share of equity, and the leverage that keeps liquidation beyond the stop.",
  fields: [
    EXCHANGE,
    SYMBOL,
    SIDE,
    { name: "equity", label: "Equity", kind: "number", value: "10000" },
    { name: "risk_fraction", label: "Risk per trade", kind: "number", value: "0.01", hint: "Decimal: 0.01 = 1 % of equity." },
    ENTRY_PRICE,
    { name: "stop_price", label: "Stop price", kind: "number", value: "58000" },
    { name: "leverage", label: "Leverage", kind: "number", hint: "Optional; default: the recommended leverage." },
  ],
  render: show([
    { key: "quantity", label: "Quantity", fmt: "qty", lead: true },
    { key: "notional", label: "Notional", fmt: "money" },
    { key: "risk_amount", label: "Risk amount", fmt: "money" },
    { key: "recommended_leverage", label: "Recommended leverage", fmt: "num" },
    { key: "max_leverage_beyond_stop", label: "Max leverage with liquidation beyond the stop", fmt: "num" },
    { key: "liquidation_price", label: "Liquidation price", fmt: "price" },
  ]),
};

/** An example market to start from: 48 hourly bars of a crowded short (falling funding, rising open interest). */
function sampleSeries() {
  const n = 48;
  const r = (i) => Math.round(i * 1e4) / 1e4;
  const close = Array.from({ length: n }, (_, i) => r(60000 + 400 * Math.sin(i / 5) + 25 * i));
  const funding = Array.from({ length: n }, (_, i) => r(0.0001 - 0.000012 * i) / 1);
  const oi = Array.from({ length: n }, (_, i) => Math.round(1.2e9 * (1 + 0.004 * i)));
  const ls = Array.from({ length: n }, (_, i) => r(1.1 - 0.008 * i));
  return { close, funding, oi, ls };
}
const S = sampleSeries();

const SERIES = ["close", "funding_rate", "open_interest", "long_short_ratio"];

/** A box to paste a CSV with a header row (close, funding_rate, open_interest, long_short_ratio, any order). */
function csvPaste(form) {
  const box = el("details", { class: "paste" }, el("summary", { text: "Paste a CSV instead" }));
  const area = el("textarea", { id: "squeeze-csv", rows: 4, spellcheck: "false", placeholder: "close,funding_rate,open_interest,long_short_ratio" });
  const status = el("p", { class: "hint", "aria-live": "polite" });
  const button = el("button", { type: "button", class: "secondary", text: "Fill the series from the CSV" });
  button.addEventListener("click", () => {
    const lines = area.value.trim().split(/\r?\n/).filter((l) => l.trim() !== "");
    const head = (lines.shift() || "").split(/[,;\t]/).map((h) => h.trim().toLowerCase());
    const missing = SERIES.filter((name) => !head.includes(name));
    if (missing.length) {
      status.textContent = `The header row needs the columns ${missing.join(", ")}.`;
      return;
    }
    const rows = lines.map((l) => l.split(/[,;\t]/).map((c) => c.trim()));
    for (const name of SERIES) {
      const i = head.indexOf(name);
      form.querySelector(`[data-path="series.${name}"]`).value = rows.map((r) => r[i] ?? "").join(" ");
    }
    status.textContent = `${rows.length} rows read into the four series below.`;
  });
  box.append(el("label", { for: "squeeze-csv", text: "CSV with a header row" }), area, button, status);
  return box;
}

const squeeze = {
  id: "squeeze",
  title: "Squeeze score",
  endpoint: "/v1/market/squeeze-score",
  about: "How crowded one side of the market is (funding, open interest, long/short ratio, RSI), from series you paste.",
  extra: csvPaste,
  fields: [
    { name: "series.close", label: "Close prices", kind: "list", value: S.close.join(" "), wide: true, rows: 2 },
    { name: "series.funding_rate", label: "Funding rates", kind: "list", value: S.funding.join(" "), wide: true, rows: 2, hint: "Decimal per funding interval." },
    { name: "series.open_interest", label: "Open interest", kind: "list", value: S.oi.join(" "), wide: true, rows: 2 },
    { name: "series.long_short_ratio", label: "Long/short ratio", kind: "list", value: S.ls.join(" "), wide: true, rows: 2 },
    {
      legend: "Settings (optional)",
      collapsed: true,
      fields: [
        { name: "funding_interval_hours", label: "Funding interval", kind: "number", unit: "hours" },
        { name: "lookback", label: "Lookback", kind: "int", unit: "bars" },
        { name: "rsi_period", label: "RSI period", kind: "int", unit: "bars" },
      ],
    },
  ],
  render: view(
    word("Regime: ", "regime"),
    values([
      { key: "score", label: "Score (0–100)", fmt: "score", lead: true },
      { key: "short_squeeze_score", label: "Short-squeeze score", fmt: "score" },
      { key: "long_squeeze_score", label: "Long-squeeze score", fmt: "score" },
      { key: "components.funding_rate_annualized", label: "Funding, annualised", fmt: "rate" },
      { key: "components.funding_z", label: "Funding z-score", fmt: "num" },
      { key: "components.open_interest_change", label: "Open-interest change", fmt: "rate" },
      { key: "components.long_short_ratio_percentile", label: "Long/short ratio percentile", fmt: "score" },
      { key: "components.rsi", label: "RSI", fmt: "score" },
      { key: "components.rsi_band", label: "RSI band", fmt: "text" },
    ]),
    warned,
  ),
};

// ---- backtest ------------------------------------------------------------------------------------------

const backtest = {
  id: "backtest",
  title: "Backtest",
  endpoint: "/v1/backtests",
  submit: "Run backtest",
  progress: true,
  about: "The squeeze-breakout strategy with leverage, stops, fees, funding and liquidation on the mark price, over a synthetic market (generated, not real prices).",
  fixed: { dataset: { name: "synthetic" }, include_trades: true, equity_points: 400 },
  fields: [
    {
      legend: "Data (synthetic)",
      fields: [
        { name: "dataset.bars", label: "Bars", kind: "int", value: "3000" },
        { name: "dataset.timeframe", label: "Timeframe", kind: "select", options: [["5m", "5m"], ["15m", "15m"], ["1h", "1h"], ["4h", "4h"], ["1d", "1d"]], value: "1h" },
        { name: "dataset.seed", label: "Seed", kind: "int", value: "7" },
      ],
    },
    {
      legend: "Strategy",
      fields: [
        { ...SIDE, name: "strategy.side" },
        { ...EXCHANGE, name: "strategy.exchange", label: "Exchange rules" },
        { ...SYMBOL, name: "strategy.symbol" },
        { name: "strategy.leverage", label: "Leverage", kind: "number", value: "3" },
        { name: "strategy.stop_pct", label: "Stop", kind: "number", value: "0.04", hint: "Decimal from entry: 0.04 = 4 %." },
        { name: "strategy.take_profit_pct", label: "Take profit", kind: "number", value: "0.12" },
        { name: "strategy.size_value", label: "Share of equity per trade", kind: "number", value: "0.25" },
        { name: "strategy.init_cash", label: "Starting cash", kind: "number", value: "10000" },
        { name: "strategy.fee_rate", label: "Fee rate", kind: "number", value: "0.0005" },
      ],
    },
    {
      legend: "Entry and exit rules (optional; defaults from the strategy)",
      collapsed: true,
      fields: [
        { name: "strategy.breakout_window", label: "Breakout window", kind: "int", unit: "bars" },
        { name: "strategy.surge_mult", label: "Volume surge multiple", kind: "number" },
        { name: "strategy.funding_threshold", signed: true, label: "Funding threshold", kind: "number", hint: "Decimal per interval." },
        { name: "strategy.time_stop", label: "Time stop", kind: "int", unit: "bars" },
        { name: "strategy.rsi_level", label: "RSI exit level", kind: "number" },
        { name: "strategy.slippage", label: "Slippage", kind: "number", hint: "Decimal of price." },
      ],
    },
  ],
  render: view(
    (result) => el("p", { class: "period" }, `${result.bars} bars, ${result.start.slice(0, 16).replace("T", " ")} to ${result.end.slice(0, 16).replace("T", " ")} UTC (synthetic data)`),
    values([
      { key: "metrics.total_return", label: "Total return", fmt: "rate", lead: true },
      { key: "metrics.max_drawdown", label: "Max drawdown", fmt: "rate", lead: true },
      { key: "metrics.cagr", label: "CAGR", fmt: "rate" },
      { key: "metrics.sharpe", label: "Sharpe", fmt: "num" },
      { key: "metrics.sortino", label: "Sortino", fmt: "num" },
      { key: "metrics.trades", label: "Trades", fmt: "int" },
      { key: "metrics.win_rate", label: "Win rate", fmt: "rate" },
      { key: "metrics.profit_factor", label: "Profit factor", fmt: "num" },
      { key: "metrics.exposure", label: "Exposure", fmt: "rate" },
      { key: "metrics.fees_paid", label: "Fees paid", fmt: "money" },
      { key: "metrics.funding_paid", label: "Funding paid", fmt: "money" },
      { key: "metrics.liquidations", label: "Liquidations", fmt: "int" },
    ]),
    (result, out) => {
      const start = Number(result.strategy?.init_cash ?? result.equity.equity[0]);
      return el("figure", { class: "chart-box" }, equityChart(result.equity.time, result.equity.equity, { start, width: out.parentElement.clientWidth }), el("figcaption", { text: "Equity (quote currency); the dashed line is the starting cash." }));
    },
    warned,
    rows("trades", [
      { key: "#", label: "#" },
      { key: "side", label: "Side", fmt: "text" },
      { key: "entry_time", label: "Entry (UTC)", fmt: "time" },
      { key: "entry_price", label: "Entry", fmt: "price" },
      { key: "exit_time", label: "Exit (UTC)", fmt: "time" },
      { key: "exit_price", label: "Exit", fmt: "price" },
      { key: "exit_reason", label: "Reason", fmt: "text" },
      { key: "pnl", label: "PnL", fmt: "money" },
      { key: "fees", label: "Fees", fmt: "money" },
      { key: "funding", label: "Funding", fmt: "money" },
    ], { caption: "Trades", limit: 100 }),
  ),
};

/** The tabs in order; a tab with several forms shows a switch between them. */
export const TABS = [
  { id: "liquidation", title: "Liquidation", forms: [liquidation, portfolio] },
  { id: "pnl", title: "PnL / ROE", forms: [pnl] },
  { id: "target", title: "Target price", forms: [target] },
  { id: "max-open", title: "Max open", forms: [maxOpen] },
  { id: "average", title: "Average entry", forms: [averageEntry] },
  { id: "break-even", title: "Break-even", forms: [breakEven] },
  { id: "funding", title: "Funding", forms: [funding] },
  { id: "probability", title: "Liq. probability", forms: [probability] },
  { id: "position-size", title: "Position size", forms: [positionSize] },
  { id: "squeeze", title: "Squeeze score", forms: [squeeze] },
  { id: "backtest", title: "Backtest", forms: [backtest] },
];
