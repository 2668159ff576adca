// The dashboard: feedback over time, by annotator and model version; export contents; model versions
// with lineage; training runs with loss curves. Everything shown as text or SVG built from the API.
"use strict";

const $ = (selector) => document.querySelector(selector);
const KINDS = ["rating", "comparison", "correction", "generation"];

const get = (url) => api.get(url);

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

function sectionStatus(id, message, kind = "") {
  const line = document.getElementById(id);
  line.textContent = message;
  line.className = `status ${kind}`;
}

function button(text, className, onClick) {
  const node = element("button", className, text);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

// Stop a running run (it checkpoints), resume an interrupted or failed one: admins only.
function runControls(run) {
  const controls = element("div", "row run-controls");
  const act = (verb) => async () => {
    try {
      await api.post(`/v1/runs/${run.id}/${verb}`, {});
      sectionStatus("status", `Run ${run.id}: ${verb === "stop" ? "stopping after this step" : "resumed"}.`, "ok");
      await showRuns(true);
    } catch (error) {
      sectionStatus("status", `Run ${run.id}: ${error.message}`, "error");
    }
  };
  if (run.status === "queued" || run.status === "running") controls.append(button("Stop", "stop", act("stop")));
  if (run.status === "interrupted" || run.status === "failed") controls.append(button("Resume", "resume", act("resume")));
  return controls;
}

async function showRuns(manage) {
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
    // An online run (grpo, rloo): its reward and spread, the share of prompts that taught nothing, its KL.
    if (metrics.last_reward != null) facts.push(`reward ${metrics.last_reward.toFixed(3)} ± ${(metrics.last_reward_std || 0).toFixed(3)}`);
    if (metrics.last_frac_reward_zero_std != null) facts.push(`prompts alike ${(100 * metrics.last_frac_reward_zero_std).toFixed(0)}%`);
    if (metrics.last_kl != null) facts.push(`KL ${metrics.last_kl.toFixed(4)}`);
    if (run.error) facts.push(run.error);
    card.append(element("p", "hint", facts.join(" · ")));
    const chart = element("div", "chart");
    card.append(chart);
    const log = await get(`/v1/runs/${run.id}/metrics`);
    charts.lineChart(chart, log.filter((e) => e.loss != null).map((e) => ({ x: e.step, y: e.loss })), { label: `loss of run ${run.id}` });
    const rewards = log.filter((e) => e.reward != null).map((e) => ({ x: e.step, y: e.reward }));
    if (rewards.length) {
      const rewardChart = element("div", "chart");
      card.append(rewardChart);
      charts.lineChart(rewardChart, rewards, { label: `reward of run ${run.id}` });
    }
    if (manage) card.append(runControls(run));
    cards.push(card);
  }
  $("#runs").replaceChildren(...(cards.length ? cards : [element("p", "hint", "No training runs yet: llmfl train sft --from-db")]));
}

const when = (value) => (value ? new Date(value).toLocaleString() : "never");

function cells(row, values) {
  for (const value of values) {
    const cell = row.insertCell();
    if (value instanceof Node) cell.append(value); else cell.textContent = String(value ?? "");
  }
}

// Users: who may sign in, with which role; an admin disables, enables, or sets a password.
async function showUsers() {
  const [me, users] = await Promise.all([api.ready, get("/v1/users")]);
  const body = $("#users tbody");
  body.replaceChildren();
  for (const user of users) {
    const row = body.insertRow();
    row.dataset.user = user.name;
    const state = element("span", `badge ${user.disabled ? "failed" : "active"}`, user.disabled ? "disabled" : "active");
    const actions = element("div", "row actions");
    if (user.name !== me.name) {  // an admin cannot disable themselves
      actions.append(button(user.disabled ? "Enable" : "Disable", "disable", () => changeUser(user.name, { disabled: !user.disabled })));
    }
    const password = Object.assign(element("input", "new-password"), { type: "password", placeholder: "new password", autocomplete: "new-password", minLength: 8 });
    password.setAttribute("aria-label", `New password for ${user.name}`);
    password.hidden = true;
    const set = button(user.has_password ? "Change password" : "Set password", "set-password", () => {
      if (password.hidden) { password.hidden = false; password.focus(); set.textContent = "Save password"; return; }
      changeUser(user.name, { password: password.value });
    });
    actions.append(password, set);
    cells(row, [user.name, element("span", `badge role ${user.role}`, user.role), user.has_password ? "password or link" : "login link only", state, when(user.created_at), actions]);
  }
  const chosen = $("#key-user").value;
  $("#key-user").replaceChildren(...users.filter((user) => !user.disabled).map((user) => {
    const option = element("option", "", `${user.name} (${user.role})`);
    option.value = user.name;
    return option;
  }));
  if (chosen) $("#key-user").value = chosen;
}

async function changeUser(name, change) {
  try {
    await api.patch(`/v1/users/${encodeURIComponent(name)}`, change);
    const what = change.password !== undefined ? "password set; their sessions have ended" : change.disabled ? "disabled" : "enabled";
    sectionStatus("users-status", `${name}: ${what}.`, "ok");
    await Promise.all([showUsers(), showKeys()]);
  } catch (error) {
    sectionStatus("users-status", error.message, "error");
  }
}

async function createUser(event) {
  event.preventDefault();
  const password = $("#user-password").value;
  try {
    const user = await api.post("/v1/users", { name: $("#user-name").value.trim(), role: $("#user-role").value, password: password || null });
    $("#user-form").reset();
    sectionStatus("users-status", `Created ${user.name} (${user.role}).${user.has_password ? "" : " Give them a login link: llmfl users login-link " + user.name}`, "ok");
    await showUsers();
  } catch (error) {
    sectionStatus("users-status", error.message, "error");
  }
}

// API keys: listed by prefix (the secret is never shown again), created for a user, revoked.
async function showKeys() {
  const keys = await get("/v1/keys");
  const body = $("#keys tbody");
  body.replaceChildren();
  if (!keys.length) {
    const cell = body.insertRow().insertCell();
    cell.colSpan = 8;
    cell.className = "hint";
    cell.textContent = "No API keys yet.";
  }
  for (const key of keys) {
    const row = body.insertRow();
    row.dataset.prefix = key.prefix;
    // Two clicks: a key in use by a script stops working at once, so a stray click must not revoke it.
    const revoke = key.state === "active" ? button("Revoke", "revoke", () => {
      if (revoke.dataset.armed) { revokeKey(key); return; }
      revoke.dataset.armed = "true";
      revoke.textContent = "Really revoke?";
      revoke.classList.add("danger");
    }) : "";
    cells(row, [element("code", "", key.prefix), key.user, key.role, key.name || "", element("span", `badge ${key.state === "active" ? "active" : "failed"}`, key.state),
      when(key.last_used_at), key.expires_at ? when(key.expires_at) : "—", revoke]);
  }
}

async function createKey(event) {
  event.preventDefault();
  try {
    const key = await api.post("/v1/keys", { user: $("#key-user").value, role: $("#key-role").value || null, name: $("#key-name").value.trim() || null });
    $("#new-key-value").value = key.key;
    $("#new-key-owner").textContent = key.user;
    $("#new-key-role").textContent = key.role;
    $("#new-key").hidden = false;
    $("#key-name").value = "";
    sectionStatus("keys-status", `Created key ${key.prefix} for ${key.user}.`, "ok");
    await showKeys();
    $("#new-key-value").select();
  } catch (error) {
    sectionStatus("keys-status", error.message, "error");
  }
}

async function copyKey() {
  const input = $("#new-key-value");
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    document.execCommand("copy");  // where the clipboard API is refused (plain http on another host)
  }
  sectionStatus("keys-status", "Copied. Keep it somewhere safe: it cannot be shown again.", "ok");
}

async function revokeKey(key) {
  try {
    await api.remove(`/v1/keys/${encodeURIComponent(key.prefix)}`);
    sectionStatus("keys-status", `Revoked key ${key.prefix} of ${key.user}: it no longer works.`, "ok");
    await showKeys();
  } catch (error) {
    sectionStatus("keys-status", error.message, "error");
  }
}

$("#user-form").addEventListener("submit", createUser);
$("#key-form").addEventListener("submit", createKey);
$("#new-key-copy").addEventListener("click", copyKey);
$("#new-key-done").addEventListener("click", () => { $("#new-key").hidden = true; $("#new-key-value").value = ""; });

api.ready
  .then((me) => {
    const manage = me.permissions.includes("manage");
    const parts = [showStats(), showVersions(), showRuns(manage), showLeaderboard($("#leaderboard"))];
    if (me.permissions.includes("export")) parts.push(showExports());
    if (manage) parts.push(showUsers().then(showKeys));
    return Promise.all(parts);
  })
  .then(() => { document.body.dataset.loaded = "true"; })
  .catch((error) => { $("#status").textContent = error.message; $("#status").className = "error"; });
