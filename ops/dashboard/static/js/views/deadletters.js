// Dead letters: the groups by cause, largest first; entries under a filter; Redrive through a
// preview (the API's dry run) and Confirm; Mark reviewed with a note; Export as JSON.
import { badge, h, num, region, replace, table, when } from "../dom.js";
import { ask } from "../dialog.js";

const FIELDS = ["type", "error_class", "graph_code", "status", "reviewed", "since", "until"];
const PAGE = 100;
const EXPORT_MAX = 10000;

const CLIP = 140;
const clip = (text) => (text && text.length > CLIP ? h("span", { title: text }, `${text.slice(0, CLIP)}…`) : text);
const groupKey = (g) => JSON.stringify([g.type, g.error_class, g.graph_code, g.status]);
const plural = (n, one, many) => `${num(n)} ${n === 1 ? one : many}`;

function isoOrEmpty(local) {
  if (!local) return "";
  const at = new Date(local); // a datetime-local value is the operator's local time
  return Number.isNaN(at.getTime()) ? "" : at.toISOString();
}

export function deadLetters(ctx) {
  const filter = {};
  const chosenGroups = new Map();
  const chosenEntries = new Set();
  let entries = [];
  let cursor = null;
  let groups = [];
  let last = {};

  const said = h("div", { role: "status", "aria-live": "polite" });
  const summary = h("p", { class: "muted" });
  const groupBox = h("div");
  const entryBox = h("div");
  const more = h("button", { type: "button", hidden: true, onclick: () => loadEntries(true) }, "More");
  const error = h("div", { class: "wide" });

  const typeSelect = h("select", { name: "type" }, h("option", { value: "" }, "any"));
  const classSelect = h("select", { name: "error_class" }, h("option", { value: "" }, "any"));
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); applyFilter(); } },
    h("label", null, "Type", typeSelect),
    h("label", null, "Error class", classSelect),
    h("label", null, "Graph code", h("input", { name: "graph_code", size: 14, autocomplete: "off" })),
    h("label", null, "Status", h("input", { name: "status", type: "number", min: 100, max: 599, size: 5 })),
    h("label", null, "Reviewed", h("select", { name: "reviewed" }, h("option", { value: "" }, "any"),
      h("option", { value: "false" }, "not reviewed"), h("option", { value: "true" }, "reviewed"))),
    h("label", null, "Failed since", h("input", { name: "since", type: "datetime-local" })),
    h("label", null, "Failed before", h("input", { name: "until", type: "datetime-local" })),
    h("button", { type: "submit" }, "Filter"),
    h("button", { type: "button", onclick: () => { form.reset(); applyFilter(); } }, "Reset"));

  const actions = h("div", { class: "actions" },
    ctx.canAct ? h("button", { type: "button", class: "primary", onclick: redrive }, "Redrive") : null,
    ctx.canAct ? h("button", { type: "button", onclick: review }, "Mark reviewed") : null,
    h("button", { type: "button", onclick: exportJson }, "Export"),
    h("span", { class: "muted", id: "selection" }));

  const node = h("div", { class: "view" }, h("h1", null, "Dead letters"), error,
    Object.assign(region("Dead letters", summary, form, actions, said, h("h3", null, "Groups by cause"), groupBox,
      h("h3", null, "Entries"), entryBox, more), { className: "panel wide" }));

  function readFilter() {
    const data = new FormData(form);
    for (const field of FIELDS) {
      let value = String(data.get(field) || "").trim();
      if (field === "since" || field === "until") value = isoOrEmpty(value);
      if (value) filter[field] = value;
      else delete filter[field];
    }
  }

  async function applyFilter() {
    readFilter();
    chosenGroups.clear();
    chosenEntries.clear();
    last = {};
    await view.refresh();
  }

  function describeSelection() {
    const text = chosenEntries.size ? `${plural(chosenEntries.size, "entry", "entries")} selected`
      : chosenGroups.size ? `${plural(chosenGroups.size, "group", "groups")} selected` : "nothing selected: actions apply to the filter";
    document.getElementById("selection")?.replaceChildren(text);
  }

  function checkbox(label, checked, onchange) {
    return h("input", { type: "checkbox", "aria-label": label, checked, onchange: (e) => { onchange(e.target.checked); describeSelection(); } });
  }

  function drawGroups() {
    const columns = [{ label: "Type" }, { label: "Error class" }, { label: "Graph code" }, { label: "Status", num: true },
      { label: "Count", num: true }, { label: "First seen" }, { label: "Last seen" }];
    const rows = groups.map((g) => {
      const cells = [g.type, g.error_class, g.graph_code || "–", g.status ?? "–", num(g.count), when(g.first_at), when(g.last_at)];
      if (!ctx.canAct) return cells;
      const key = groupKey(g);
      const label = `Select group ${g.type} ${g.error_class} ${g.graph_code || ""} ${g.status ?? ""}`.replace(/\s+/g, " ").trim();
      return [checkbox(label, chosenGroups.has(key), (on) => (on ? chosenGroups.set(key, g) : chosenGroups.delete(key))), ...cells];
    });
    const cols = ctx.canAct ? [{ label: "Select" }, ...columns] : columns;
    replace(groupBox, table("Dead-letter groups", cols, rows, { empty: "No dead letters match.", rowHeader: ctx.canAct ? 1 : 0 }));
  }

  function drawEntries() {
    const columns = [{ label: "Entry" }, { label: "Type" }, { label: "Error class" }, { label: "Status", num: true },
      { label: "Graph code" }, { label: "Message" }, { label: "Last failure" }, { label: "Reviewed" }];
    const rows = entries.map((e) => {
      const cells = [h("a", { href: `#/dead-letters/${encodeURIComponent(e.id)}`, class: "mono" }, e.id), e.type, e.error_class,
        e.status ?? "–", e.graph_code || "–", clip(e.message || e.reason), when(e.last_failure_at), e.reviewed ? badge("reviewed", "ok") : "no"];
      if (!ctx.canAct) return cells;
      return [checkbox(`Select ${e.id}`, chosenEntries.has(e.id), (on) => (on ? chosenEntries.add(e.id) : chosenEntries.delete(e.id))), ...cells];
    });
    const cols = ctx.canAct ? [{ label: "Select" }, ...columns] : columns;
    replace(entryBox, table("Dead-letter entries", cols, rows, { empty: "No entries match.", rowHeader: ctx.canAct ? 1 : 0 }));
    more.hidden = !cursor;
  }

  async function loadEntries(next) {
    const page = await ctx.api("/api/queue/dead-letter", { query: { ...filter, limit: PAGE, cursor: next ? cursor : undefined } });
    entries = next ? [...entries, ...page.entries] : page.entries;
    cursor = page.next_cursor;
    drawEntries();
  }

  function groupFilter(g) {
    const f = { type: g.type, error_class: g.error_class };
    if (g.graph_code !== null) f.graph_code = g.graph_code;
    if (g.status !== null) f.status = g.status;
    for (const k of ["reviewed", "since", "until"]) if (filter[k]) f[k] = filter[k];
    if (f.reviewed) f.reviewed = f.reviewed === "true";
    return f;
  }

  function apiFilter() {
    const f = { ...filter };
    if (f.status) f.status = Number(f.status);
    if (f.reviewed) f.reviewed = f.reviewed === "true";
    return f;
  }

  // Every entry under `query`, 500 a page, up to `max`; `more`: the store held more than that.
  async function allEntries(query, max = Infinity) {
    const found = [];
    let next;
    do {
      const page = await ctx.api("/api/queue/dead-letter", { query: { ...query, limit: 500, cursor: next } });
      found.push(...page.entries);
      next = page.next_cursor;
    } while (next && found.length < max);
    return { entries: found, more: Boolean(next) };
  }

  // One entry at a time (POST /dead-letter/{id}/retry): how many went back to the queue.
  async function redriveEach(ids) {
    let done = 0;
    for (const id of ids) {
      const r = await ctx.api(`/api/queue/dead-letter/${encodeURIComponent(id)}/retry`, { method: "POST" });
      if (r.redriven) done += 1;
    }
    return done;
  }

  // What a redrive will touch: selected entries, else selected groups, else the filter.
  async function plan() {
    if (chosenEntries.size) {
      const ids = [...chosenEntries];
      return { count: ids.length, sample: ids.slice(0, 5), run: () => redriveEach(ids) };
    }
    // A group without a Graph code or status cannot be named by the API's filter (there, a missing
    // field means "any"): its entries are listed and redriven one by one instead.
    const groupsChosen = [...chosenGroups.values()];
    const exact = groupsChosen.filter((g) => g.graph_code !== null && g.status !== null);
    const loose = groupsChosen.filter((g) => g.graph_code === null || g.status === null);
    const filters = chosenGroups.size ? exact.map(groupFilter) : [apiFilter()];
    const ids = [];
    for (const g of loose) {
      const { entries: found } = await allEntries(groupFilter(g));
      ids.push(...found.filter((e) => e.graph_code === g.graph_code && e.status === g.status).map((e) => e.id));
    }
    let count = ids.length;
    const sample = ids.slice(0, 5);
    for (const f of filters) {
      const preview = await ctx.api("/api/queue/dead-letter/retry", { method: "POST", body: { ...f, dry_run: true } });
      count += preview.matched;
      sample.push(...preview.sample.map((e) => `${e.id} (${e.type}, ${e.graph_code || e.error_class})`));
    }
    return { count, sample: sample.slice(0, 5), run: async () => {
      let done = await redriveEach(ids);
      for (const f of filters) {
        const r = await ctx.api("/api/queue/dead-letter/retry", { method: "POST", body: { ...f, dry_run: false } });
        done += r.redriven;
      }
      return done;
    } };
  }

  async function redrive() {
    let p;
    try {
      p = await plan();
    } catch (err) {
      replace(said, h("p", { class: "notice error", role: "alert" }, err.message));
      return;
    }
    if (!p.count) {
      replace(said, h("p", { class: "notice" }, "Nothing to redrive: no entry matches."));
      return;
    }
    const yes = await ask(`Redrive ${plural(p.count, "dead letter", "dead letters")}?`, [
      h("p", { class: "preview" }, `${plural(p.count, "dead letter", "dead letters")} will be redriven: each goes back to the queue with its id, idempotency key and attempt history.`),
      p.sample.length ? h("p", { class: "muted mono" }, `For example: ${p.sample.join(", ")}`) : null,
    ]);
    if (!yes) return;
    try {
      const done = await p.run();
      replace(said, h("p", { class: "notice" }, `Redriven ${plural(done, "dead letter", "dead letters")}.`));
    } catch (err) {
      replace(said, h("p", { class: "notice error", role: "alert" }, err.message));
    }
    chosenGroups.clear();
    chosenEntries.clear();
    last = {};
    await view.refresh();
  }

  async function review() {
    if (!chosenEntries.size) {
      replace(said, h("p", { class: "notice" }, "Select the entries to mark reviewed first."));
      return;
    }
    const ids = [...chosenEntries];
    const values = await ask(`Mark ${plural(ids.length, "entry", "entries")} reviewed`, h("p", null,
      "Reviewed entries stay in the store and can still be redriven; the note says what you found."), {
      fields: [h("label", null, "Note", h("textarea", { name: "note", rows: 3, cols: 40, maxlength: 4000 }))],
    });
    if (!values) return;
    try {
      for (const id of ids) {
        await ctx.api(`/api/queue/dead-letter/${encodeURIComponent(id)}/review`, { method: "POST", body: { note: values.note || null } });
      }
      replace(said, h("p", { class: "notice" }, `Marked ${plural(ids.length, "entry", "entries")} reviewed.`));
    } catch (err) {
      replace(said, h("p", { class: "notice error", role: "alert" }, err.message));
    }
    chosenEntries.clear();
    last = {};
    await view.refresh();
  }

  async function exportJson() {
    const { entries: all, more: next } = await allEntries(filter, EXPORT_MAX);
    const blob = new Blob([JSON.stringify(all, null, 2)], { type: "application/json" });
    const link = h("a", { href: URL.createObjectURL(blob), download: `dead-letters-${new Date().toISOString().slice(0, 19)}.json` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    replace(said, h("p", { class: "notice" }, `Exported ${plural(all.length, "entry", "entries")}${next ? ` (the first ${EXPORT_MAX})` : ""}.`));
  }

  function fillOptions(select, values) {
    const chosen = select.value;
    const wanted = ["", ...values];
    if ([...select.options].map((o) => o.value).join() === wanted.join()) return;
    select.replaceChildren(...wanted.map((v) => h("option", { value: v }, v || "any")));
    select.value = wanted.includes(chosen) ? chosen : "";
  }

  const view = {
    title: "Dead letters",
    node,
    error,
    async refresh() {
      const [all, stats] = await Promise.all([ctx.api("/api/queue/dead-letter/groups"), ctx.api("/api/queue/stats")]);
      fillOptions(typeSelect, [...new Set([...Object.keys(stats.types), ...all.map((g) => g.type)])].sort());
      fillOptions(classSelect, [...new Set(all.map((g) => g.error_class))].sort());
      const f = apiFilter();
      groups = all.filter((g) => (!f.type || g.type === f.type) && (!f.error_class || g.error_class === f.error_class)
        && (!f.graph_code || g.graph_code === f.graph_code) && (!f.status || g.status === f.status));
      summary.textContent = `${plural(stats.dead_letter.total, "entry", "entries")} in the store, ${num(stats.dead_letter.unreviewed)} not reviewed.`;
      const page = await ctx.api("/api/queue/dead-letter", { query: { ...filter, limit: Math.min(500, Math.max(PAGE, entries.length)) } });
      const parts = { groups: JSON.stringify(groups), entries: JSON.stringify(page.entries) };
      if (parts.groups !== last.groups) drawGroups();
      if (parts.entries !== last.entries) {
        entries = page.entries;
        cursor = page.next_cursor;
        drawEntries();
      }
      last = parts;
      describeSelection();
    },
  };
  return view;
}
