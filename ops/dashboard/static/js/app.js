// The dashboard: sign-in, the page frame, the views by URL hash, and live updates.
//   #/                 overview        #/dead-letters       groups and entries, redrive, review
//   #/dead-letters/ID  one entry       #/jobs, #/jobs/ID    find, list, one job
//   #/schedules        schedules and the audit log
import { api, session, useSession } from "./api.js";
import { h, replace } from "./dom.js";
import { follow } from "./live.js";
import { overview } from "./views/overview.js";
import { deadLetters } from "./views/deadletters.js";
import { entry } from "./views/entry.js";
import { jobs, job } from "./views/jobs.js";
import { schedules } from "./views/schedules.js";

const POLL_MS = 5000; // counts that no event announces (enqueues, running) are re-read this often
const EVENT_DEBOUNCE_MS = 250;

const app = document.getElementById("app");
const ctx = { role: null, canAct: false, api };
let current = null;
let stopLive = null;
let pollTimer = null;
let eventTimer = null;

const NAV = [
  ["#/", "Overview"],
  ["#/dead-letters", "Dead letters"],
  ["#/jobs", "Jobs"],
  ["#/schedules", "Schedules"],
];

function route() {
  const path = (location.hash.replace(/^#/, "") || "/").split("?")[0];
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "dead-letters" && parts[1]) return ["#/dead-letters", () => entry(ctx, parts[1])];
  if (parts[0] === "dead-letters") return ["#/dead-letters", () => deadLetters(ctx)];
  if (parts[0] === "jobs" && parts[1]) return ["#/jobs", () => job(ctx, parts[1])];
  if (parts[0] === "jobs") return ["#/jobs", () => jobs(ctx)];
  if (parts[0] === "schedules") return ["#/schedules", () => schedules(ctx)];
  return ["#/", () => overview(ctx)];
}

async function show() {
  const [tab, make] = route();
  for (const link of document.querySelectorAll("header.top nav a")) {
    if (link.getAttribute("href") === tab) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (current && current.destroy) current.destroy();
  const main = document.getElementById("main");
  current = make();
  replace(main, current.node);
  document.title = `${current.title} · graphworks`;
  await refresh();
}

async function refresh() {
  if (!current) return;
  const view = current;
  try {
    await view.refresh();
    if (view === current && view.error) replace(view.error);
  } catch (err) {
    if (view === current && err.status !== 401 && view.error) {
      replace(view.error, h("p", { class: "notice error", role: "alert" }, `Could not load: ${err.message}`));
    }
  }
}

function setLive(state) {
  const status = document.getElementById("live");
  if (!status) return;
  status.dataset.state = state;
  status.textContent = state === "live" ? "Live" : "Connection lost; reconnecting…";
}

function onEvent() {
  const status = document.getElementById("live");
  if (status) status.dataset.events = String(Number(status.dataset.events || 0) + 1);
  clearTimeout(eventTimer);
  eventTimer = setTimeout(refresh, EVENT_DEBOUNCE_MS);
}

function frame() {
  const search = h("form", { role: "search", onsubmit: (e) => {
    e.preventDefault();
    const id = e.target.elements.job.value.trim();
    if (id) location.hash = `#/jobs/${encodeURIComponent(id)}`;
  } }, h("input", { type: "search", name: "job", "aria-label": "Find job", placeholder: "Find job by id",
                    autocomplete: "off", spellcheck: "false" }),
       h("button", { type: "submit" }, "Go"));
  const signOut = h("button", { type: "button", onclick: signOutNow }, "Sign out");
  return h("header", { class: "top" },
    h("p", { class: "brand" }, "graphworks"),
    h("nav", { "aria-label": "Sections" }, h("ul", null, NAV.map(([href, label]) => h("li", null, h("a", { href }, label))))),
    search,
    h("div", { class: "who" },
      h("p", { id: "live", class: "live", role: "status", "aria-live": "polite" }, "Connecting…"),
      h("span", { class: "badge" }, ctx.role === "admin" ? "operator" : "viewer (read-only)"),
      signOut));
}

function start(state) {
  useSession(state.csrf, signedOut);
  ctx.role = state.role;
  ctx.canAct = state.role === "admin";
  replace(app, frame(), h("main", { id: "main", class: "main" }));
  stopLive = follow(onEvent, setLive);
  pollTimer = setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);
  window.addEventListener("hashchange", show);
  show();
}

function stop() {
  if (stopLive) stopLive();
  stopLive = null;
  clearInterval(pollTimer);
  window.removeEventListener("hashchange", show);
  if (current && current.destroy) current.destroy();
  current = null;
}

function signedOut() {
  stop();
  signIn("Your session ended; sign in again.");
}

async function signOutNow() {
  try { await session("DELETE"); } catch { /* gone already */ }
  stop();
  signIn("Signed out.");
}

function signIn(message) {
  const field = h("input", { type: "password", name: "token", id: "token", required: true, autocomplete: "off" });
  const problem = h("p", { role: "alert", class: "notice error", hidden: true });
  const form = h("form", { class: "signin", onsubmit: async (e) => {
    e.preventDefault();
    problem.hidden = true;
    try {
      const state = await session("POST", { token: field.value });
      field.value = "";
      start(state);
    } catch (err) {
      problem.textContent = err.status === 401 ? "That token is not valid." : err.message;
      problem.hidden = false;
      field.focus();
    }
  } },
    h("h1", null, "graphworks"),
    message ? h("p", { role: "status" }, message) : null,
    h("label", { for: "token" }, "Access token", field),
    h("p", { class: "muted" }, "ADMIN_TOKEN to act, VIEWER_TOKEN to look. The token is sent once; a session cookie follows."),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    problem);
  replace(app, h("main", { id: "main" }, form));
  document.title = "Sign in · graphworks";
  field.focus();
}

async function boot() {
  try {
    const state = await session("GET");
    if (state.signed_in) start(state);
    else signIn();
  } catch (err) {
    replace(app, h("main", { id: "main" }, h("p", { class: "notice error", role: "alert" },
      `The dashboard cannot reach its server: ${err.message}`)));
  }
}

boot();
