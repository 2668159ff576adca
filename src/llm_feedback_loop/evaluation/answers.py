"""A model's answers to held-out prompts, batched, with the model's chat template: one greedy answer per prompt
and, where asked, several sampled ones (what a chat user sees is sampled; a greedy answer alone says how the
model answers at its most likely, and moves a score in steps of one prompt).

Single-turn prompts (a task's held-out prompts) are answered BATCH_ROWS sequences at a time: on a CPU a batch
of 42 held-out prompts answers in 12 s where batches of 8 took 32 s (SmolLM2-135M, 64 tokens), and two samples
of each in 35 s where they took 57 s. Conversations of any length (an SFT export's) go 8 at a time."""

from __future__ import annotations

from typing import Any

BATCH_ROWS = 48  # sequences generated together (a held-out set of 42 prompts is one batch)


def batched_answers(
    model: Any,
    tokenizer: Any,
    conversations: list[list[dict[str, str]]],
    batch_size: int,
    per_conversation: int,
    options: dict[str, Any],
    seed: int | None = None,
) -> list[list[str]]:
    """`per_conversation` answers to each conversation (each ends with a user turn), `batch_size` conversations
    per `generate(**options)` call. With a `seed`, each batch is seeded by it and its position, leaving the
    caller's random state alone."""
    import contextlib

    import torch

    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    answers: list[list[str]] = []
    for start in range(0, len(conversations), batch_size):
        batch = conversations[start : start + batch_size]
        texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in batch]
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        seeded = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
        with seeded, torch.no_grad():
            if seed is not None:
                torch.manual_seed(seed * 100_003 + start)
            output = model.generate(
                **encoded, num_return_sequences=per_conversation, pad_token_id=tokenizer.pad_token_id, **options
            )
        texts = tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
        rows = range(len(batch))
        answers += [[text.strip() for text in texts[i * per_conversation : (i + 1) * per_conversation]] for i in rows]
    return answers


def generate_answers(
    model: Any,
    tokenizer: Any,
    conversations: list[list[dict[str, str]]],
    max_new_tokens: int = 64,
    batch_size: int = 8,
) -> list[str]:
    """One greedy answer per conversation (each ends with a user turn)."""
    options = {"max_new_tokens": max_new_tokens, "do_sample": False}
    return [found[0] for found in batched_answers(model, tokenizer, conversations, batch_size, 1, options)]


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
    batch: the same model, prompts, seed and batch size always give the same answers. Temperature and top-p are
    the serving engine's (`temperature_and_nucleus`): the same nucleus as transformers' top-p without its sort
    of the whole vocabulary (84 sampled answers of SmolLM2 to concise's held-out prompts, 2 cores: 44 -> 34 s, the
    same 84 answers; bench/bench_eval_sampling.py)."""
    from transformers import LogitsProcessorList

    from llm_feedback_loop.serving.sampler import temperature_and_nucleus

    options = {
        "max_new_tokens": max_new_tokens,
        "do_sample": True,
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": 0,
        "logits_processor": LogitsProcessorList([temperature_and_nucleus(temperature, top_p)]),
    }
    batch_size = max(1, batch_rows // samples)
    return batched_answers(model, tokenizer, conversations, batch_size, samples, options, seed)


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
    pack_linear: bool = True,
) -> tuple[list[str], list[list[str]]]:
    """The model at `source`'s greedy answers (unless `greedy` is False: an empty list) and `samples` sampled
    answers per prompt (an empty list each when 0), with one load of the model (`pack_linear`: its linear layers
    multiply prepacked on a CPU, models/packed.py; the model only answers)."""
    import warnings

    from llm_feedback_loop.models.loader import load_model
    from llm_feedback_loop.models.packed import pack_linear_layers

    with warnings.catch_warnings():  # PEFT asks transformers a deprecated question when it loads an adapter
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        loaded = load_model(source, device="cpu")
    if pack_linear:
        pack_linear_layers(loaded.model)
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
