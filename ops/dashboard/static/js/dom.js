// Building the page: elements, tables with header cells, regions, and how numbers and times read.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "value" && "value" in el) el.value = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let ids = 0;
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

// A region: a <section> named by its heading (role "region" with that name).
export function region(title, ...children) {
  const id = uid("h");
  return h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

// columns: [{label, num?}]; rows: arrays of cells (strings, numbers or nodes); cell `rowHeader` (default
// the first) is the row's header cell.
export function table(caption, columns, rows, { empty = "Nothing here.", rowHeader = 0 } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  const head = h("tr", null, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : null }, c.label)));
  const body = rows.map((cells) =>
    h("tr", null, cells.map((cell, i) => {
      const num = columns[i] && columns[i].num;
      const tag = i === rowHeader ? "th" : "td";
      return h(tag, { scope: tag === "th" ? "row" : null, class: num ? "num" : null }, cell);
    })));
  // Wide tables scroll sideways inside a box the keyboard can reach (focus it, then the arrow keys).
  return h("div", { class: "scroll", tabindex: "0", role: "group", "aria-label": caption },
    h("table", null, h("caption", { class: "visually-hidden" }, caption), h("thead", null, head), h("tbody", null, body)));
}

export function replace(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

export const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en"));

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function when(value) {
  if (!value) return "–";
  const at = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(at.getTime())) return String(value);
  const iso = at.toISOString();
  return h("time", { datetime: iso, title: iso }, `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`);
}

export function ago(value) {
  if (!value) return "–";
  const at = typeof value === "number" ? value * 1000 : Date.parse(value);
  const iso = new Date(at).toISOString();
  return h("time", { datetime: iso, title: iso }, `${duration((Date.now() - at) / 1000)} ago`);
}

export const badge = (text, kind) => h("span", { class: `badge ${kind || text}` }, text);

export function notice(text, kind = "info") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}
