"""`/v1/export`: every dataset kind from stored feedback, aggregation across annotators, split, manifest;
and the output loads with `datasets` and passes TRL's own checks with a real chat template."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import datasets
import pytest
from fastapi.testclient import TestClient
from trl.data_utils import is_conversational, maybe_apply_chat_template

from llm_feedback_loop.training_data.repetition import repeated
from tests.support.payloads import BEST_PICK_COMPARISON, README_COMPARISON, README_RATING
from tests.support.tokenizer import chatml_tokenizer


def export(client: TestClient, kind: str, **params) -> list[dict]:
    response = client.get(f"/v1/export/{kind}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def seed_feedback(client: TestClient) -> None:
    client.post("/feedback", json=README_RATING)
    client.post("/feedback", json=README_RATING | {"response": "Tidak tahu.", "rating": "down"})
    client.post("/rlhf-feedback", json=README_COMPARISON)
    client.post("/rlhf-feedback", json=BEST_PICK_COMPARISON)
    client.post(
        "/v1/corrections",
        json={"prompt": "Berapa 2+2?", "original_response": "5", "corrected_response": "4", "annotator": "ana"},
    )


def test_each_kind_exports_the_rows_feedback_supports(client: TestClient) -> None:
    seed_feedback(client)
    sft = export(client, "sft")
    assert {(r["prompt"], r["completion"]) for r in sft} == {
        ("Apa itu Kubernetes?", "Kubernetes adalah sistem orkestrasi kontainer."),
        ("Berapa 2+2?", "4"),
    }
    dpo = export(client, "dpo")
    assert {(r["prompt"], r["chosen"], r["rejected"]) for r in dpo} == {
        (
            "Apa itu Kubernetes?",
            "Kubernetes digunakan untuk mengelola container dan deployment.",
            "Kubernetes adalah sistem orkestrasi kontainer.",
        ),
        ("Apa itu Kubernetes?", "Kubernetes adalah sistem orkestrasi kontainer.", "Tidak tahu."),
        ("Jelaskan Docker", BEST_PICK_COMPARISON["responses"][1]["text"], "Docker menjalankan kontainer."),
        ("Jelaskan Docker", BEST_PICK_COMPARISON["responses"][1]["text"], "Tidak tahu."),
        ("Berapa 2+2?", "4", "5"),
    }
    assert export(client, "reward") == dpo
    kto = export(client, "kto")
    assert sorted((r["completion"], r["label"]) for r in kto) == [
        ("Kubernetes adalah sistem orkestrasi kontainer.", True),
        ("Tidak tahu.", False),
    ]


def test_the_prompt_kind_exports_every_prompt_once_those_only_asked_included(client: TestClient) -> None:
    """What online RL samples answers to: each prompt with feedback, and each one answers were only logged for."""
    seed_feedback(client)
    asked = client.post("/v1/generations", json={"prompt": "Apa itu Helm?", "response": "Helm adalah ..."})
    assert asked.status_code == 201, asked.text
    prompts = [row["prompt"] for row in export(client, "prompt")]
    assert len(prompts) == len(set(prompts)) and "Apa itu Helm?" in prompts
    assert {"Apa itu Kubernetes?", "Berapa 2+2?", "Jelaskan Docker"} <= set(prompts)


def test_the_prompt_kind_includes_the_annotation_queues_prompts_judged_or_not(client: TestClient) -> None:
    seed_feedback(client)
    tasks = [{"prompt": "Apa itu Terraform?"}, {"prompt": "Apa itu Kubernetes?"}]  # the second has feedback too
    body = "".join(json.dumps(task) + "\n" for task in tasks)
    assert client.post("/v1/tasks/import", content=body.encode()).status_code == 201
    prompts = [row["prompt"] for row in export(client, "prompt")]
    assert len(prompts) == len(set(prompts)) and {"Apa itu Terraform?", "Apa itu Kubernetes?"} <= set(prompts)
    by_annotator = [row["prompt"] for row in export(client, "prompt", annotator="ana")]
    assert "Apa itu Terraform?" not in by_annotator  # a task is nobody's feedback
    assert "Apa itu Terraform?" not in [row["prompt"] for row in export(client, "dpo")]


def test_disagreeing_annotators_are_aggregated_never_both_directions(client: TestClient) -> None:
    base = {"prompt": "p", "responses": [{"text": "A"}, {"text": "B"}]}
    for annotator, ranking in [("ana", [0, 1]), ("budi", [0, 1]), ("cici", [1, 0])]:
        client.post("/v1/comparisons", json=base | {"ranking": ranking, "annotator": annotator})
    assert [(r["chosen"], r["rejected"]) for r in export(client, "dpo")] == [("A", "B")]
    assert len(export(client, "dpo", dedupe=False)) == 2
    client.post("/v1/comparisons", json=base | {"ranking": [1, 0], "annotator": "dedi"})
    assert export(client, "dpo") == []
    manifest = client.get("/v1/export/dpo/manifest").json()
    assert manifest["counts"]["ties_dropped"] == 1


@pytest.mark.parametrize("strategy", ["all-pairs", "best-vs-rest", "best-vs-random-lower", "best-vs-worst"])
def test_strategies_pair_a_ranking_of_four(client: TestClient, strategy: str) -> None:
    texts = ["w", "x", "y", "z"]
    client.post(
        "/v1/comparisons", json={"prompt": "p", "responses": [{"text": t} for t in texts], "ranking": [3, 2, 1, 0]}
    )
    pairs = [(r["chosen"], r["rejected"]) for r in export(client, "dpo", strategy=strategy)]
    expected_count = {"all-pairs": 6, "best-vs-rest": 3, "best-vs-random-lower": 1, "best-vs-worst": 6}[strategy]
    assert len(pairs) == expected_count
    if strategy == "best-vs-worst":
        assert pairs[0] == ("z", "w")
    elif strategy != "all-pairs":
        assert {chosen for chosen, _ in pairs} == {"z"}


def test_filters_select_feedback(client: TestClient) -> None:
    seed_feedback(client)
    assert [r["completion"] for r in export(client, "sft", annotator="ana")] == ["4"]
    assert [r["completion"] for r in export(client, "sft", model=README_RATING["model"])] == [README_RATING["response"]]


def test_split_keeps_each_prompt_on_one_side(client: TestClient) -> None:
    for i in range(60):
        for rating in ("up", "down"):
            client.post("/feedback", json={"prompt": f"prompt {i}", "response": f"{rating} {i}", "rating": rating})
    train = export(client, "kto", test_size=0.3, split="train")
    test = export(client, "kto", test_size=0.3, split="test")
    train_prompts = {r["prompt"] for r in train}
    test_prompts = {r["prompt"] for r in test}
    assert train_prompts and test_prompts
    assert not train_prompts & test_prompts
    assert len(train) + len(test) == 120
    assert export(client, "kto", test_size=0.3, split="test") == test  # deterministic
    manifest = client.get("/v1/export/kto/manifest", params={"test_size": 0.3}).json()
    assert manifest["counts"]["rows_per_split"] == {"train": len(train), "test": len(test)}
    test_bytes = client.get("/v1/export/kto", params={"test_size": 0.3, "split": "test"}).content
    assert manifest["files"]["test"]["sha256"] == hashlib.sha256(test_bytes).hexdigest()


@pytest.mark.parametrize("kind", ["sft", "dpo", "kto"])
@pytest.mark.parametrize("row_format", ["standard", "conversational"])
def test_exports_load_with_datasets_and_pass_trl_checks(
    client: TestClient, tmp_path: Path, kind: str, row_format: str
) -> None:
    seed_feedback(client)
    client.post(
        "/v1/ratings",
        json={
            "messages": [{"role": "system", "content": "Jawab singkat."}, {"role": "user", "content": "Halo?"}],
            "response": "Halo!",
            "rating": "up",
        },
    )
    path = tmp_path / f"{kind}.jsonl"
    path.write_bytes(client.get(f"/v1/export/{kind}", params={"format": row_format}).content)
    dataset = datasets.load_dataset("json", data_files=str(path), split="train")
    assert len(dataset) > 0
    tokenizer = chatml_tokenizer()
    for example in dataset:
        assert is_conversational(example) == (row_format == "conversational")
        applied = maybe_apply_chat_template(example, tokenizer)
        assert isinstance(applied["prompt"], str)
        if row_format == "conversational":
            assert applied["prompt"].startswith("<|im_start|>")
            assert applied["prompt"].endswith("<|im_start|>assistant\n")
        for answer_field in ("completion", "chosen", "rejected"):
            if answer_field in example:
                assert isinstance(applied[answer_field], str) and applied[answer_field]
        if kind == "kto":
            assert isinstance(example["label"], bool)


LIST_COMPARISON = {
    "prompt": "Sebutkan tiga buah.",
    "responses": [{"id": "1", "text": "1. Apel\n2. Jeruk\n3. Mangga"}, {"id": "2", "text": "Apel."}],
    "ranking": [0, 1],
}


def test_each_training_prompt_with_a_liked_list_gets_one_repetition_pair_and_the_test_side_none(
    client: TestClient,
) -> None:
    seed_feedback(client)
    client.post("/rlhf-feedback", json=LIST_COMPARISON)
    plain = export(client, "dpo", test_size=0.0)
    with_repeats = export(client, "dpo", repetition_pairs=True)
    added = [row for row in with_repeats if row not in plain]
    # the liked list, over itself repeated; the prompts whose liked answers are sentences get none
    assert added == [{"prompt": "Sebutkan tiga buah.", "chosen": "1. Apel\n2. Jeruk\n3. Mangga",
                      "rejected": "1. Apel\n2. Apel\n3. Apel"}]  # fmt: skip
    assert len(with_repeats) == len(plain) + 1

    # With a split, the held-out side keeps the annotators' pairs only.
    for seed in range(40):
        test = export(client, "dpo", test_size=0.5, seed=seed, split="test", repetition_pairs=True)
        train = export(client, "dpo", test_size=0.5, seed=seed, split="train", repetition_pairs=True)
        if any(row["prompt"] == LIST_COMPARISON["prompt"] for row in test) and train:
            break
    assert any(row["prompt"] == LIST_COMPARISON["prompt"] for row in test) and train
    assert all(row in plain for row in test + train)

    conversational = export(client, "dpo", format="conversational", repetition_pairs=True)
    row = next(row for row in conversational if row["rejected"][0]["content"].startswith("1. Apel\n2. Apel"))
    assert row["rejected"][0]["role"] == "assistant" and row["rejected"][0]["content"] == repeated(
        row["chosen"][0]["content"]
    )
    assert client.get("/v1/export/sft", params={"repetition_pairs": True}).status_code == 422
