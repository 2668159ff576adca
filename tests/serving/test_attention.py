"""A continuous batch's attention computed request by request equals transformers' one product over the batch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from transformers.integrations.sdpa_attention import sdpa_attention_forward  # noqa: E402

from llm_feedback_loop.serving.attention import by_request, install  # noqa: E402


def batch(new_tokens: list[int], cached: list[int], heads: int = 6, kv_heads: int = 2, dim: int = 8):
    """A step of a continuous batch as the manager lays it out: every request's new tokens end to end in the
    query, every request's cached and new keys end to end in the key, a block-diagonal causal mask."""
    generator = torch.Generator().manual_seed(0)
    lengths = [c + n for c, n in zip(cached, new_tokens, strict=True)]
    cu_q = torch.tensor([0, *torch.tensor(new_tokens).cumsum(0).tolist()])
    cu_k = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
    query = torch.randn(1, heads, int(cu_q[-1]), dim, generator=generator)
    key = torch.randn(1, kv_heads, int(cu_k[-1]), dim, generator=generator)
    value = torch.randn(1, kv_heads, int(cu_k[-1]), dim, generator=generator)
    mask = torch.full((1, 1, int(cu_q[-1]), int(cu_k[-1])), float("-inf"))
    for i, (n, length) in enumerate(zip(new_tokens, lengths, strict=True)):
        for t in range(n):  # new token t sees the cache and the new tokens up to itself
            mask[0, 0, cu_q[i] + t, cu_k[i] : cu_k[i] + length - n + t + 1] = 0.0
    module = SimpleNamespace(
        num_key_value_groups=heads // kv_heads, is_causal=True, layer_idx=0, config=SimpleNamespace()
    )
    return module, query, key, value, mask, {"cu_seq_lens_q": cu_q, "cu_seq_lens_k": {"full_attention": cu_k}}


@pytest.mark.parametrize(
    ("new_tokens", "cached"),
    [([1, 1, 1], [5, 1, 12]), ([4, 1, 3, 1], [0, 7, 2, 3]), ([6], [0])],
    ids=["decoding", "prompts-and-decoding", "one-prompt"],
)
def test_by_request_equals_the_whole_product(new_tokens: list[int], cached: list[int]) -> None:
    module, query, key, value, mask, lengths = batch(new_tokens, cached)
    with torch.no_grad():
        ours, _ = by_request(module, query, key, value, mask, scaling=0.3, **lengths)
        theirs, _ = sdpa_attention_forward(module, query, key, value, mask, scaling=0.3, **lengths)
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_other_calls_go_to_transformers_own_function() -> None:
    install()
    module, query, key, value, mask, lengths = batch([2, 1], [3, 4])
    with torch.no_grad():
        plain, _ = by_request(module, query[:, :, :2], key[:, :, :5], value[:, :, :5], mask[..., :2, :5], scaling=0.3)
        expected, _ = sdpa_attention_forward(
            module, query[:, :, :2], key[:, :, :5], value[:, :, :5], mask[..., :2, :5], scaling=0.3
        )
    assert torch.equal(plain, expected)  # no continuous batch: transformers' own function
    ours, _ = by_request(module, query, key, value, mask, scaling=0.3, **lengths)  # with gradients on: the same
    theirs, _ = sdpa_attention_forward(module, query, key, value, mask, scaling=0.3, **lengths)
    assert torch.equal(ours, theirs)
