"""The engine over an OpenAI-compatible server that takes token ids (vLLM's way, `--engine vllm`), checked
against a real one: our own `llmfl serve-model` on the tiny model. And the vLLM server's command line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llm_feedback_loop.models.loader import load_tokenizer
from llm_feedback_loop.serving.engine import GenerationError, PromptTooLong, SamplingParams
from llm_feedback_loop.serving.remote import RemoteEngine
from llm_feedback_loop.serving.vllm import plan_for, vllm_command
from tests.support.accounts import bearer, issue_keys
from tests.support.servers import running_llmfl


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, an annotator's key) of serve-model on the tiny model."""
    workdir = tmp_path_factory.mktemp("remote")
    database_url = f"sqlite:///{workdir}/registry.db"
    keys = issue_keys(database_url)
    env = {"DATABASE_URL": database_url, "BASE_MODEL": str(tiny_model)}
    with running_llmfl(["serve-model", "--watch-registry", "0"], workdir, env) as base:
        yield base, keys["annotator"]


@pytest.fixture(scope="module")
def remote(server: tuple[str, str], tiny_model: Path) -> RemoteEngine:
    base, key = server
    name = httpx.get(f"{base}/v1/models", headers=bearer(key)).json()["data"][0]["id"]
    config = json.loads((tiny_model / "config.json").read_text())
    return RemoteEngine(base, name, load_tokenizer(str(tiny_model)), 512, config["vocab_size"], api_key=key)


def chat(server: tuple[str, str], body: dict) -> dict:
    response = httpx.post(f"{server[0]}/v1/chat/completions", json=body, headers=bearer(server[1]), timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_greedy_answer_is_the_servers_own_and_streams_with_its_usage(
    remote: RemoteEngine, server: tuple[str, str]
) -> None:
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    expected = chat(server, {"messages": messages, "max_tokens": 12, "temperature": 0})
    ids = remote.encode_chat(messages)
    result = asyncio.run(remote.complete(ids, SamplingParams(max_tokens=12, temperature=0)))
    assert result.text == expected["choices"][0]["message"]["content"]
    assert result.completion_tokens == expected["usage"]["completion_tokens"] and result.prompt_tokens == len(ids)

    async def deltas() -> list:
        return [d async for d in remote.stream(ids, SamplingParams(max_tokens=12, temperature=0))]

    streamed = asyncio.run(deltas())
    assert "".join(d.text for d in streamed) == result.text
    assert streamed[-1].finish_reason in ("stop", "length") and streamed[-1].completion_tokens == 12
    assert remote.in_flight == 0


def test_stop_strings_seeds_and_concurrent_requests(remote: RemoteEngine) -> None:
    ids = remote.encode_chat([{"role": "user", "content": "Count."}])
    full = asyncio.run(remote.complete(ids, SamplingParams(max_tokens=16, temperature=0))).text
    stop = full[4:6]
    cut = asyncio.run(remote.complete(ids, SamplingParams(max_tokens=16, temperature=0, stop=[stop])))
    assert cut.finish_reason == "stop" and cut.text == full[: full.index(stop)]
    seeded = SamplingParams(max_tokens=12, temperature=1.0, seed=3)

    async def together() -> list:
        return await asyncio.gather(*(remote.complete(ids, p) for p in [seeded, seeded, SamplingParams(max_tokens=8)]))

    first, second, _ = asyncio.run(together())
    assert first.text == second.text and remote.in_flight == 0


def test_what_the_server_refuses_is_a_generation_error_and_a_long_prompt_is_refused_here(
    remote: RemoteEngine, server: tuple[str, str], tiny_model: Path
) -> None:
    with pytest.raises(PromptTooLong, match="more than the model's context of 512 tokens"):
        asyncio.run(remote.complete(remote.encode_text("word " * 600), SamplingParams(max_tokens=10)))
    config = json.loads((tiny_model / "config.json").read_text())
    unauthorised = RemoteEngine(server[0], remote.served_name, remote.tokenizer, 512, config["vocab_size"], api_key="x")
    with pytest.raises(GenerationError, match="answered 401"):
        asyncio.run(unauthorised.complete([1, 2, 3], SamplingParams(max_tokens=4)))
    too_big = httpx.post(
        f"{server[0]}/v1/completions",
        json={"prompt": [config["vocab_size"]], "max_tokens": 2},
        headers=bearer(server[1]),
    )
    assert too_big.status_code == 422 and "vocabulary size" in too_big.text


def test_the_vllm_command_serves_a_model_or_a_lora_adapter_on_its_base(tiny_model: Path, tmp_path: Path) -> None:
    plain = plan_for(str(tiny_model), "tiny v1")
    command = vllm_command(plain, 8123, "k")
    assert command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert ["--model", str(tiny_model)] == command[command.index("--model") : command.index("--model") + 2]
    assert "--served-model-name" in command and "tiny-v1" in command and "--enable-lora" not in command
    assert command[3:5] == ["--host", "127.0.0.1"] and "--api-key" in command

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tiny_model), "r": 16}))
    lora = vllm_command(plan_for(str(adapter), "dpo-r1"), 8123, "k")
    assert lora[lora.index("--model") + 1] == str(tiny_model)
    assert lora[lora.index("--lora-modules") + 1] == f"dpo-r1={adapter}" and "--enable-lora" in lora
    assert lora[lora.index("--max-lora-rank") + 1] == "16"
