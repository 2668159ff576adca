// The dashboard: feedback over time, by annotator and model version; export contents; model versions
// with lineage; training runs with loss curves. Everything shown as text or SVG built from the API.
"use strict";

const $ = (selector) => document.querySelector(selector);
const KINDS = ["rating", "comparison", "correction", "generation"];

async function get(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

async function showStats() {
  const stats = await get("/v1/stats?days=30");
  charts.stackedBars($("#over-time"), stats.by_day.map((d) => ({ label: d.day.slice(5), parts: d })), KINDS);
  $("#legend").replaceChildren(...KINDS.map((kind) => {
    const item = element("span", "legend-item", kind);
    item.style.setProperty("--swatch", charts.COLOURS[kind]);
    return item;
  }));
  charts.horizontalBars($("#by-annotator"), stats.by_annotator.map((a) => ({ label: a.annotator, parts: { rating: a.count } })), ["rating"]);
  charts.horizontalBars($("#by-version"), stats.by_model_version.map((v) => ({ label: v.model_version, parts: v })), ["up", "down", "answers"]);
}

async function showExports() {
  const cards = [];
  for (const kind of ["sft", "dpo", "kto", "reward"]) {
    const manifest = await get(`/v1/export/${kind}/manifest?strategy=best-vs-rest`);
    const card = element("div", "card");
    card.dataset.kind = kind;
    card.append(element("h3", "", kind.toUpperCase()));
    const rows = manifest.counts.rows;
    card.append(element("p", "big", `${rows} row${rows === 1 ? "" : "s"}`));
    const sources = Object.entries(manifest.counts.rows_per_source || {}).map(([source, count]) => `${count} from ${source}s`);
    card.append(element("p", "hint", sources.join(", ") || "no feedback of this kind yet"));
    if (manifest.counts.ties_dropped) card.append(element("p", "hint", `${manifest.counts.ties_dropped} ties dropped`));
    if (kind === "kto") {
      const labels = manifest.counts.labels || {};
      card.append(element("p", "balance", `balance: ${labels.desirable || 0} desirable / ${labels.undesirable || 0} undesirable`));
    }
    const link = element("a", "button", "Download JSONL");
    link.href = `/v1/export/${kind}?strategy=best-vs-rest`;
    link.setAttribute("download", `${kind}.jsonl`);
    card.append(link);
    cards.push(card);
  }
  $("#exports").replaceChildren(...cards);
}

function versionItem(version, children) {
  const item = element("li", `version ${version.status}`);
  item.dataset.id = version.id;
  const line = element("div", "version-line");
  line.append(element("strong", "", version.name));
  line.append(element("span", `badge ${version.status}`, version.status));
  line.append(element("span", "hint", version.method));
  const metrics = (version.metadata || {}).metrics || {};
  if (metrics.preference_accuracy != null) line.append(element("span", "hint", `pref. acc. ${metrics.preference_accuracy.toFixed(2)}`));
  if (metrics.eval_loss != null) line.append(element("span", "hint", `held-out loss ${metrics.eval_loss.toFixed(3)}`));
  item.append(line);
  const kids = children.get(version.id) || [];
  if (kids.length) {
    const list = element("ul", "tree");
    for (const child of kids) list.append(versionItem(child, children));
    item.append(list);
  }
  return item;
}

async function showVersions() {
  const versions = await get("/v1/model-versions");
  const ids = new Set(versions.map((v) => v.id));
  const children = new Map();
  for (const version of versions) {
    const parent = ids.has(version.parent_id) ? version.parent_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(version);
  }
  const roots = children.get(null) || [];
  $("#versions").replaceChildren(...(roots.length ? roots.map((v) => versionItem(v, children)) : [element("li", "hint", "No model versions yet.")]));
}

async function showRuns() {
  const runs = await get("/v1/runs?limit=12");
  const cards = [];
  for (const run of runs) {
    const card = element("div", "card run");
    card.dataset.run = run.id;
    card.append(element("h3", "", `Run ${run.id} · ${run.method}`));
    card.append(element("span", `badge ${run.status}`, run.status));
    const metrics = run.metrics || {};
    const facts = [];
    if (metrics.global_step != null) facts.push(`${metrics.global_step} steps`);
    if (metrics.preference_accuracy != null) facts.push(`pref. acc. ${metrics.preference_accuracy.toFixed(2)}`);
    if (run.error) facts.push(run.error);
    card.append(element("p", "hint", facts.join(" · ")));
    const chart = element("div", "chart");
    card.append(chart);
    const log = await get(`/v1/runs/${run.id}/metrics`);
    charts.lineChart(chart, log.filter((e) => e.loss != null).map((e) => ({ x: e.step, y: e.loss })), { label: `loss of run ${run.id}` });
    cards.push(card);
  }
  $("#runs").replaceChildren(...(cards.length ? cards : [element("p", "hint", "No training runs yet: llmfl train sft --from-db")]));
}

Promise.all([showStats(), showExports(), showVersions(), showRuns(), showLeaderboard($("#leaderboard"))])
  .then(() => { document.body.dataset.loaded = "true"; })
  .catch((error) => { $("#status").textContent = error.message; $("#status").className = "error"; });
