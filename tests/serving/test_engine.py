"""The continuous-batching engine: concurrent requests, streaming, stop strings, seeds, context limits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_feedback_loop.models.loader import load_model
from llm_feedback_loop.serving.engine import (
    BadPrompt,
    ConversationRefused,
    GenerationEngine,
    PromptTooLong,
    SamplingParams,
)


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> Iterator[GenerationEngine]:
    running = GenerationEngine(load_model(str(tiny_model)))
    running.start()
    yield running
    running.stop()


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_greedy_requests_match_plain_generate(engine: GenerationEngine) -> None:
    import torch

    ids = engine.encode_chat([{"role": "user", "content": "What is the capital of France?"}])
    greedy = SamplingParams(max_tokens=12, temperature=0)

    async def many():
        return await asyncio.gather(*(engine.complete(ids, greedy) for _ in range(6)))

    results = run(many())
    assert len({r.text for r in results}) == 1
    assert all(r.completion_tokens == 12 and r.prompt_tokens == len(ids) for r in results)
    with torch.no_grad():
        reference = engine.loaded.model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False)
    expected = engine.tokenizer.decode(reference[0][len(ids) :], skip_special_tokens=True)
    assert results[0].text == expected


def test_prompts_of_different_lengths_batched_each_match_plain_generate(engine: GenerationEngine) -> None:
    import torch
    from transformers import AttentionInterface

    from llm_feedback_loop.serving.attention import by_request

    assert AttentionInterface._global_mapping["sdpa"] is by_request  # each request attends to its own keys
    questions = [
        "Hi",
        "What is 2 + 2?",
        "Name three colours of the rainbow, please, in order.",
        "Why?",
        "Tell me a story",
    ]
    prompts = [engine.encode_chat([{"role": "user", "content": q}]) for q in questions]
    greedy = SamplingParams(max_tokens=10, temperature=0)

    async def many():
        return await asyncio.gather(*(engine.complete(ids, greedy) for ids in prompts))

    for ids, result in zip(prompts, run(many()), strict=True):
        with torch.no_grad():
            reference = engine.loaded.model.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False)
        assert result.text == engine.tokenizer.decode(reference[0][len(ids) :], skip_special_tokens=True)


def test_sampling_varies_and_a_seed_reproduces(engine: GenerationEngine) -> None:
    ids = engine.encode_chat([{"role": "user", "content": "Tell me something."}])
    sampled = SamplingParams(max_tokens=16, temperature=1.0, top_p=1.0)

    async def answers():
        return await asyncio.gather(*(engine.complete(ids, sampled) for _ in range(4)))

    assert len({r.text for r in run(answers())}) > 1
    seeded = SamplingParams(max_tokens=16, temperature=1.0, top_p=1.0, seed=42)
    first, second = run(engine.complete(ids, seeded)), run(engine.complete(ids, seeded))
    assert first.text == second.text
    assert run(engine.complete(ids, seeded.for_choice(1))).text != first.text


def test_stream_deltas_add_up_to_the_answer_and_stop_strings_cut_it(engine: GenerationEngine) -> None:
    ids = engine.encode_chat([{"role": "user", "content": "Count."}])
    greedy = SamplingParams(max_tokens=20, temperature=0)
    full = run(engine.complete(ids, greedy)).text

    async def collect(params: SamplingParams) -> list:
        return [delta async for delta in engine.stream(ids, params)]

    deltas = run(collect(greedy))
    assert "".join(d.text for d in deltas) == full
    assert deltas[-1].finish_reason == "length" and all(d.finish_reason is None for d in deltas[:-1])
    stop = full[4:6]
    cut = run(engine.complete(ids, SamplingParams(max_tokens=20, temperature=0, stop=[stop])))
    assert cut.finish_reason == "stop"
    assert cut.text == full[: full.index(stop)]
    assert engine.in_flight == 0


def test_concurrent_requests_stream_and_stop_like_a_lone_one(engine: GenerationEngine) -> None:
    ids = engine.encode_chat([{"role": "user", "content": "Count."}])
    greedy = SamplingParams(max_tokens=20, temperature=0)
    full = run(engine.complete(ids, greedy)).text
    stop = full[4:6]
    stopped = SamplingParams(max_tokens=20, temperature=0, stop=[stop])

    async def together():  # several in flight at once
        return await asyncio.gather(*(engine.complete(ids, p) for p in [greedy, greedy, stopped, stopped]))

    results = run(together())
    assert [r.text for r in results[:2]] == [full, full]
    assert [r.text for r in results[2:]] == [full[: full.index(stop)]] * 2
    assert {r.finish_reason for r in results[2:]} == {"stop"}
    assert engine.in_flight == 0


def test_a_prompt_longer_than_the_context_is_refused(engine: GenerationEngine) -> None:
    ids = engine.encode_text("word " * 600)
    with pytest.raises(PromptTooLong, match="more than the model's context of 512 tokens"):
        run(engine.complete(ids, SamplingParams(max_tokens=10)))


def test_a_conversation_the_chat_template_refuses_is_a_bad_prompt_not_a_crash(engine: GenerationEngine) -> None:
    """Templates of some models (Mistral's, Gemma's) raise on roles that do not alternate: the caller's error."""
    template = engine.tokenizer.chat_template
    engine.tokenizer.chat_template = (
        "{% for m in messages %}{% if loop.index0 % 2 == 1 and m['role'] == 'user' %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
        "{{ m['content'] }}{% endfor %}"
    )
    try:
        with pytest.raises(ConversationRefused, match="roles must alternate") as refused:
            engine.encode_chat([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
        assert isinstance(refused.value, BadPrompt)
        assert engine.encode_chat([{"role": "user", "content": "a"}])
    finally:
        engine.tokenizer.chat_template = template


def test_one_off_work_runs_on_a_thread_of_its_own_and_reports_errors() -> None:
    import threading

    from llm_feedback_loop.serving.engine import in_own_thread

    def whoami() -> str:
        return threading.current_thread().name

    def broken() -> None:
        raise ValueError("no such model")

    async def name() -> str:
        return await in_own_thread(whoami)

    async def failing() -> None:
        await in_own_thread(broken)

    assert run(name()) == "llmfl-one-off"

    with pytest.raises(ValueError, match="no such model"):
        run(failing())


def test_a_temperature_next_to_zero_is_greedy_and_answers(engine: GenerationEngine) -> None:
    """A fuzzer's temperature of 1e-59 overflowed the logits to inf: batched requests stalled for good and a
    seeded one failed. Such a temperature means greedy."""
    ids = engine.encode_chat([{"role": "user", "content": "Hello"}])
    greedy = run(engine.complete(ids, SamplingParams(max_tokens=8, temperature=0)))

    async def tiny_temperatures():
        return await asyncio.wait_for(
            asyncio.gather(
                engine.complete(ids, SamplingParams(max_tokens=8, temperature=1e-59, top_p=1e-59)),
                engine.complete(ids, SamplingParams(max_tokens=8, temperature=1e-59, seed=3)),
            ),
            timeout=60,
        )

    assert [r.text for r in run(tiny_temperatures())] == [greedy.text, greedy.text]


def test_a_seeded_sampled_request_is_the_same_alone_and_in_a_batch_of_8(engine: GenerationEngine) -> None:
    ids = engine.encode_chat([{"role": "user", "content": "Tell me a story."}])
    other = engine.encode_chat([{"role": "user", "content": "Name a colour."}])
    seeded = SamplingParams(max_tokens=16, temperature=1.0, top_p=0.9, seed=7)
    alone = run(engine.complete(ids, seeded))

    async def batch():  # seeded, unseeded and greedy requests together, the seeded one among them
        params = [
            SamplingParams(max_tokens=16, temperature=1.0, top_p=0.9),
            SamplingParams(max_tokens=12, temperature=0),
            seeded,
            SamplingParams(max_tokens=16, temperature=0.7, top_p=1.0, seed=3),
            SamplingParams(max_tokens=16, temperature=1.2, top_p=0.5),
            SamplingParams(max_tokens=8, temperature=0, seed=5),  # a seed on a greedy request changes nothing
            SamplingParams(max_tokens=16, temperature=1.0, top_p=0.9),
            SamplingParams(max_tokens=16, temperature=1.0, top_p=0.9, seed=8),
        ]
        return await asyncio.gather(*(engine.complete(other if i % 2 else ids, p) for i, p in enumerate(params)))

    results = run(batch())
    assert results[2].text == alone.text  # the seeded request, on the same prompt
    assert all(r.completion_tokens > 0 for r in results) and engine.in_flight == 0
    assert run(engine.complete(ids, seeded)).text == alone.text  # and again, alone
    assert run(engine.complete(ids, SamplingParams(max_tokens=16, temperature=1.0, top_p=0.9, seed=8))).text != (
        alone.text
    )


def test_greedy_and_seeded_requests_are_batched_and_a_lone_one_takes_plain_generate(engine: GenerationEngine) -> None:
    assert engine.per_row
    engine.in_flight = 1  # this request alone
    try:
        assert engine._path(SamplingParams(temperature=0)) == engine._stream_alone
        assert engine._path(SamplingParams(temperature=0, seed=4)) == engine._stream_alone
        assert engine._path(SamplingParams(temperature=0.8, seed=4)) == engine._stream_batched  # its own generator
        engine.in_flight = 3  # others in flight: every request joins the batch
        for params in (SamplingParams(temperature=0, seed=4), SamplingParams(temperature=0.8), SamplingParams()):
            assert engine._path(params) == engine._stream_batched
    finally:
        engine.in_flight = 0


def test_a_stopped_engine_refuses_a_request_instead_of_leaving_it_waiting(tiny_model: Path) -> None:
    from llm_feedback_loop.serving.engine import GenerationError

    stopped = GenerationEngine(load_model(str(tiny_model)))
    stopped.start()
    stopped.stop()
    ids = stopped.encode_text("Hello")
    with pytest.raises(GenerationError, match="stopped"):
        run(asyncio.wait_for(stopped.complete(ids, SamplingParams(max_tokens=4, temperature=0)), timeout=30))
    assert stopped.in_flight == 0


def test_on_a_cpu_the_engine_multiplies_with_packed_linear_layers(engine: GenerationEngine) -> None:
    import torch

    from llm_feedback_loop.models.packed import packing_available

    layers = [m for m in engine.loaded.model.modules() if type(m) is torch.nn.Linear]
    assert engine.packed_layers == (len(layers) if packing_available() else 0)


def test_model_packed_linear_false_serves_the_plain_layers(tiny_model: Path) -> None:
    from llm_feedback_loop.serving.slot import ModelChoice, start_model
    from llm_feedback_loop.settings import Settings

    off = Settings(model_packed_linear=False)  # MODEL_PACKED_LINEAR=false
    served = start_model(ModelChoice("tiny", None, str(tiny_model)), "cpu", pack_linear=off.model_packed_linear)
    try:
        assert served.engine.packed_layers == 0
        greedy = SamplingParams(max_tokens=3, temperature=0)
        answer = run(served.engine.complete(served.engine.encode_text("Hi"), greedy))
        assert answer.completion_tokens == 3
    finally:
        served.engine.stop()
