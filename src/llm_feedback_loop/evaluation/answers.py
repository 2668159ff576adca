"""A model's answers to held-out prompts: greedy, batched, with the model's chat template."""

from __future__ import annotations

from typing import Any


def generate_answers(
    model: Any, tokenizer: Any, conversations: list[list[dict[str, str]]], max_new_tokens: int = 64, batch_size: int = 8
) -> list[str]:
    """One greedy answer per conversation (each ends with a user turn)."""
    import torch

    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    answers: list[str] = []
    for start in range(0, len(conversations), batch_size):
        batch = conversations[start : start + batch_size]
        texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in batch]
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.no_grad():
            output = model.generate(
                **encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        new_tokens = output[:, encoded["input_ids"].shape[1] :]
        answers += [text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
    return answers


def answer_prompts(source: str, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy answers of the model at `source` (a folder, hub id or LoRA adapter folder) to single-turn prompts."""
    import warnings

    from llm_feedback_loop.models.loader import load_model

    with warnings.catch_warnings():  # PEFT asks transformers a deprecated question when it loads an adapter
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        loaded = load_model(source, device="cpu")
    conversations = [[{"role": "user", "content": prompt}] for prompt in prompts]
    return generate_answers(loaded.model, loaded.tokenizer, conversations, max_new_tokens)
