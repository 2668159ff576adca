"""The default model: with no BASE_MODEL and no network, chat answers with real SmolLM2-135M-Instruct text.

The slowest test here: the first run converts the shipped GGUF file to a cached fp32 folder (~20 s).
"""

from __future__ import annotations

from llm_feedback_loop.settings import Settings
from tests.support.accounts import admin_client


def test_default_model_answers_chat_and_logs_its_version(tmp_path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/feedback.db", _env_file=None)  # type: ignore[call-arg]
    assert settings.base_model is None
    with admin_client(settings) as client:
        response = client.post(
            "/v1/chat", json={"prompt": "What is the capital of France?", "temperature": 0, "max_tokens": 24}
        )
        assert response.status_code == 200, response.text
        (candidate,) = response.json()["candidates"]
        assert "Paris" in candidate["text"]
        assert candidate["model_version"] == "SmolLM2-135M-Instruct"
        legacy = client.post("/chat", json={"prompt": "Say hello in one word."}).json()
        assert legacy["responses"][0].strip()
        stored = client.get("/v1/generations").json()
        assert stored["total"] == 2
        assert {item["model_version"] for item in stored["items"]} == {"SmolLM2-135M-Instruct"}
