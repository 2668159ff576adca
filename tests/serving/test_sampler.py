"""Per-row sampling on fixed scores: greedy rows are an argmax, seeded rows draw from their own generator."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from llm_feedback_loop.serving.sampler import RowSampling, row_sampling, sample_rows, top_p_filter  # noqa: E402


def scores(rows: int = 4, vocabulary: int = 50, seed: int = 0):
    return torch.randn(rows, vocabulary, generator=torch.Generator().manual_seed(seed))


def test_greedy_rows_are_the_argmax_whatever_the_others_do() -> None:
    values = scores()
    settings = [None, RowSampling(0.0), row_sampling(1.0, 0.9, None), row_sampling(0.0, 0.5, 3)]
    tokens = sample_rows(values.clone(), settings)
    assert tokens[0] == values[0].argmax() and tokens[1] == values[1].argmax() and tokens[3] == values[3].argmax()
    assert row_sampling(0.0, 1.0, 3).generator is None  # a seed on a greedy row makes no generator


def test_a_seeded_row_draws_the_same_token_whatever_its_neighbours() -> None:
    values = scores(rows=3)
    alone = [sample_rows(values[1:2].clone(), [row_sampling(1.0, 0.95, 11)]).item() for _ in range(1)]
    in_batch = sample_rows(values.clone(), [row_sampling(0.7, 1.0, None), row_sampling(1.0, 0.95, 11), None])
    assert in_batch[1].item() == alone[0]
    draws = {sample_rows(values[1:2].clone(), [row_sampling(1.0, 1.0, seed)]).item() for seed in range(40)}
    assert len(draws) > 1  # different seeds, different draws


def test_top_p_keeps_the_smallest_set_reaching_p_and_at_least_one_token() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.97, 0.01, 0.01, 0.01]]))
    kept = top_p_filter(logits, torch.tensor([0.7, 0.1])).isfinite()
    assert kept.tolist() == [[True, True, False, False], [True, False, False, False]]


def test_a_low_top_p_row_samples_only_its_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.05, 0.05]])).repeat(200, 1)
    tokens = sample_rows(logits, [row_sampling(1.0, 0.5, None)] * 200)
    assert set(tokens.tolist()) == {0}
