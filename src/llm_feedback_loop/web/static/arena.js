// Arena: both model versions answer the prompt; the annotator votes without knowing which is which;
// the vote is stored, the versions are revealed, and the leaderboard is refreshed.
"use strict";

const $ = (selector) => document.querySelector(selector);
let battle = null;

function status(message, kind = "") { $("#status").textContent = message; $("#status").className = kind; }

async function startBattle() {
  const prompt = $("#prompt").value.trim();
  if (!prompt) { status("Type a prompt first.", "error"); return; }
  const button = $("#battle");
  try {
    const annotator = await api.annotator();
    button.disabled = true;
    status("Both models are answering…");
    battle = await api.post("/v1/arena/battles", { prompt, annotator });
    for (const [side, answer] of [["left", battle.answers[0]], ["right", battle.answers[1]]]) {
      renderMarkdown($(`#${side} .text`), answer.text);
      $(`#${side} .reveal`).textContent = "";
    }
    document.querySelectorAll(".vote").forEach((vote) => { vote.disabled = false; });
    $("#duel").hidden = false;
    status("");
  } catch (error) {
    status(error.message, "error");
  } finally {
    button.disabled = false;
  }
}

async function castVote(winner) {
  if (!battle) return;
  try {
    const result = await api.post("/v1/arena/votes", {
      generation_ids: battle.answers.map((answer) => answer.generation_id), winner, annotator: await api.annotator(),
    });
    battle = null;
    document.querySelectorAll(".vote").forEach((vote) => { vote.disabled = true; });
    $("#left .reveal").textContent = result.models[0];
    $("#right .reveal").textContent = result.models[1];
    status(`Vote saved (comparison #${result.comparison_id}): A was ${result.models[0]}, B was ${result.models[1]}.`, "ok");
    await showLeaderboard($("#leaderboard"));
  } catch (error) {
    status(error.message, "error");
  }
}

document.querySelectorAll(".vote").forEach((vote) => vote.addEventListener("click", () => castVote(vote.dataset.winner)));
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target instanceof HTMLTextAreaElement || target instanceof HTMLInputElement || !battle) return;
  const winner = { ArrowLeft: "left", ArrowDown: "tie", ArrowRight: "right" }[event.key];
  if (winner) { event.preventDefault(); castVote(winner); }
});
$("#battle").addEventListener("click", startBattle);
api.ready
  .then(() => showLeaderboard($("#leaderboard")))
  .then(() => { document.body.dataset.loaded = "true"; })
  .catch((error) => status(error.message, "error"));
