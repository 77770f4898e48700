// Small bar charts of a per-minute series, as SVG (no library: 60 bars need none), with a text
// summary for screen readers and for anyone who would rather read.
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export function bars(values, { kind, label }) {
  const width = 300;
  const height = 70;
  const max = Math.max(1, ...values);
  const step = width / Math.max(1, values.length);
  const root = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none",
                            role: "img", "aria-label": label });
  root.append(svg("line", { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5 }));
  values.forEach((v, i) => {
    if (!v) return;
    const barHeight = Math.max(1, (v / max) * (height - 4));
    const rect = svg("rect", { class: kind, x: i * step + 0.5, y: height - barHeight, width: Math.max(1, step - 1),
                               height: barHeight });
    const title = svg("title", {});
    title.textContent = `${v}`;
    rect.append(title);
    root.append(rect);
  });
  return root;
}
