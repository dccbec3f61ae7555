// WAI-ARIA tabs (https://www.w3.org/WAI/ARIA/apg/patterns/tabs/): arrow keys, Home and End move between tabs;
// only the selected tab is in the Tab order; the URL's #fragment names the open tab.

export function makeTabs(tablist, entries) {
  const tabs = entries.map((e) => e.tab);
  const select = (i, { focus = false, push = true } = {}) => {
    entries.forEach((e, j) => {
      const on = i === j;
      e.tab.setAttribute("aria-selected", String(on));
      e.tab.tabIndex = on ? 0 : -1;
      e.panel.hidden = !on;
    });
    if (focus) tabs[i].focus();
    if (push && location.hash !== `#${entries[i].id}`) history.replaceState(null, "", `#${entries[i].id}`);
  };
  tablist.addEventListener("click", (ev) => {
    const i = tabs.indexOf(ev.target.closest("[role=tab]"));
    if (i >= 0) select(i);
  });
  tablist.addEventListener("keydown", (ev) => {
    const i = tabs.indexOf(document.activeElement);
    if (i < 0) return;
    const n = tabs.length;
    const to = { ArrowRight: (i + 1) % n, ArrowLeft: (i - 1 + n) % n, Home: 0, End: n - 1 }[ev.key];
    if (to === undefined) return;
    ev.preventDefault();
    select(to, { focus: true });
  });
  const fromHash = () => {
    const i = entries.findIndex((e) => `#${e.id}` === location.hash);
    select(i >= 0 ? i : 0, { push: false });
  };
  window.addEventListener("hashchange", fromHash);
  fromHash();
}
