// Builds the page: one tab per calculator, each form wired to its /v1 route.

import { apiKey, call, setApiKey } from "./api.js";
import { TABS } from "./calculators.js";
import { buildForm, el } from "./form.js";
import { submitJob } from "./jobs.js";
import { makeTabs } from "./tabs.js";

function runner(decl) {
  if (decl.progress) return (body, ui) => submitJob(decl.endpoint, body, ui);
  return (body) => call("POST", decl.endpoint, body);
}

function modeSwitch(tab, forms) {
  const set = el("fieldset", { class: "modes" }, el("legend", { text: "Positions" }));
  const row = el("div", { class: "choices" });
  tab.forms.forEach((decl, i) => {
    const id = `${tab.id}-mode-${i}`;
    const input = el("input", { type: "radio", name: `${tab.id}-mode`, id, value: decl.id, checked: i === 0 });
    input.addEventListener("change", () => forms.forEach((f, j) => (f.hidden = j !== i)));
    row.append(el("span", { class: "choice" }, input, el("label", { for: id, text: decl.mode })));
  });
  set.append(row);
  return set;
}

function build() {
  const tablist = document.getElementById("tablist");
  const panels = document.getElementById("panels");
  const entries = TABS.map((tab) => {
    const button = el("button", {
      type: "button",
      role: "tab",
      id: `tab-${tab.id}`,
      "aria-controls": `panel-${tab.id}`,
      "data-tab": tab.id,
      text: tab.title,
    });
    const panel = el("section", { role: "tabpanel", id: `panel-${tab.id}`, "aria-labelledby": `tab-${tab.id}`, tabindex: 0 });
    panel.append(el("h2", { text: tab.forms[0].title }));
    const forms = tab.forms.map((decl) => buildForm(decl, { run: runner(decl), render: decl.render }));
    if (forms.length > 1) {
      panel.append(modeSwitch(tab, forms));
      forms.slice(1).forEach((f) => (f.hidden = true));
    }
    panel.append(...forms);
    tablist.append(button);
    panels.append(panel);
    return { id: tab.id, tab: button, panel };
  });
  makeTabs(tablist, entries);

  const key = document.getElementById("api-key");
  key.value = apiKey();
  key.addEventListener("change", () => setApiKey(key.value.trim()));
  document.getElementById("api-key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setApiKey(key.value.trim());
  });
  document.body.dataset.ready = "true";
}

build();
