"""Preference accuracy on held-out pairs: how often the chosen answer scores above the rejected one.

For a policy, the score is DPO's implicit reward: log p_policy(answer | prompt) − log p_reference(answer |
prompt), the reference being the model it was trained from. For a reward model, its score."""

from __future__ import annotations

from typing import Any

from llm_feedback_loop.training_data.kinds import as_messages

Messages = list[dict[str, str]]


def answer_logprob(model: Any, tokenizer: Any, prompt: Messages, answer: Messages) -> float:
    """Sum of the log-probabilities of the answer's tokens after the chat-templated prompt."""
    import torch

    prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False)
    full_ids = tokenizer.apply_chat_template(prompt + answer, tokenize=True, return_dict=False)
    ids = torch.tensor([full_ids], device=model.device)
    with torch.no_grad():
        logits = model(ids).logits[0, :-1].float()
    logps = torch.log_softmax(logits, dim=-1).gather(1, ids[0, 1:, None])[:, 0]
    return float(logps[len(prompt_ids) - 1 :].sum())


def reward_score(model: Any, tokenizer: Any, prompt: Messages, answer: Messages) -> float:
    import torch

    text = tokenizer.apply_chat_template(prompt + answer, tokenize=False)
    encoded = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
    with torch.no_grad():
        return float(model(**encoded).logits[0, 0])


def policy_accuracy(policy: Any, reference: Any, tokenizer: Any, pairs: list[dict[str, Any]]) -> float:
    """Share of pairs whose chosen answer has the higher implicit reward (ties count as misses)."""
    correct = 0
    for pair in pairs:
        prompt = as_messages(pair["prompt"], "user")
        rewards = []
        for side in ("chosen", "rejected"):
            answer = as_messages(pair[side], "assistant")
            rewards.append(
                answer_logprob(policy, tokenizer, prompt, answer) - answer_logprob(reference, tokenizer, prompt, answer)
            )
        correct += rewards[0] > rewards[1]
    return correct / len(pairs)


CALIBRATION_BINS = 5


def calibration(probabilities: list[float]) -> dict[str, float]:
    """How far the reward model's confidence is from how often it is right. A reward model trained on pairs
    says P(chosen beats rejected) = sigmoid(score_chosen - score_rejected) (Bradley-Terry); over held-out pairs,
    where the chosen one did win, `brier` is the mean squared gap to 1, and `calibration_error` the expected
    calibration error: per confidence bin (of max(p, 1-p)), |accuracy - confidence|, weighted by its share."""
    brier = sum((1 - p) ** 2 for p in probabilities) / len(probabilities)
    bins: list[list[tuple[float, bool]]] = [[] for _ in range(CALIBRATION_BINS)]
    for p in probabilities:
        confidence = max(p, 1 - p)  # in [0.5, 1]
        index = min(int((confidence - 0.5) * 2 * CALIBRATION_BINS), CALIBRATION_BINS - 1)
        bins[index].append((confidence, p > 0.5))
    error = sum(
        len(items)
        / len(probabilities)
        * abs(sum(right for _, right in items) / len(items) - sum(c for c, _ in items) / len(items))
        for items in bins
        if items
    )
    return {"brier": brier, "calibration_error": error}


def reward_model_metrics(model: Any, tokenizer: Any, pairs: list[dict[str, Any]]) -> dict[str, float]:
    """Held-out pair accuracy of a reward model (the share of pairs whose chosen answer it scores higher),
    and its calibration (`calibration`)."""
    import math

    probabilities, correct = [], 0
    for pair in pairs:
        prompt = as_messages(pair["prompt"], "user")
        chosen = reward_score(model, tokenizer, prompt, as_messages(pair["chosen"], "assistant"))
        rejected = reward_score(model, tokenizer, prompt, as_messages(pair["rejected"], "assistant"))
        correct += chosen > rejected
        probabilities.append(1 / (1 + math.exp(max(min(rejected - chosen, 50.0), -50.0))))
    return {"preference_accuracy": correct / len(pairs), **calibration(probabilities)}
