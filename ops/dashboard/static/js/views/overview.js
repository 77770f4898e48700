// Overview: per-type queues (pause, resume, clear), the last hour as charts, workers, alerts,
// rate limits with their cooldowns counting down, subscriptions with their expiry.
import { badge, duration, ago, h, num, region, replace, table, when } from "../dom.js";
import { ask } from "../dialog.js";
import { bars } from "../chart.js";

const LIMITS_SHOWN = 8;
const QUEUE_COLUMNS = [
  { label: "Type" }, { label: "State" }, { label: "Queued", num: true }, { label: "Scheduled", num: true },
  { label: "Running", num: true }, { label: "Completed", num: true }, { label: "Retried", num: true },
  { label: "Dead-lettered", num: true }, { label: "Oldest queued", num: true },
];

export function overview(ctx) {
  const queues = h("div");
  const charts = h("div");
  const workers = h("div");
  const alerts = h("div");
  const limits = h("div");
  const subs = h("div");
  const dead = h("div");
  const said = h("div", { role: "status", "aria-live": "polite" });
  const error = h("div", { class: "wide" });
  const node = h("div", { class: "view" });
  const sections = [
    h("h1", null, "Overview"), error,
    Object.assign(region("Queues", said, queues), { className: "panel wide" }),
    region("Last hour", charts), region("Alerts", alerts),
    region("Dead letters", dead, h("p", null, h("a", { href: "#/dead-letters" }, "Triage dead letters"))),
    region("Workers", workers),
    region("Rate limits", limits), region("Subscriptions", subs),
  ];
  node.append(...sections);
  let last = {};
  let countdown = null;

  async function act(label, call) {
    try {
      const reply = await call();
      replace(said, h("p", { class: "notice" }, label(reply)));
    } catch (err) {
      replace(said, h("p", { class: "notice error", role: "alert" }, err.message));
    }
    await view.refresh();
  }

  async function clear(type) {
    const confirmField = h("input", { name: "confirm", autocomplete: "off", spellcheck: "false" });
    const values = await ask(`Clear ${type}`, h("p", null,
      `This cancels the ${type} jobs waiting in the queue; running jobs finish. Type the job type's name to confirm.`), {
      fields: [
        h("label", null, "Which jobs", h("select", { name: "status" },
          h("option", { value: "queued" }, "queued (due now)"), h("option", { value: "scheduled" }, "scheduled (due later)"))),
        h("label", null, `Type ${type} to confirm`, confirmField),
      ],
      ready: (form) => form.elements.confirm.value === type,
    });
    if (!values) return;
    await act((r) => `Cleared ${r.cleared} ${r.status} ${type} jobs.`, () => ctx.api(
      `/api/queue/${encodeURIComponent(type)}/clear`, { method: "DELETE", query: { status: values.status, confirm: values.confirm } }));
  }

  function queueRows(stats) {
    return Object.entries(stats.types).sort(([a], [b]) => a.localeCompare(b)).map(([type, t]) => {
      const cells = [
        type,
        t.paused ? badge("paused") : badge("active"),
        num(t.queued), num(t.scheduled), num(t.running), num(t.completed), num(t.retried), num(t.dead_lettered),
        t.oldest_queued_age_s === null ? "–" : duration(t.oldest_queued_age_s),
      ];
      if (ctx.canAct) {
        const toggle = t.paused
          ? h("button", { type: "button", onclick: () => act(() => `Resumed ${type}.`, () => ctx.api(`/api/queue/${type}/resume`, { method: "POST" })) }, "Resume")
          : h("button", { type: "button", onclick: () => act(() => `Paused ${type}: its jobs wait until it is resumed.`, () => ctx.api(`/api/queue/${type}/pause`, { method: "POST" })) }, "Pause");
        cells.push(h("div", { class: "actions" }, toggle,
          h("button", { type: "button", class: "danger", onclick: () => clear(type) }, "Clear")));
      }
      return cells;
    });
  }

  function drawCharts(metrics) {
    const minutes = metrics.minutes || 60;
    const completed = new Array(minutes).fill(0);
    const failed = new Array(minutes).fill(0);
    let retried = 0;
    for (const rows of Object.values(metrics.types || {})) {
      const tail = rows.slice(-minutes);
      tail.forEach((row, i) => {
        const slot = minutes - tail.length + i;
        completed[slot] += row.completed;
        failed[slot] += row.dead_lettered;
        retried += row.retried;
      });
    }
    const total = (xs) => xs.reduce((a, b) => a + b, 0);
    const c = total(completed);
    const f = total(failed);
    return h("div", { class: "charts" },
      h("figure", null, bars(completed, { kind: "completed", label: `Completed per minute, last hour: ${c} in all` }),
        h("figcaption", null, `Completed: ${num(c)} in the last hour`)),
      h("figure", null, bars(failed, { kind: "failed", label: `Dead-lettered per minute, last hour: ${f} in all` }),
        h("figcaption", null, `Dead-lettered: ${num(f)}; retried: ${num(retried)}`)));
  }

  function cooldownCell(limit) {
    if (!limit.cooldown_remaining_s) return "–";
    return h("span", { "data-until": String(Date.now() + limit.cooldown_remaining_s * 1000) },
      duration(limit.cooldown_remaining_s));
  }

  function tick() {
    for (const cell of node.querySelectorAll("[data-until]")) {
      const left = (Number(cell.dataset.until) - Date.now()) / 1000;
      cell.textContent = left > 0 ? duration(left) : "ended";
    }
  }

  const view = {
    title: "Overview",
    node,
    error,
    async refresh() {
      const [stats, health, metrics, alertList, subList, groups] = await Promise.all([
        ctx.api("/api/queue/stats"), ctx.api("/api/queue/health"), ctx.api("/api/queue/metrics"),
        ctx.api("/api/queue/alerts"), ctx.api("/api/queue/subscriptions"), ctx.api("/api/queue/dead-letter/groups"),
      ]);
      const columns = ctx.canAct ? [...QUEUE_COLUMNS, { label: "Actions" }] : QUEUE_COLUMNS;
      const parts = { stats: JSON.stringify([stats.types]), health: JSON.stringify(health.workers),
                      metrics: JSON.stringify(metrics), alerts: JSON.stringify(alertList),
                      limits: JSON.stringify(stats.limits), subs: JSON.stringify(subList),
                      dead: JSON.stringify([stats.dead_letter, groups.slice(0, 5)]) };
      if (parts.dead !== last.dead) {
        replace(dead, h("p", null, `${num(stats.dead_letter.total)} in the store, ${num(stats.dead_letter.unreviewed)} not reviewed. Largest groups by cause:`),
          table("Largest dead-letter groups", [{ label: "Type" }, { label: "Error class" }, { label: "Graph code" },
            { label: "Status", num: true }, { label: "Count", num: true }, { label: "Last seen" }],
          groups.slice(0, 5).map((g) => [g.type, g.error_class, g.graph_code || "–", g.status ?? "–", num(g.count), ago(g.last_at)]),
          { empty: "No dead letters." }));
      }
      if (parts.stats !== last.stats) replace(queues, table("Queues by job type", columns, queueRows(stats), { empty: "No job types yet." }));
      if (parts.metrics !== last.metrics) replace(charts, drawCharts(metrics));
      if (parts.health !== last.health) {
        replace(workers, table("Workers", [{ label: "Worker" }, { label: "Host" }, { label: "PID", num: true },
          { label: "Running", num: true }, { label: "Started" }, { label: "Last seen" }],
          health.workers.map((w) => [w.id, w.host, w.pid, num(w.running), when(w.started_at), ago(w.last_seen_at)]),
          { empty: "No worker is alive." }));
      }
      if (parts.alerts !== last.alerts) {
        replace(alerts, table("Active alerts", [{ label: "Alert" }, { label: "Level" }, { label: "Subject" }, { label: "Since" }],
          alertList.map((a) => [a.message || a.name, badge(a.level), a.subject || "–", ago(a.since)]),
          { empty: "No active alerts." }));
      }
      if (parts.limits !== last.limits) {
        // The keys that need a look first: cooling down, throttled, busy.
        const ranked = [...stats.limits].sort((a, b) => b.cooldown_remaining_s - a.cooldown_remaining_s
          || b.throttled - a.throttled || b.in_use - a.in_use || b.sent - a.sent);
        const shown = ranked.slice(0, LIMITS_SHOWN);
        replace(limits, table("Rate limits", [{ label: "Key" }, { label: "Rate /s", num: true }, { label: "In use", num: true },
          { label: "Sent", num: true }, { label: "Throttled (429)", num: true }, { label: "Cooldown" }],
          shown.map((l) => [l.key, num(l.rate_per_s), num(l.in_use), num(l.sent), num(l.throttled), cooldownCell(l)]),
          { empty: "No limiter key has been used yet." }),
          ranked.length > shown.length ? h("p", { class: "muted" },
            `The ${shown.length} keys most in need of a look, of ${ranked.length}; all of them: GET /api/queue/limits.`) : null);
      }
      if (parts.subs !== last.subs) {
        replace(subs, table("Subscriptions", [{ label: "Resource" }, { label: "Change" }, { label: "Expires in", num: true },
          { label: "Expires at" }],
          subList.map((s) => [s.resource, s.change_type, s.expires_in_s > 0 ? duration(s.expires_in_s) : "expired", when(s.expiration)]),
          { empty: "No subscriptions." }));
      }
      last = parts;
      if (!countdown) countdown = setInterval(tick, 1000);
    },
    destroy() { clearInterval(countdown); },
  };
  return view;
}
