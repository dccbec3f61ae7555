// An equity curve as inline SVG built with DOM calls (no inline script or style, so the page's CSP holds).

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

const money = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/**
 * Draw `values` (equity in quote currency) over `times` (ISO strings) with the starting cash as a baseline.
 * Returns an <svg role="img"> whose title and description say what it shows in words.
 */
export function equityChart(times, values, { start, width } = {}) {
  const W = Math.max(300, Math.round(width || 640)); // drawn at its real width, so text keeps its size
  const H = W < 560 ? 220 : 300;
  const pad = { l: 64, r: 12, t: 14, b: 34 };
  const n = values.length;
  const base = start ?? values[0];
  const lo = Math.min(base, ...values);
  const hi = Math.max(base, ...values);
  const span = hi - lo || Math.abs(hi) || 1;
  const x = (i) => pad.l + ((W - pad.l - pad.r) * i) / Math.max(1, n - 1);
  const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - (v - lo) / span);
  const first = times[0]?.slice(0, 10) ?? "";
  const last = times[n - 1]?.slice(0, 10) ?? "";
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart", "aria-labelledby": "eq-title eq-desc" });
  root.append(svg("title", { id: "eq-title" }, "Equity curve"));
  root.append(
    svg("desc", { id: "eq-desc" }, `Equity from ${money.format(values[0])} on ${first} to ${money.format(values[n - 1])} on ${last}; low ${money.format(Math.min(...values))}, high ${money.format(Math.max(...values))}.`),
  );
  for (const v of [lo, (lo + hi) / 2, hi]) {
    root.append(svg("line", { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: "grid" }));
    root.append(svg("text", { x: pad.l - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, money.format(v)));
  }
  root.append(svg("line", { x1: pad.l, x2: W - pad.r, y1: y(base), y2: y(base), class: "baseline" }));
  root.append(svg("text", { x: pad.l, y: H - 10, class: "axis" }, first));
  root.append(svg("text", { x: W - pad.r, y: H - 10, "text-anchor": "end", class: "axis" }, last));
  const points = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const up = values[n - 1] >= base;
  root.append(svg("polyline", { points, class: up ? "curve up" : "curve down" }));
  return root;
}
