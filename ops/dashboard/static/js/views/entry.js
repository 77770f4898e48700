// One dead letter: the final error (with the request ids to quote to Microsoft support), every
// attempt on a timeline, the payload as stored (redacted), and Redrive / Mark reviewed.
import { badge, duration, h, region, replace, when } from "../dom.js";
import { ask } from "../dialog.js";

function copyButton(value, label) {
  const button = h("button", { type: "button", onclick: async () => {
    try {
      await navigator.clipboard.writeText(value);
      button.textContent = "Copied";
    } catch {
      const range = document.createRange();
      range.selectNodeContents(button.previousSibling);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      button.textContent = "Selected: press Ctrl+C";
    }
  } }, label);
  return button;
}

function field(term, value) {
  return [h("dt", null, term), h("dd", null, value ?? "–")];
}

function requestId(value, what) {
  if (!value) return "–";
  return h("span", null, h("code", { class: "mono" }, value), " ", copyButton(value, `Copy ${what}`));
}

export function entry(ctx, id) {
  const said = h("div", { role: "status", "aria-live": "polite" });
  const error = h("div", { class: "wide" });
  const facts = h("div");
  const timeline = h("div");
  const payload = h("div");
  const actions = h("div", { class: "actions" },
    ctx.canAct ? h("button", { type: "button", class: "primary", onclick: redrive }, "Redrive") : null,
    ctx.canAct ? h("button", { type: "button", onclick: review }, "Mark reviewed") : null,
    h("a", { href: "#/dead-letters" }, "All dead letters"));
  const node = h("div", { class: "view" }, h("h1", null, `Dead letter ${id}`), error,
    Object.assign(region("Failure", actions, said, facts), { className: "panel wide" }),
    region("Attempts", timeline), region("Payload", payload));
  let shown = "";

  async function redrive() {
    const yes = await ask("Redrive 1 dead letter?", h("p", { class: "preview" },
      `1 dead letter will be redriven: ${id} goes back to the queue with its id, idempotency key and attempt history.`));
    if (!yes) return;
    try {
      const r = await ctx.api(`/api/queue/dead-letter/${encodeURIComponent(id)}/retry`, { method: "POST" });
      replace(said, h("p", { class: "notice" }, r.redriven ? "Redriven: the job is queued again." : "Not redriven."),
        h("p", null, h("a", { href: `#/jobs/${encodeURIComponent(r.job_id)}` }, "Follow the job")));
    } catch (err) {
      replace(said, h("p", { class: "notice error", role: "alert" }, err.message));
    }
    shown = "";
    await view.refresh();
  }

  async function review() {
    const values = await ask("Mark reviewed", h("p", null, "The entry stays in the store; the note says what you found."), {
      fields: [h("label", null, "Note", h("textarea", { name: "note", rows: 3, cols: 40, maxlength: 4000 }))],
    });
    if (!values) return;
    try {
      await ctx.api(`/api/queue/dead-letter/${encodeURIComponent(id)}/review`, { method: "POST", body: { note: values.note || null } });
      replace(said, h("p", { class: "notice" }, "Marked reviewed."));
    } catch (err) {
      replace(said, h("p", { class: "notice error", role: "alert" }, err.message));
    }
    shown = "";
    await view.refresh();
  }

  const view = {
    title: `Dead letter ${id}`,
    node,
    error,
    async refresh() {
      let e;
      try {
        e = await ctx.api(`/api/queue/dead-letter/${encodeURIComponent(id)}`);
      } catch (err) {
        if (err.status === 404) {
          replace(facts, h("p", { class: "notice" }, "This entry is no longer in the store (redriven and completed, or purged). ",
            h("a", { href: `#/jobs/${encodeURIComponent(id)}` }, "See the job")));
          replace(timeline);
          replace(payload);
          return;
        }
        throw err;
      }
      const json = JSON.stringify(e);
      if (json === shown) return;
      shown = json;
      replace(facts, h("dl", { class: "record" },
        field("Type", e.type), field("Job", h("a", { href: `#/jobs/${encodeURIComponent(e.job_id)}`, class: "mono" }, e.job_id)),
        field("Error class", badge(e.error_class, "failed")), field("HTTP status", e.status),
        field("Graph error code", e.graph_code), field("Message", e.message), field("Reason", e.reason),
        field("request-id", requestId(e.request_id, "request-id")),
        field("client-request-id", requestId(e.client_request_id, "client-request-id")),
        field("First failure", when(e.first_failure_at)), field("Last failure", when(e.last_failure_at)),
        field("Dead-lettered", when(e.dead_lettered_at)), field("Redrives", e.redrive_count),
        field("Reviewed", e.reviewed ? `yes${e.note ? `: ${e.note}` : ""}` : "no"),
        e.ordering_key ? field("Ordering key", e.ordering_key) : null,
        e.released_next ? field("Released next", e.released_next) : null));
      replace(timeline, e.attempts.length ? h("ol", { class: "timeline", "aria-label": "Attempts, oldest first" },
        e.attempts.map((a, i) => h("li", null,
          h("strong", null, `Attempt ${i + 1}`), " · ", when(a.at), " · ", a.error_class,
          a.status ? ` · HTTP ${a.status}` : "", a.graph_code ? ` · ${a.graph_code}` : "",
          h("br"), a.delay_s === null || a.delay_s === undefined ? "no retry: dead-lettered" : `retry after ${duration(a.delay_s)} (${a.delay_s} s)`,
          a.message ? h("div", { class: "muted" }, a.message) : null,
          a.request_id ? h("div", { class: "muted mono" }, `request-id ${a.request_id}`) : null)))
        : h("p", { class: "empty" }, "No attempts recorded."));
      replace(payload, h("pre", { class: "mono", tabindex: "0", "aria-label": "Payload (secrets redacted)" },
        typeof e.payload === "string" ? e.payload : JSON.stringify(e.payload, null, 2)));
    },
  };
  return view;
}
