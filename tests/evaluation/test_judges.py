"""Judges of a win rate: a Python function, and an OpenAI-compatible chat model asked in both orders."""

from __future__ import annotations

import json

import httpx
import pytest

from llm_feedback_loop.evaluation.judges import ChatModelJudge, FunctionJudge, JudgeError, load_judge
from llm_feedback_loop.evaluation.win_rate import win_rate

PROMPT = [{"role": "user", "content": "Name a colour."}]


def endpoint(prefers: str) -> httpx.Client:
    """A chat endpoint whose model prefers the answer containing `prefers` ("position": always says A)."""
    asked: list[dict] = []

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        asked.append(body)
        question = body["messages"][0]["content"]
        first = question.split("Answer A:\n")[1].split("\n\nAnswer B:")[0]
        verdict = "A" if prefers == "position" or prefers in first else "B"
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": f"{verdict}."}}]})

    client = httpx.Client(base_url="http://judge/v1", transport=httpx.MockTransport(handle))
    client.asked = asked  # type: ignore[attr-defined]
    return client


def test_a_chat_model_judge_asks_both_orders() -> None:
    client = endpoint("blue")
    judge = ChatModelJudge("http://judge/v1", "big", client=client)
    assert judge.judge(PROMPT, "It is blue.", "It is red.") == (1.0, 0.0)
    assert judge.judge(PROMPT, "It is red.", "It is blue.") == (0.0, 1.0)
    assert len(client.asked) == 4 and client.asked[0]["model"] == "big"  # type: ignore[attr-defined]
    biased = ChatModelJudge("http://judge/v1", None, client=endpoint("position"))
    assert biased.judge(PROMPT, "It is blue.", "It is red.") == (0.5, 0.5)  # position alone decides nothing
    result = win_rate(judge, [PROMPT, PROMPT], ["It is blue.", "It is red."], ["It is red.", "It is blue."])
    assert result["win_rate"] == 0.5 and "candidate_rewards" not in result


def test_a_failing_judge_is_reported() -> None:
    client = httpx.Client(base_url="http://judge/v1", transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    with pytest.raises(JudgeError, match="judge at http://judge/v1 failed: it answered 500 Internal Server Error"):
        ChatModelJudge("http://judge/v1", None, client=client).judge(PROMPT, "a", "b")

    def broken(prompt: str, answer: str) -> float:
        raise ZeroDivisionError("oops")

    with pytest.raises(JudgeError, match="ZeroDivisionError: oops"):
        FunctionJudge("broken", broken).judge(PROMPT, "a", "b")


def test_a_judge_that_echoes_the_key_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """A judge endpoint that refuses with a body echoing the key: the error says the status, not the body,
    the key or the password of the URL; the log keeps the body with the key redacted."""
    key = "sk-judge-0123456789abcdef"

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": f"bad key {request.headers['authorization']}"})

    url = "https://judge:s3cret-password@judge.example/v1?api_key=also-secret"
    client = httpx.Client(
        base_url="https://judge.example/v1",
        headers={"Authorization": f"Bearer {key}"},
        transport=httpx.MockTransport(refuse),
    )
    judge = ChatModelJudge(url, "big", key, client=client)
    with caplog.at_level("ERROR"), pytest.raises(JudgeError) as raised:
        judge.judge(PROMPT, "a", "b")
    message = str(raised.value)
    assert message == "the judge at https://judge.example/v1?api_key=*** failed: it answered 401 Unauthorized"
    assert judge.name == "big at https://judge.example/v1?api_key=***"  # the name goes into reports
    for secret in (key, "s3cret-password", "also-secret"):
        assert secret not in message and secret not in caplog.text
    assert "bad key Bearer ***" in caplog.text


def test_judges_are_named_by_their_spec() -> None:
    assert isinstance(load_judge("fn:concise", None, lambda ref: (None, None)), FunctionJudge)
    assert isinstance(load_judge("http://127.0.0.1:1/v1", "m", lambda ref: (None, None)), ChatModelJudge)
    loaded = load_judge("7", None, lambda ref: (f"model {ref}", "tokenizer"))
    assert loaded.name == "7" and loaded.model == "model 7"  # type: ignore[attr-defined]


def test_a_reward_models_calibration_compares_its_confidence_with_how_often_it_is_right() -> None:
    from llm_feedback_loop.evaluation.preference import calibration

    sure_and_right = calibration([0.99, 0.99, 0.99, 0.99])
    assert sure_and_right["calibration_error"] < 0.02 and sure_and_right["brier"] < 0.001
    sure_and_half_wrong = calibration([0.99, 0.99, 0.01, 0.01])  # 99% sure each time, right half the time
    assert abs(sure_and_half_wrong["calibration_error"] - 0.49) < 1e-9
    unsure = calibration([0.5, 0.5])
    assert unsure["brier"] == 0.25 and unsure["calibration_error"] == 0.5  # a coin says 50%, is "right" never
