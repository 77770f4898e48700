// Jobs: list by type and status; one job's status record, its progress, result, and Cancel job.
import { badge, h, num, region, replace, table, when } from "../dom.js";

const STATES = ["", "queued", "scheduled", "running", "completed", "dead_lettered", "cancelled"];

export function jobs(ctx) {
  const error = h("div", { class: "wide" });
  const list = h("div");
  const typeSelect = h("select", { name: "type" });
  const statusSelect = h("select", { name: "status" }, STATES.map((s) => h("option", { value: s }, s || "any")));
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); shown = ""; view.refresh(); } },
    h("label", null, "Job type", typeSelect), h("label", null, "Status", statusSelect), h("button", { type: "submit" }, "List"));
  const node = h("div", { class: "view" }, h("h1", null, "Jobs"), error,
    Object.assign(region("Jobs", h("p", { class: "muted" }, "Find one by id with the search box above, or list a type's newest jobs."),
      form, list), { className: "panel wide" }));
  let shown = "";

  const view = {
    title: "Jobs",
    node,
    error,
    async refresh() {
      if (!typeSelect.options.length) {
        const stats = await ctx.api("/api/queue/stats");
        const types = Object.keys(stats.types).sort();
        typeSelect.replaceChildren(...types.map((t) => h("option", { value: t }, t)));
      }
      if (!typeSelect.value) return;
      const page = await ctx.api(`/api/queue/${encodeURIComponent(typeSelect.value)}/jobs`,
        { query: { status: statusSelect.value, limit: 100 } });
      const json = JSON.stringify(page.jobs);
      if (json === shown) return;
      shown = json;
      replace(list, table(`${typeSelect.value} jobs`, [{ label: "Job" }, { label: "Status" }, { label: "Priority", num: true },
        { label: "Attempts", num: true }, { label: "Created" }, { label: "Updated" }],
        page.jobs.map((j) => [h("a", { href: `#/jobs/${encodeURIComponent(j.id)}`, class: "mono" }, j.id), badge(j.status),
          j.priority, num(j.attempts), when(j.created_at), when(j.updated_at)]), { empty: "No jobs of this type match." }));
    },
  };
  return view;
}

function progressOf(p) {
  if (!p) return null;
  const unit = p.unit || "items";
  if (p.total) {
    const pct = Math.round((100 * p.done) / p.total);
    return h("div", null, h("progress", { value: p.done, max: p.total, "aria-label": "Progress" }),
      h("p", null, `${num(p.done)} of ${num(p.total)} ${unit} (${pct}%)`));
  }
  return h("div", null, h("progress", { "aria-label": "Progress" }), h("p", null, `${num(p.done)} ${unit} so far`));
}

export function job(ctx, id) {
  const error = h("div", { class: "wide" });
  const said = h("div", { role: "status", "aria-live": "polite" });
  const record = h("div");
  const progress = h("div");
  const result = h("div");
  const node = h("div", { class: "view" }, h("h1", null, `Job ${id}`), error,
    Object.assign(region("Status", said, record, progress), { className: "panel wide" }), region("Result", result));
  let shown = "";

  async function cancel() {
    try {
      await ctx.api(`/api/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
      replace(said, h("p", { class: "notice" }, "Cancelled: it will not run."));
    } catch (err) {
      replace(said, h("p", { class: "notice error", role: "alert" }, err.message));
    }
    shown = "";
    await view.refresh();
  }

  const view = {
    title: `Job ${id}`,
    node,
    error,
    async refresh() {
      let j;
      try {
        j = await ctx.api(`/api/jobs/${encodeURIComponent(id)}`);
      } catch (err) {
        if (err.status === 404) {
          replace(record, h("p", { class: "notice" }, `No job ${id}: the id is unknown, or its record has expired (JOB_STATUS_TTL_S).`));
          return;
        }
        throw err;
      }
      const json = JSON.stringify(j);
      if (json === shown) return;
      shown = json;
      const cancellable = ctx.canAct && (j.status === "queued" || j.status === "scheduled");
      replace(record, h("dl", { class: "record" },
        h("dt", null, "Status"), h("dd", null, badge(j.status)),
        h("dt", null, "Type"), h("dd", null, j.type),
        h("dt", null, "Priority"), h("dd", null, j.priority),
        h("dt", null, "Attempts"), h("dd", null, num(j.attempts)),
        h("dt", null, "Created"), h("dd", null, when(j.created_at)),
        h("dt", null, "Updated"), h("dd", null, when(j.updated_at)),
        j.next_run_at ? [h("dt", null, "Next run"), h("dd", null, when(j.next_run_at))] : null,
        j.ordering_key ? [h("dt", null, "Ordering key"), h("dd", null, j.ordering_key)] : null,
        j.idempotency_key ? [h("dt", null, "Idempotency key"), h("dd", { class: "mono" }, j.idempotency_key)] : null,
        j.redrive_count ? [h("dt", null, "Redrives"), h("dd", null, j.redrive_count)] : null,
        j.dead_letter_id ? [h("dt", null, "Dead letter"), h("dd", null,
          h("a", { href: `#/dead-letters/${encodeURIComponent(j.dead_letter_id)}` }, j.dead_letter_id))] : null),
        cancellable ? h("div", { class: "actions" }, h("button", { type: "button", class: "danger", onclick: cancel }, "Cancel job")) : null);
      replace(progress, progressOf(j.progress));
      replace(result, j.result === null || j.result === undefined ? h("p", { class: "empty" }, "No result yet.")
        : h("pre", { class: "mono", tabindex: "0", "aria-label": "Result" }, JSON.stringify(j.result, null, 2)));
    },
  };
  return view;
}
