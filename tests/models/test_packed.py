"""Linear layers packed for oneDNN: the same products as the plain layers, every float32 CPU layer packed once
with its plain weight let go (a tied one kept), and nothing packed where it cannot be."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_feedback_loop.models.loader import load_model
from llm_feedback_loop.models.packed import PACKED, pack_linear_layers, packing_available

pytestmark = pytest.mark.skipif(not packing_available(), reason="this torch build has no oneDNN linear operators")


def linear_layers(model):
    import torch

    return [m for m in model.modules() if type(m) is torch.nn.Linear]


def logits(model, ids):
    import torch

    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits


def test_packed_layers_compute_what_the_plain_ones_do(tiny_model: Path) -> None:
    import torch

    loaded = load_model(str(tiny_model))
    ids = loaded.tokenizer("The quick brown fox jumps over the lazy dog")["input_ids"]
    plain = logits(loaded.model, ids)
    packed = pack_linear_layers(loaded.model)
    assert packed == len(linear_layers(loaded.model)) > 0
    assert all(hasattr(m, PACKED) for m in linear_layers(loaded.model))
    assert torch.allclose(logits(loaded.model, ids), plain, rtol=1e-4, atol=1e-4)
    assert pack_linear_layers(loaded.model) == 0  # already packed: nothing more
    head = loaded.model.get_output_embeddings()
    tied = head.weight is loaded.model.get_input_embeddings().weight
    assert tied  # the tiny model ties its LM head to its embeddings, and packing keeps them tied
    for layer in linear_layers(loaded.model):  # one copy of each weight: the packed one, or the shared one
        assert layer.weight.numel() == (layer.in_features * layer.out_features if layer is head and tied else 0)
    with torch.no_grad():  # generation runs through them (batched rows of different lengths too)
        out = loaded.model.generate(torch.tensor([ids]), max_new_tokens=4, do_sample=False)
    assert out.shape[1] == len(ids) + 4


def test_a_lora_model_packs_its_base_layers_and_keeps_its_adapter(tiny_model: Path, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    loaded = load_model(str(tiny_model))
    model = get_peft_model(loaded.model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    model.eval()
    ids = loaded.tokenizer("Hello there")["input_ids"]
    plain = logits(model, ids)
    assert pack_linear_layers(model) > 0
    base_layers = [m.base_layer for m in model.modules() if hasattr(m, "base_layer") and hasattr(m, "lora_A")]
    assert base_layers and all(hasattr(layer, PACKED) for layer in base_layers)
    assert torch.allclose(logits(model, ids), plain, rtol=1e-4, atol=1e-4)  # the adapter's delta still added


def test_layers_that_are_not_float32_are_left_as_they_are(tiny_model: Path) -> None:
    loaded = load_model(str(tiny_model), dtype="bfloat16")
    assert pack_linear_layers(loaded.model) == 0
    assert not any(hasattr(m, PACKED) for m in linear_layers(loaded.model))
