// Small SVG charts built as DOM elements (labels are text nodes: names from users never become HTML).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = { rating: "#2f5bd3", comparison: "#1f8a4c", correction: "#d98324", generation: "#9aa3b5", up: "#1f8a4c", down: "#c0392b", answers: "#9aa3b5" };

function svgElement(name, attributes = {}, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text != null) element.textContent = text;
  return element;
}

// Stacked bars: rows [{label, parts: {key: value}}], one bar per row.
function stackedBars(container, rows, keys, { height = 200 } = {}) {
  container.replaceChildren();
  if (!rows.length) { container.append(Object.assign(document.createElement("p"), { className: "hint", textContent: "Nothing yet." })); return; }
  const width = Math.max(640, rows.length * 28 + 40), top = 10, bottom = 28, left = 32;
  const max = Math.max(1, ...rows.map((row) => keys.reduce((sum, key) => sum + (row.parts[key] || 0), 0)));
  const svg = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "bars" });
  const scale = (height - top - bottom) / max, step = (width - left) / rows.length;
  svg.append(svgElement("text", { x: 2, y: top + 8, class: "axis" }, String(max)));
  svg.append(svgElement("line", { x1: left, x2: width, y1: height - bottom, y2: height - bottom, class: "baseline" }));
  rows.forEach((row, index) => {
    let y = height - bottom;
    const barWidth = Math.min(step * 0.7, 36), x = left + index * step + (step - barWidth) / 2;
    for (const key of keys) {
      const value = row.parts[key] || 0;
      if (!value) continue;
      const h = value * scale;
      y -= h;
      const rect = svgElement("rect", { x, y, width: barWidth, height: h, fill: COLOURS[key] || "#666", "data-key": key, "data-value": value });
      rect.append(svgElement("title", {}, `${row.label}: ${value} ${key}`));
      svg.append(rect);
    }
    if (rows.length <= 14 || index % Math.ceil(rows.length / 14) === 0) {
      svg.append(svgElement("text", { x: x + barWidth / 2, y: height - 10, class: "axis", "text-anchor": "middle" }, row.label));
    }
  });
  container.append(svg);
}

// Horizontal bars with their names and values: rows [{label, value, parts?}].
function horizontalBars(container, rows, keys) {
  container.replaceChildren();
  if (!rows.length) { container.append(Object.assign(document.createElement("p"), { className: "hint", textContent: "Nothing yet." })); return; }
  const max = Math.max(1, ...rows.map((row) => keys.reduce((sum, key) => sum + (row.parts[key] || 0), 0)));
  for (const row of rows) {
    const line = document.createElement("div");
    line.className = "hbar";
    const name = document.createElement("span");
    name.className = "hbar-name";
    name.textContent = row.label;
    const track = document.createElement("span");
    track.className = "hbar-track";
    for (const key of keys) {
      const value = row.parts[key] || 0;
      if (!value) continue;
      const part = document.createElement("span");
      part.className = "hbar-part";
      part.style.width = `${(100 * value) / max}%`;
      part.style.background = COLOURS[key] || "#666";
      part.title = `${value} ${key}`;
      part.dataset.key = key;
      part.dataset.value = value;
      track.append(part);
    }
    const total = document.createElement("span");
    total.className = "hbar-value";
    total.textContent = keys.map((key) => row.parts[key] || 0).join(" / ");
    line.append(name, track, total);
    container.append(line);
  }
}

// A line chart of points [{x, y}] (a loss curve).
function lineChart(container, points, { height = 120, width = 320, label = "" } = {}) {
  container.replaceChildren();
  const finite = points.filter((p) => Number.isFinite(p.y));
  if (finite.length < 1) { container.append(Object.assign(document.createElement("p"), { className: "hint", textContent: "No loss logged yet." })); return; }
  const pad = 24, xs = finite.map((p) => p.x), ys = finite.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x) => pad + ((x - x0) / (x1 - x0 || 1)) * (width - 2 * pad);
  const sy = (y) => height - pad - ((y - y0) / (y1 - y0 || 1)) * (height - 2 * pad);
  const svg = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "line", "aria-label": label });
  svg.append(svgElement("polyline", { points: finite.map((p) => `${sx(p.x)},${sy(p.y)}`).join(" "), class: "curve", "data-points": finite.length }));
  svg.append(svgElement("text", { x: 2, y: pad - 6, class: "axis" }, y1.toFixed(3)));
  svg.append(svgElement("text", { x: 2, y: height - 6, class: "axis" }, y0.toFixed(3)));
  svg.append(svgElement("text", { x: width - pad, y: height - 6, class: "axis", "text-anchor": "end" }, `step ${x1}`));
  container.append(svg);
}

window.charts = { stackedBars, horizontalBars, lineChart, COLOURS };
