"""A model's answers to held-out prompts, batched, with the model's chat template: one greedy answer per prompt
and, where asked, several sampled ones (what a chat user sees is sampled; a greedy answer alone says how the
model answers at its most likely, and moves a score in steps of one prompt).

Single-turn prompts (a task's held-out prompts) are answered BATCH_ROWS sequences at a time: on a CPU a batch
of 42 held-out prompts answers in 12 s where batches of 8 took 32 s (SmolLM2-135M, 64 tokens), and two samples
of each in 35 s where they took 57 s. Conversations of any length (an SFT export's) go 8 at a time."""

from __future__ import annotations

from typing import Any

BATCH_ROWS = 48  # sequences generated together (a held-out set of 42 prompts is one batch)


def generate_answers(
    model: Any,
    tokenizer: Any,
    conversations: list[list[dict[str, str]]],
    max_new_tokens: int = 64,
    batch_size: int = 8,
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


def sample_answers(
    model: Any,
    tokenizer: Any,
    conversations: list[list[dict[str, str]]],
    samples: int,
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.8,
    top_p: float = 0.95,
    seed: int = 0,
    batch_rows: int = BATCH_ROWS,
) -> list[list[str]]:
    """`samples` sampled answers per conversation, `batch_rows // samples` conversations at a time. Seeded per
    batch: the same model, prompts, seed and batch size always give the same answers."""
    import torch

    batch_size = max(1, batch_rows // samples)
    tokenizer.padding_side = "left"
    answers: list[list[str]] = []
    for start in range(0, len(conversations), batch_size):
        batch = conversations[start : start + batch_size]
        texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in batch]
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        generator_seed = seed * 100_003 + start
        with torch.random.fork_rng(devices=[]), torch.no_grad():  # the caller's random state is left alone
            torch.manual_seed(generator_seed)
            output = model.generate(
                **encoded,
                max_new_tokens=max_new_tokens,
                do_sample=True,
                temperature=temperature,
                top_p=top_p,
                top_k=0,
                num_return_sequences=samples,
                pad_token_id=tokenizer.pad_token_id,
            )
        texts = tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
        answers += [[text.strip() for text in texts[i * samples : (i + 1) * samples]] for i in range(len(batch))]
    return answers


def answer_prompts(source: str, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy answers of the model at `source` (a folder, hub id or LoRA adapter folder) to single-turn prompts."""
    return answer_and_sample(source, prompts, max_new_tokens, 0)[0]


def answer_and_sample(
    source: str,
    prompts: list[str],
    max_new_tokens: int,
    samples: int,
    *,
    greedy: bool = True,
    temperature: float = 0.8,
    top_p: float = 0.95,
    seed: int = 0,
) -> tuple[list[str], list[list[str]]]:
    """The model at `source`'s greedy answers (unless `greedy` is False: an empty list) and `samples` sampled
    answers per prompt (an empty list each when 0), with one load of the model."""
    import warnings

    from llm_feedback_loop.models.loader import load_model

    with warnings.catch_warnings():  # PEFT asks transformers a deprecated question when it loads an adapter
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        loaded = load_model(source, device="cpu")
    conversations = [[{"role": "user", "content": prompt}] for prompt in prompts]
    found = []
    if greedy:
        found = generate_answers(loaded.model, loaded.tokenizer, conversations, max_new_tokens, BATCH_ROWS)
    if samples <= 0:
        return found, [[] for _ in prompts]
    sampled = sample_answers(
        loaded.model,
        loaded.tokenizer,
        conversations,
        samples,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
    )
    return found, sampled
