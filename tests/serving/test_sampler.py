"""Per-row sampling on fixed scores: greedy rows are an argmax, seeded rows draw from their own generator."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from llm_feedback_loop.serving.sampler import (  # noqa: E402
    RowSampling,
    nucleus_candidates,
    row_sampling,
    sample_rows,
    top_p_filter,
)


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


def peaked(rows: int, vocabulary: int, seed: int = 0):
    """Scores like a language model's: a few tokens far more likely than the rest."""
    values = scores(rows, vocabulary, seed) * 2.0
    values[:, :20] += torch.linspace(12.0, 4.0, 20)
    return values[:, torch.randperm(vocabulary, generator=torch.Generator().manual_seed(seed + 1))]


def test_the_nucleus_among_the_candidates_is_the_nucleus_of_the_whole_vocabulary() -> None:
    values, top_p = peaked(64, 5000), torch.full((64,), 0.95)
    candidates, indices, fits = nucleus_candidates(values, top_p, candidates=256)
    assert fits.all()
    expected = top_p_filter(values, top_p).isfinite()
    for row in range(64):
        found = set(indices[row][candidates[row].isfinite()].tolist())
        assert found == set(expected[row].nonzero().squeeze(-1).tolist())
        assert candidates[row][candidates[row].isfinite()].equal(
            values[row][sorted(found, key=lambda t: -values[row][t])]
        )


def gumbel_over_the_vocabulary(row, temperature: float, top_p: float, seed: int) -> int:
    """What a seeded row drew before the candidates: the whole vocabulary sorted and filtered, then Gumbel-max."""
    filtered = top_p_filter((row / temperature).unsqueeze(0), torch.tensor([top_p]))[0]
    uniform = torch.rand(row.size(-1), generator=torch.Generator().manual_seed(seed)).clamp_(min=1e-20)
    return int((filtered - torch.log(-torch.log(uniform))).argmax())


def test_a_seeded_row_draws_what_the_whole_vocabulary_gives_whether_its_nucleus_fits_or_not() -> None:
    # Row 0 is peaked (its nucleus is among the 512 candidates), row 1 flat (a nucleus of ~1,900 tokens: the
    # whole vocabulary is sorted), row 2 unseeded, row 3 without top-p.
    values = torch.cat([peaked(1, 2000), scores(1, 2000) * 0.01, peaked(2, 2000, seed=3)])
    for seed in range(20):
        settings = [row_sampling(0.8, 0.95, seed), row_sampling(0.8, 0.95, seed), row_sampling(0.8, 0.95, None)]
        settings.append(row_sampling(1.0, 1.0, seed))
        tokens = sample_rows(values.clone(), settings)
        assert tokens[0] == gumbel_over_the_vocabulary(values[0], 0.8, 0.95, seed)
        assert tokens[1] == gumbel_over_the_vocabulary(values[1], 0.8, 0.95, seed)
        assert tokens[3] == gumbel_over_the_vocabulary(values[3], 1.0, 1.0, seed)
        assert top_p_filter((values[2:3] / 0.8), torch.tensor([0.95]))[0, tokens[2]].isfinite()
    _, _, fits = nucleus_candidates(values[:2] / 0.8, torch.tensor([0.95, 0.95]))
    assert fits.tolist() == [True, False]


def test_generates_temperature_and_nucleus_is_transformers_temperature_then_top_p() -> None:
    import torch
    from transformers import TemperatureLogitsWarper, TopPLogitsWarper

    from llm_feedback_loop.serving.sampler import temperature_and_nucleus

    generator = torch.Generator().manual_seed(3)
    peaked = torch.randn(6, 2000, generator=generator) * 6  # nuclei among the candidates
    flat = torch.randn(3, 2000, generator=generator) * 0.1  # nuclei larger than the candidates
    scores = torch.cat([peaked, flat])
    ids = torch.zeros(scores.size(0), 1, dtype=torch.long)
    for temperature, top_p in [(0.8, 0.95), (1.3, 0.5), (0.7, 1.0)]:
        theirs = TopPLogitsWarper(top_p)(ids, TemperatureLogitsWarper(temperature)(ids, scores.clone()))
        ours = temperature_and_nucleus(temperature, top_p)(ids, scores.clone())
        assert torch.equal(torch.isinf(ours), torch.isinf(theirs))
        assert torch.allclose(ours[~torch.isinf(ours)], theirs[~torch.isinf(theirs)])
    greedy = temperature_and_nucleus(0.0, 0.95)(ids, scores.clone())
    assert torch.equal(greedy.argmax(dim=-1), scores.argmax(dim=-1))
    assert torch.equal(torch.isinf(greedy).sum(dim=-1), torch.full((scores.size(0),), scores.size(1) - 1))
