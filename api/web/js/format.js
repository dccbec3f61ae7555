// Display formatting only: the API returns full-precision floats; a result keeps its raw value in data-value.

const nf = (digits, least = 0) =>
  new Intl.NumberFormat("en-US", { maximumFractionDigits: digits, minimumFractionDigits: Math.min(least, digits) });

/** Decimals that keep about six significant digits, capped to `max`. */
function decimalsFor(v, max) {
  const a = Math.abs(v);
  if (a === 0) return 0;
  const mag = Math.floor(Math.log10(a));
  return Math.max(0, Math.min(max, 5 - mag));
}

/**
 * Format one result value by kind:
 * price / money / qty (magnitude-aware decimals), rate (a decimal shown as a percent),
 * pct (already a percent), score (0–100, one decimal), num, int, text, time (an ISO string shown to the minute).
 */
export function format(value, kind = "num") {
  if (value === null || value === undefined) return "none";
  if (kind === "time") return String(value).slice(0, 16).replace("T", " ");
  if (typeof value !== "number") return String(value);
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) value = 0; // -0 (e.g. a short's zero PnL) reads as 0
  switch (kind) {
    case "price":
      return Math.abs(value) >= 1000 ? nf(2, 2).format(value) : nf(decimalsFor(value, 8)).format(value);
    case "money": // cents always shown from one unit up
      return Math.abs(value) >= 1 || value === 0 ? nf(2, 2).format(value) : nf(decimalsFor(value, 8)).format(value);
    case "qty":
      return nf(decimalsFor(value, 8)).format(value);
    case "rate": {
      const pct = value * 100;
      const mag = pct === 0 ? 0 : Math.floor(Math.log10(Math.abs(pct)));
      return `${nf(mag >= 0 ? 2 : Math.min(6, 2 - mag)).format(pct)} %`;
    }
    case "pct":
      return `${nf(2).format(value)} %`;
    case "score":
      return nf(1).format(value);
    case "int":
      return nf(0).format(value);
    case "text":
      return String(value);
    default:
      return nf(Math.abs(value) >= 1 ? 2 : 4).format(value);
  }
}
