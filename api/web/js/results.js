// Result rendering: every shown number keeps the API's raw value in data-value and its path in data-key.

import { el } from "./form.js";
import { format } from "./format.js";

function get(obj, path) {
  return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function valueNode(tag, key, value, kind) {
  const node = el(tag, { "data-key": key, text: format(value, kind) });
  node.dataset.value = value === null || value === undefined ? "null" : String(value);
  node.dataset.fmt = kind;
  return node;
}

/** A definition list of `items` ([{key, label, fmt}]) read from `result`; absent keys are skipped. */
export function list(result, items) {
  const dl = el("dl", { class: "values" });
  for (const { key, label, fmt, lead } of items) {
    const value = get(result, key);
    if (value === undefined) continue;
    dl.append(el("div", { class: lead ? "kv lead" : "kv" }, el("dt", { text: label }), valueNode("dd", key, value, fmt)));
  }
  return dl;
}

/** A table of rows (an array in the result at `key`), columns [{key, label, fmt}]; at most `limit` rows. */
export function table(result, key, columns, { caption, limit = 200 } = {}) {
  const rows = get(result, key) || [];
  const wrap = el("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": caption });
  const t = el("table");
  if (caption) {
    const more = rows.length > limit ? ` (first ${limit} of ${rows.length})` : "";
    t.append(el("caption", { text: caption + more }));
  }
  const head = el("tr", {}, ...columns.map((c) => el("th", { scope: "col", text: c.label })));
  t.append(el("thead", {}, head));
  const tbody = el("tbody");
  rows.slice(0, limit).forEach((row, i) => {
    const tr = el("tr");
    for (const c of columns) {
      if (c.key === "#") tr.append(el("td", { text: String(i + 1) }));
      else if (c.key === ".") tr.append(valueNode("td", `${key}.${i}`, row, c.fmt));
      else tr.append(valueNode("td", `${key}.${i}.${c.key}`, row[c.key], c.fmt));
    }
    tbody.append(tr);
  });
  t.append(tbody);
  wrap.append(t);
  return wrap;
}

/** The text of one warning: the routes give a string or a `{code, message}` object. */
const warningText = (w) => (typeof w === "string" ? w : (w && (w.message || w.code)) || String(w));

/** The result's `warnings`, when there are any. */
export function warnings(result) {
  const w = result.warnings || [];
  if (!w.length) return null;
  return el("div", { class: "warnings" }, el("p", { text: "Warnings" }), el("ul", {}, ...w.map((t) => el("li", { text: warningText(t) }))));
}

/** A coloured label for a band or regime word (the word itself is the information; colour only repeats it). */
export function badge(key, value) {
  const node = el("span", { class: `badge badge-${String(value).replace(/[^a-z0-9_]+/gi, "-")}`, "data-key": key, text: String(value) });
  node.dataset.value = String(value);
  return node;
}
