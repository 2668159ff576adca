"""The rewards of the online methods (GRPO, RLOO), given with `--reward` (repeatable, with `--reward-weight`):

- `fn:MODULE:FUNCTION` or `fn:FILE.py:FUNCTION`: a Python function. Either TRL's form, called with the batch
  (`f(prompts=..., completions=..., **columns) -> list[float | None]`, one score per completion), or the form
  `llmfl eval --judge fn:` takes, `f(prompt: str, answer: str) -> float`, called per answer;
- a reward model: a registered version trained with `llmfl train reward` (id or name), or its folder.
  A LoRA reward model is merged into its base first (TRL does not set up a PEFT reward model's tokenizer);
- `http(s)://HOST/v1`: an OpenAI-compatible judge model (`--reward-judge-model` names it, `JUDGE_API_KEY` is
  its key), asked to rate each answer from 0 to 10 (the score is the rating / 10; no number: no score).

Everything is checked before the policy loads: a version that is not a reward model, a function that cannot
be imported, or one that returns the wrong number of scores for a probe batch is refused with a message.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FUNCTION_PREFIX = "fn:"
JUDGE_PREFIXES = ("http://", "https://")
JUDGE_PROMPT = (
    "Rate how good the answer is as a reply to the request, from 0 (useless) to 10 (perfect). "
    "Reply with the number only.\n\nRequest:\n{prompt}\n\nAnswer:\n{answer}"
)
PROBE_ANSWER = "A short probe answer."


class RewardError(ValueError):
    """A reward that cannot be used; the message names the --reward and what to do."""


def text_of(value: Any) -> str:
    """The text of a prompt or completion as TRL passes it: text, or chat messages (the last one's content)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return str(value[-1].get("content", ""))
    return str(value)


def takes_batches(function: Callable[..., Any]) -> bool:
    """Whether `function` has TRL's batch form (a `completions` parameter or **kwargs) rather than (prompt, answer)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind is p.VAR_KEYWORD or p.name == "completions" for p in parameters)


class RewardFunction:
    """A user's function as TRL calls a reward function, with the count of its scores checked."""

    def __init__(self, spec: str, function: Callable[..., Any]) -> None:
        self.spec, self.function, self.batched = spec, function, takes_batches(function)
        self.__name__ = spec.removeprefix(FUNCTION_PREFIX).rpartition(":")[2] or "reward"  # TRL logs by this name

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float | None]:
        try:
            if self.batched:
                scores = list(self.function(prompts=prompts, completions=completions, **columns))
            else:
                scores = [self.function(text_of(p), text_of(c)) for p, c in zip(prompts, completions, strict=True)]
        except RewardError:
            raise
        except Exception as error:  # a user's function: say which and why
            raise RewardError(f"--reward {self.spec} failed: {type(error).__name__}: {error}") from None
        if len(scores) != len(completions):
            raise RewardError(
                f"--reward {self.spec} returned {len(scores)} scores for {len(completions)} completions; "
                "it must return one score (or None) per completion"
            )
        try:
            return [None if score is None else float(score) for score in scores]
        except (TypeError, ValueError):
            raise RewardError(f"--reward {self.spec} returned a score that is not a number: {scores!r}") from None


def load_function(spec: str) -> RewardFunction:
    from llm_feedback_loop.objectives.base import ObjectiveError, import_object

    try:
        function = import_object(spec.removeprefix(FUNCTION_PREFIX))
    except ObjectiveError as error:
        raise RewardError(f"--reward {spec}: {error}") from None
    if not callable(function):
        raise RewardError(f"--reward {spec} is not a function")
    return RewardFunction(spec, function)


def probe(function: Callable[..., Any], prompts: list[Any]) -> None:
    """Call `function` on a small batch like TRL's (two answers to each of two prompts); raise RewardError if
    it fails or gives the wrong number of scores. Run before any model is loaded."""
    batch = [prompt for prompt in prompts[:2] for _ in range(2)]
    completions = [[{"role": "assistant", "content": PROBE_ANSWER}] for _ in batch]
    function(prompts=batch, completions=completions)


class JudgeReward:
    """An OpenAI-compatible chat model as a reward: each answer rated 0-10 by it, as TRL calls a reward."""

    def __init__(self, url: str, model: str | None, api_key: str | None, timeout_s: float = 120.0) -> None:
        import httpx

        from llm_feedback_loop.logging_redaction import split_userinfo, url_without_credentials

        base, auth = split_userinfo(url.rstrip("/"))
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.spec, self.model = url_without_credentials(url), model
        self.client = httpx.Client(base_url=base, headers=headers, auth=None if api_key else auth, timeout=timeout_s)
        self.__name__ = "judge"

    def rate(self, prompt: str, answer: str) -> float | None:
        import re

        import httpx

        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": JUDGE_PROMPT.format(prompt=prompt, answer=answer)}]
        }
        body |= {"model": self.model} if self.model else {}
        body |= {"temperature": 0, "max_tokens": 8}
        try:
            response = self.client.post("/chat/completions", json=body)
            response.raise_for_status()
            text = response.json()["choices"][0]["message"]["content"] or ""
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as error:
            raise RewardError(f"--reward {self.spec}: the judge did not answer ({type(error).__name__})") from None
        found = re.search(r"\d+(?:\.\d+)?", text)
        return None if found is None else min(max(float(found.group()), 0.0), 10.0) / 10

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float | None]:
        return [self.rate(text_of(p), text_of(c)) for p, c in zip(prompts, completions, strict=True)]


def is_reward_model_folder(folder: Path) -> bool:
    """A saved sequence-classification model (or a LoRA adapter for one) with one output: a reward model."""
    adapter = folder / "adapter_config.json"
    if adapter.is_file():
        return json.loads(adapter.read_text(encoding="utf-8")).get("task_type") == "SEQ_CLS"
    config = folder / "config.json"
    if not config.is_file():
        return False
    loaded = json.loads(config.read_text(encoding="utf-8"))
    architectures = loaded.get("architectures") or []
    return any(name.endswith("ForSequenceClassification") for name in architectures) and (
        loaded.get("num_labels", len(loaded.get("id2label") or {0: 0})) == 1
    )


@dataclass
class RewardModel:
    """A reward model the run uses: the spec given, its folder, and its registered version (if any)."""

    spec: str
    source: str
    version_id: int | None = None
    version_name: str | None = None

    def lineage(self) -> dict[str, Any]:
        return {"reward": self.spec, "source": self.source, "version_id": self.version_id, "name": self.version_name}


def merged_reward_model(model: RewardModel, output_dir: Path) -> str:
    """A folder TRL can load as `AutoModelForSequenceClassification`: the model's own, or for a LoRA adapter the
    adapter merged into its base (once, under OUTPUT_DIR/reward-N)."""
    folder = Path(model.source)
    if not (folder / "adapter_config.json").is_file():
        return str(folder)
    merged = output_dir / f"reward-{model.version_id or folder.name}"
    if not (merged / "config.json").is_file():
        from peft import AutoPeftModelForSequenceClassification
        from transformers import AutoTokenizer

        adapter = AutoPeftModelForSequenceClassification.from_pretrained(str(folder), num_labels=1)
        adapter.merge_and_unload().save_pretrained(merged)
        AutoTokenizer.from_pretrained(str(folder)).save_pretrained(merged)
    return str(merged)
