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


def reward_model_accuracy(model: Any, tokenizer: Any, pairs: list[dict[str, Any]]) -> float:
    """Share of pairs whose chosen answer the reward model scores higher."""
    correct = 0
    for pair in pairs:
        prompt = as_messages(pair["prompt"], "user")
        chosen = reward_score(model, tokenizer, prompt, as_messages(pair["chosen"], "assistant"))
        rejected = reward_score(model, tokenizer, prompt, as_messages(pair["rejected"], "assistant"))
        correct += chosen > rejected
    return correct / len(pairs)
