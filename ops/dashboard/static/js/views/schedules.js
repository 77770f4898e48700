// Schedules (pause, resume) and the audit log: who did what, when.
import { badge, h, region, replace, table, when } from "../dom.js";

export function schedules(ctx) {
  const error = h("div", { class: "wide" });
  const said = h("div", { role: "status", "aria-live": "polite" });
  const list = h("div");
  const audit = h("div");
  const node = h("div", { class: "view" }, h("h1", null, "Schedules"), error,
    Object.assign(region("Schedules", said, list), { className: "panel wide" }),
    Object.assign(region("Audit log", audit), { className: "panel wide" }));
  let last = {};

  async function act(name, verb) {
    try {
      await ctx.api(`/api/schedules/${encodeURIComponent(name)}/${verb}`, { method: "POST" });
      replace(said, h("p", { class: "notice" }, `${verb === "pause" ? "Paused" : "Resumed"} ${name}.`));
    } catch (err) {
      replace(said, h("p", { class: "notice error", role: "alert" }, err.message));
    }
    last = {};
    await view.refresh();
  }

  const view = {
    title: "Schedules",
    node,
    error,
    async refresh() {
      const [items, log] = await Promise.all([ctx.api("/api/schedules"), ctx.api("/api/queue/audit", { query: { limit: 100 } })]);
      const parts = { items: JSON.stringify(items), log: JSON.stringify(log.entries) };
      if (parts.items !== last.items) {
        const columns = [{ label: "Name" }, { label: "When" }, { label: "Job type" }, { label: "Time zone" }, { label: "State" }, { label: "Next run" }];
        if (ctx.canAct) columns.push({ label: "Actions" });
        replace(list, table("Schedules", columns, items.map((s) => {
          const cells = [s.name, s.cron || `every ${s.every_s} s`, s.type, s.timezone, s.paused ? badge("paused") : badge("active"), when(s.next_run_at)];
          if (ctx.canAct) {
            cells.push(s.paused ? h("button", { type: "button", onclick: () => act(s.name, "resume") }, "Resume")
              : h("button", { type: "button", onclick: () => act(s.name, "pause") }, "Pause"));
          }
          return cells;
        }), { empty: "No schedules. Add one with `graphworks schedules add` or PUT /api/schedules/{name}." }));
      }
      if (parts.log !== last.log) {
        replace(audit, table("Audit log", [{ label: "When" }, { label: "Who" }, { label: "Action" }, { label: "Target" }, { label: "Count" }, { label: "Detail" }],
          log.entries.map((e) => [when(e.at), e.role, e.action, e.target || "–", e.count ?? "–", e.detail || ""]),
          { empty: "No operator actions yet.", rowHeader: 0 }));
      }
      last = parts;
    },
  };
  return view;
}
