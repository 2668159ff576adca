// The arena leaderboard table, shared by the arena page and the dashboard (all cells are text).
"use strict";

async function showLeaderboard(table) {
  const board = await api.get("/v1/arena/leaderboard");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  if (!board.standings.length) {
    const row = body.insertRow();
    const cell = row.insertCell();
    cell.colSpan = 5;
    cell.className = "hint";
    cell.textContent = "No arena votes yet.";
    return board;
  }
  board.standings.forEach((standing, index) => {
    const row = body.insertRow();
    row.dataset.model = standing.model_version;
    for (const text of [index + 1, standing.model_version, standing.rating.toFixed(0),
      `${standing.ci_low.toFixed(0)} – ${standing.ci_high.toFixed(0)}`, standing.battles]) {
      row.insertCell().textContent = String(text);
    }
  });
  return board;
}

window.showLeaderboard = showLeaderboard;
