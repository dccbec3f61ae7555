// Builds an accessible form from a declaration (calculators.js), turns it into the JSON body of a /v1 call, and
// shows the API's problem+json `errors` next to the input whose field path they name.

import { listExchanges } from "./api.js";

let uid = 0;
const nextId = (stem) => `${stem}-${++uid}`;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}
export { el };

/** "positions[0].side" → ["positions", 0, "side"] */
export function splitPath(path) {
  const out = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  return out;
}

function setPath(obj, path, value) {
  const keys = splitPath(path);
  let node = obj;
  keys.forEach((k, i) => {
    if (i === keys.length - 1) {
      node[k] = value;
      return;
    }
    if (node[k] === undefined) node[k] = typeof keys[i + 1] === "number" ? [] : {};
    node = node[k];
  });
}

/** A number typed by a person: "60,000" → 60000; text that is no number is sent as typed, so the API names it. */
function parseNumber(text) {
  const s = text.trim();
  if (s === "") return undefined;
  const n = Number(s.replace(/[,_\s]/g, ""));
  return Number.isFinite(n) ? n : s;
}

function parseList(text) {
  const parts = text.split(/[\s,;]+/).filter((p) => p !== "");
  if (parts.length === 0) return undefined;
  return parts.map((p) => {
    const n = Number(p);
    return Number.isFinite(n) ? n : p;
  });
}

function readControl(c) {
  const kind = c.dataset.kind;
  if (kind === "radio") {
    const checked = c.querySelector("input:checked");
    return checked ? checked.value : undefined;
  }
  if (kind === "bool") return c.checked;
  if (kind === "list") return parseList(c.value);
  if (kind === "number" || kind === "int") return parseNumber(c.value);
  const s = c.value.trim();
  return s === "" ? undefined : s;
}

// ---- building -------------------------------------------------------------------------------------------

function errorSlot(id) {
  return el("p", { class: "err", id, hidden: true });
}

function buildField(f, ctx, path = f.name) {
  const id = nextId(`${ctx.formId}-${path.replace(/[^a-z0-9]+/gi, "-")}`);
  const errId = `${id}-err`;
  const hintId = f.hint ? `${id}-hint` : undefined;
  const describedBy = [hintId, errId].filter(Boolean).join(" ");
  const wrap = el("div", { class: `field field-${f.kind}${f.wide ? " wide" : ""}` });
  let control;
  if (f.kind === "radio") {
    control = el("fieldset", { class: "radio", "data-kind": "radio", "aria-describedby": describedBy });
    control.append(el("legend", { text: f.label }));
    const row = el("div", { class: "choices" });
    for (const [value, label] of f.options) {
      const rid = nextId(id);
      const input = el("input", { type: "radio", id: rid, name: id, value, checked: value === f.value });
      row.append(el("span", { class: "choice" }, input, el("label", { for: rid, text: label })));
    }
    control.append(row);
    wrap.append(control);
  } else {
    const label = el("label", { for: id, text: f.label });
    if (f.unit) label.append(el("span", { class: "unit", text: ` (${f.unit})` }));
    if (f.kind === "select" || f.kind === "exchange") {
      control = el("select", { id, "aria-describedby": describedBy });
      for (const [value, text] of f.options || []) control.append(el("option", { value, text, selected: value === f.value }));
    } else if (f.kind === "list") {
      control = el("textarea", { id, rows: f.rows || 3, spellcheck: "false", "aria-describedby": describedBy });
      control.value = f.value ?? "";
    } else if (f.kind === "bool") {
      control = el("input", { id, type: "checkbox", checked: f.value === true, "aria-describedby": describedBy });
    } else {
      const numeric = f.kind === "number" || f.kind === "int";
      control = el("input", {
        id,
        type: "text",
        // phone keypads for "decimal" have no minus sign: signed fields get the full keyboard
        inputmode: numeric && !f.signed ? (f.kind === "int" ? "numeric" : "decimal") : undefined,
        autocomplete: "off",
        spellcheck: "false",
        placeholder: f.placeholder,
        "aria-describedby": describedBy,
      });
      control.value = f.value ?? "";
      if (f.kind === "symbol") {
        const listId = `${id}-list`;
        control.setAttribute("list", listId);
        wrap.append(el("datalist", { id: listId }));
      }
    }
    control.dataset.kind = f.kind;
    if (f.kind === "bool") wrap.append(control, label);
    else wrap.append(label, control);
  }
  control.dataset.path = path;
  control.dataset.err = errId;
  if (f.hint) wrap.append(el("p", { class: "hint", id: hintId, text: f.hint }));
  wrap.append(errorSlot(errId));
  if (f.when) ctx.conditional.push({ wrap, control, when: f.when });
  if (f.kind === "exchange") ctx.exchangeSelect = control;
  if (f.kind === "symbol") ctx.symbolInput = control;
  return wrap;
}

function buildRows(r, ctx) {
  const errId = nextId(`${ctx.formId}-${r.name}-err`);
  const set = el("fieldset", { class: "rows", "data-path": r.name, "data-err": errId });
  set.append(el("legend", { text: r.legend }));
  if (r.hint) set.append(el("p", { class: "hint", text: r.hint }));
  const list = el("ol", { class: "row-list" });
  set.append(list, errorSlot(errId));
  const renumber = () => {
    [...list.children].forEach((li, i) => {
      li.dataset.path = `${r.name}[${i}]`;
      li.querySelector(".row-title").textContent = `${r.item} ${i + 1}`;
      for (const c of li.querySelectorAll("[data-path]")) {
        if (c === li) continue;
        c.dataset.path = `${r.name}[${i}].${c.dataset.col}`;
      }
      li.querySelector("button.remove").disabled = list.children.length <= (r.min || 1);
    });
  };
  const addRow = (defaults = {}) => {
    const rowErr = nextId(`${ctx.formId}-${r.name}-row-err`);
    const li = el("li", { class: "row", "data-err": rowErr });
    li.append(el("p", { class: "row-title" }));
    const grid = el("div", { class: "row-fields" });
    for (const col of r.columns) {
      const field = buildField({ ...col, value: defaults[col.name] ?? col.value }, ctx, `${r.name}[0].${col.name}`);
      const control = field.querySelector("[data-path]");
      control.dataset.col = col.name;
      grid.append(field);
    }
    const remove = el("button", { type: "button", class: "remove secondary", text: `Remove ${r.item.toLowerCase()}` });
    remove.addEventListener("click", () => {
      li.remove();
      renumber();
      list.lastElementChild?.querySelector("input, select")?.focus();
    });
    li.append(grid, remove, errorSlot(rowErr));
    list.append(li);
    renumber();
    return li;
  };
  for (const d of r.rows) addRow(d);
  const add = el("button", { type: "button", class: "add secondary", text: `Add ${r.item.toLowerCase()}` });
  add.addEventListener("click", () => addRow({})?.querySelector("input, select")?.focus());
  set.append(add);
  return set;
}

function buildItems(items, ctx, parent) {
  for (const item of items) {
    if (item.kind === "rows") parent.append(buildRows(item, ctx));
    else if (item.legend) {
      const set = el("fieldset", { class: "group" }, el("legend", { text: item.legend }));
      if (item.collapsed) {
        const details = el("details", {}, el("summary", { text: item.legend }));
        const inner = el("div", { class: "grid" });
        buildItems(item.fields, ctx, inner);
        details.append(inner);
        parent.append(el("div", { class: "group-more" }, details));
        continue;
      }
      const inner = el("div", { class: "grid" });
      buildItems(item.fields, ctx, inner);
      set.append(inner);
      parent.append(set);
    } else parent.append(buildField(item, ctx));
  }
}

function controls(form) {
  return [...form.querySelectorAll("[data-kind]")].filter((c) => !c.closest("[hidden]") && !c.disabled);
}

function valueOf(form, path) {
  const c = form.querySelector(`[data-path="${path}"]`);
  return c ? readControl(c) : undefined;
}

function applyConditions(form, ctx) {
  for (const { wrap, control, when } of ctx.conditional) {
    const shown = when.is.includes(valueOf(form, when.name));
    wrap.hidden = !shown;
    control.disabled = !shown;
  }
}

async function wireExchange(ctx) {
  const select = ctx.exchangeSelect;
  if (!select) return;
  const all = await listExchanges();
  if (!all.length) {
    // keep the built-in choice (the API's answer says what is wrong) and try again when the picker is used
    select.addEventListener("focus", () => wireExchange(ctx), { once: true });
    return;
  }
  if (select.dataset.wired) return;
  select.dataset.wired = "true";
  const current = select.value;
  select.replaceChildren(...all.map((x) => el("option", { value: x.exchange, text: x.exchange, selected: x.exchange === current })));
  const hint = select.parentElement.querySelector(".hint");
  const sync = (resetSymbol) => {
    const x = all.find((e) => e.exchange === select.value);
    if (!x) return;
    if (hint) {
      hint.replaceChildren("Rules from ", el("a", { href: x.source, rel: "noreferrer", text: new URL(x.source).hostname }));
    }
    const sym = ctx.symbolInput;
    if (!sym) return;
    const list = document.getElementById(sym.getAttribute("list"));
    list.replaceChildren(...x.symbols.map((s) => el("option", { value: s })));
    if (resetSymbol && !x.symbols.includes(sym.value)) sym.value = x.default_symbol;
  };
  select.addEventListener("change", () => sync(true));
  sync(false);
}

/**
 * Build a form from its declaration. Returns the <form>; submitting it calls `decl.run(body, ui)` (default:
 * POST decl.endpoint) and shows the result with `render(result, out)` or the errors by field.
 */
export function buildForm(decl, { run, render }) {
  const formId = decl.id;
  const ctx = { formId, conditional: [] };
  const form = el("form", { class: "calc", id: formId, novalidate: true, "aria-describedby": `${formId}-about` });
  form.dataset.endpoint = decl.endpoint;
  form.append(el("p", { class: "about", id: `${formId}-about`, text: decl.about }));
  const body = el("div", { class: "grid" });
  buildItems(decl.fields, ctx, body);
  if (decl.extra) form.append(decl.extra(form));
  form.append(body);
  const submit = el("button", { type: "submit", class: "primary", text: decl.submit || "Calculate" });
  const actions = el("div", { class: "actions" }, submit);
  const progress = decl.progress ? el("progress", { max: 1, value: 0, hidden: true, "aria-label": "Progress" }) : null;
  if (progress) actions.append(progress);
  form.append(actions);
  const summary = el("div", { class: "problem", role: "alert", hidden: true });
  const out = el("section", { class: "result", "aria-live": "polite", "aria-label": `${decl.title} result` });
  form.append(summary, out);
  form.addEventListener("change", () => applyConditions(form, ctx));
  applyConditions(form, ctx);
  wireExchange(ctx);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form, summary);
    const request = { ...(decl.fixed ? structuredClone(decl.fixed) : {}) };
    for (const c of controls(form)) {
      const v = readControl(c);
      if (v !== undefined) setPath(request, c.dataset.path, v);
    }
    submit.disabled = true;
    form.setAttribute("aria-busy", "true");
    form.dataset.state = "busy";
    try {
      const answer = await run(request, { progress });
      if (answer.ok) {
        out.replaceChildren();
        render(answer.body, out, request);
        form.dataset.state = "done";
      } else {
        out.replaceChildren();
        showErrors(form, summary, answer.body, decl.alias);
        form.dataset.state = "error";
      }
    } finally {
      submit.disabled = false;
      form.removeAttribute("aria-busy");
      if (progress) progress.hidden = true;
    }
  });
  return form;
}

function clearErrors(form, summary) {
  summary.hidden = true;
  summary.replaceChildren();
  for (const p of form.querySelectorAll(".err")) {
    p.hidden = true;
    p.textContent = "";
  }
  for (const c of form.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
}

/** The element that stands for a field path: the control itself, else its row or list, else none. */
function target(form, path) {
  let keys = splitPath(path);
  while (keys.length) {
    const p = keys.reduce((acc, k) => (typeof k === "number" ? `${acc}[${k}]` : acc ? `${acc}.${k}` : k), "");
    const node = [...form.querySelectorAll("[data-path]")].find((n) => n.dataset.path === p && !n.closest("[hidden]"));
    if (node) return node;
    keys = keys.slice(0, -1);
  }
  return null;
}

/** The part of a path below the input it is shown at: "[2]" → "value 3", ".quantity" → "quantity". */
function where(rest) {
  const m = /^\[(\d+)\]$/.exec(rest);
  return m ? `value ${Number(m[1]) + 1}` : rest.replace(/^\./, "");
}

/** Show a problem: each `errors` entry next to the input it names, the rest (and the detail) in the summary. */
export function showErrors(form, summary, problem, alias) {
  const loose = [];
  let first = null;
  for (const [rawPath, messages] of Object.entries(problem.errors || {})) {
    const text = [].concat(messages).map(String).join("; ");
    const path = alias ? alias(rawPath, text) : rawPath;
    const node = path === "body" ? null : target(form, path);
    if (!node) {
      loose.push(`${rawPath}: ${text}`);
      continue;
    }
    const slot = document.getElementById(node.dataset.err);
    slot.textContent = node.dataset.path === path ? text : `${where(path.slice(node.dataset.path.length))}: ${text}`;
    slot.hidden = false;
    node.setAttribute("aria-invalid", "true");
    first ??= node;
  }
  const head = el("p", { text: `${problem.title || "Error"} (${problem.status}): ${problem.detail || ""}` });
  summary.replaceChildren(head);
  if (loose.length) summary.append(el("ul", {}, ...loose.map((t) => el("li", { text: t }))));
  summary.hidden = false;
  if ("X-API-Key" in (problem.errors || {})) {
    const settings = document.querySelector("details.settings");
    if (settings) settings.open = true; // the key is entered there
  }
  const focusable = first && (first.matches("input, select, textarea") ? first : first.querySelector("input, select, textarea"));
  focusable?.focus();
}
