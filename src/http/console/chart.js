// Small SVG charts with no library: a line chart with one marked point per sample (the loss
// curve, accuracy per round) and a bar chart (the similarity histogram). Fixed viewBox, so a
// chart that grows never moves the page around it.

const NS = "http://www.w3.org/2000/svg";
const W = 600, H = 220, L = 48, R = 12, T = 12, B = 30;

function svg(tag, attrs, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
}

function frame(label) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, class: "chart" });
  root.append(svg("title", {}, label));
  return root;
}

function scale(lo, hi, a, b) {
  const span = hi - lo || 1;
  return (v) => a + ((v - lo) / span) * (b - a);
}

function axes(root, xs, ys, x, y, fmtY) {
  root.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
  root.append(svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
  for (const v of [ys[0], (ys[0] + ys[1]) / 2, ys[1]])
    root.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, fmtY(v)));
  for (const v of [xs[0], xs[1]])
    root.append(svg("text", { x: x(v), y: H - B + 18, "text-anchor": "middle", class: "tick" }, String(v)));
}

/// `series`: [{name, points: [[x, y], …], cls}]; every point is drawn as a circle.
export function lineChart(label, series, { xLabel = "", fmtY = (v) => v.toFixed(3), yRange } = {}) {
  const root = frame(label);
  const all = series.flatMap((s) => s.points);
  if (!all.length) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "tick" }, "no data yet"));
    return root;
  }
  const xs = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const ys = yRange || [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  const x = scale(xs[0], xs[1], L + 8, W - R - 8), y = scale(ys[0], ys[1], H - B - 6, T + 6);
  axes(root, xs, ys, x, y, fmtY);
  if (xLabel) root.append(svg("text", { x: W - R, y: H - 4, "text-anchor": "end", class: "tick" }, xLabel));
  for (const s of series) {
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
    root.append(svg("path", { d, class: `line ${s.cls || ""}` }));
    for (const p of s.points) {
      const c = svg("circle", { cx: x(p[0]), cy: y(p[1]), r: 3, class: `pt ${s.cls || ""}`, "data-x": p[0], "data-y": p[1] });
      c.append(svg("title", {}, `${s.name} ${p[0]}: ${fmtY(p[1])}`));
      root.append(c);
    }
  }
  return root;
}

/// Bars of `bins` ([{lo, hi, n}]) with an optional vertical marker at `mark`.
export function histogram(label, bins, mark) {
  const root = frame(label);
  if (!bins.length) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "tick" }, "no scores yet"));
    return root;
  }
  const lo = bins[0].lo, hi = bins[bins.length - 1].hi, top = Math.max(1, ...bins.map((b) => b.n));
  const x = scale(lo, hi, L, W - R), y = scale(0, top, H - B, T);
  axes(root, [lo, hi], [0, top], x, y, (v) => (Number.isInteger(v) ? String(v) : ""));
  for (const b of bins) {
    const r = svg("rect", { x: x(b.lo) + 1, y: y(b.n), width: Math.max(1, x(b.hi) - x(b.lo) - 2), height: H - B - y(b.n), class: "bar" });
    r.append(svg("title", {}, `${b.lo.toFixed(2)}–${b.hi.toFixed(2)}: ${b.n}`));
    root.append(r);
  }
  if (mark !== undefined && mark >= lo && mark <= hi) {
    root.append(svg("line", { x1: x(mark), y1: T, x2: x(mark), y2: H - B, class: "mark" }));
    root.append(svg("text", { x: x(mark) + 4, y: T + 10, class: "tick" }, `threshold ${mark.toFixed(2)}`));
  }
  return root;
}

/// Equal-width bins over [lo, hi] of `values`.
export function bin(values, lo, hi, count) {
  const w = (hi - lo) / count;
  const bins = Array.from({ length: count }, (_, i) => ({ lo: lo + i * w, hi: lo + (i + 1) * w, n: 0 }));
  for (const v of values) bins[Math.min(count - 1, Math.max(0, Math.floor((v - lo) / w)))].n++;
  return bins;
}
