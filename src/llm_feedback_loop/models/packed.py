"""Faster linear layers for generation on a CPU: each float32 `nn.Linear` of a model multiplies with its weight
prepacked once for oneDNN, instead of calling MKL's sgemm on the plain weight at every product.

These are the operators torch.compile's freezing pass puts in a frozen CPU graph (`mkldnn._reorder_linear_weight`
packs a weight; `mkldnn._linear_pointwise` multiplies with it); here they replace each linear layer's `forward`
and nothing else of the model changes. Measured by `bench/bench_packed.py` on this project's machine (AMD EPYC,
AVX-512, torch 2.13 with MKL 2024.2, 2 threads), SmolLM2-135M-Instruct:

    one product (ms)              1 row            8 rows           32 rows
    576 -> 1536 (MLP up)          0.048 -> 0.036   0.183 -> 0.052   0.396 -> 0.137
    1536 -> 576 (MLP down)        0.044 -> 0.037   0.151 -> 0.053   0.363 -> 0.147
    576 -> 49152 (the LM head)    7.29  -> 1.36    13.3  -> 2.68    21.6  -> 5.16
    (576 -> 576 and 576 -> 192 with one row are slower packed: 0.018 -> 0.021 and 0.010 -> 0.015 ms)

    plain generate, one prompt, 64 greedy tokens: 2.74 -> 1.48 s, the same tokens
    the loop's held-out evaluation (42 prompts, 64 tokens): greedy 11.8 -> 5.6 s, 2 sampled answers each
    27.3 -> 16.4 s, every answer the same

The answers may differ from the unpacked model's in the last bits of a float (the products add in another order,
as any two BLAS kernels do), so a near-tie between two tokens can break the other way.

Inference only: the packed product has no backward, and a packed layer's plain weight is let go (an empty
tensor of its dtype takes its place, so the model holds one copy of each weight, not two), except a weight another
module shares (an LM head tied to the embeddings keeps it). transformers maps a safetensors file into memory and its
tensors are views of that map, which stays resident as long as one of them lives: the kept parameters and buffers
(the embeddings, the norms: about 0.1 GB of SmolLM2-135M) are copied out of it, and the map closes. Measured:
resident memory after loading, reading every weight and packing, 1390 MB; with the plain weights let go and the
map closed, 986 MB (the plain model, every weight read: 893 MB). So a packed model generates and does nothing
else: it is not trained, saved or merged. The serving engine packs the model it owns, and the evaluation the model it
loads to answer held-out prompts; neither is used for anything else.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

log = logging.getLogger(__name__)

PACKED = "_llmfl_packed_weight"  # the attribute a packed layer keeps its packed weight in


def packing_available() -> bool:
    """Whether this torch build has oneDNN and the two operators (a build without them packs nothing)."""
    import torch

    ops = getattr(torch.ops, "mkldnn", None)
    return (
        torch.backends.mkldnn.is_available()
        and ops is not None
        and hasattr(ops, "_reorder_linear_weight")
        and hasattr(ops, "_linear_pointwise")
    )


def packed_forward(packed: Any, bias: Any, x: Any) -> Any:
    import torch

    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


def pack_linear_layers(model: Any) -> int:
    """Pack every float32 `nn.Linear` of `model` that lives on the CPU (a LoRA layer's base layer included; its
    adapter's own small layers too) and let its plain weight go; returns how many were packed, 0 where packing is
    unavailable or its first product disagrees with the plain one (then nothing is changed). Packing twice packs
    nothing more."""
    import torch

    if not packing_available():
        return 0
    layers = [
        module
        for module in model.modules()
        if type(module) is torch.nn.Linear
        and module.weight.device.type == "cpu"
        and module.weight.dtype == torch.float32
        and not hasattr(module, PACKED)
    ]
    if not layers:
        return 0
    try:
        with torch.no_grad():
            first = layers[0]
            packed = torch.ops.mkldnn._reorder_linear_weight(first.weight.detach(), None)
            probe = torch.randn(3, first.in_features, generator=torch.Generator().manual_seed(0))
            plain = torch.nn.functional.linear(probe, first.weight, first.bias)
            ours = packed_forward(packed, first.bias, probe)
            if not torch.allclose(plain, ours, rtol=1e-4, atol=1e-4):
                log.warning("oneDNN's packed linear product disagrees with the plain one; layers left unpacked")
                return 0
    except RuntimeError as error:  # an operator this build lacks or refuses
        log.warning("linear layers left unpacked: %s", error)
        return 0
    shared = shared_weights(model)
    done = 0
    with torch.no_grad():
        for module in layers:  # one layer at a time: at most one layer's weight is held twice
            try:
                packed = torch.ops.mkldnn._reorder_linear_weight(module.weight.detach(), None)
            except RuntimeError as error:  # this layer stays plain (and works); the ones before stay packed
                log.warning("a linear layer left unpacked: %s", error)
                continue
            setattr(module, PACKED, packed)
            bias = module.bias.detach() if module.bias is not None else None
            module.forward = functools.partial(packed_forward, packed, bias)
            if module.weight.data_ptr() not in shared:  # the packed copy is the only one needed now
                module.weight = torch.nn.Parameter(torch.empty(0, dtype=torch.float32), requires_grad=False)
            done += 1
        if done:  # the rest out of the loaded file's memory map, which then closes (below)
            for module in model.modules():
                for parameter in module.parameters(recurse=False):
                    if parameter.numel():
                        parameter.data = parameter.data.clone()
                for name, buffer in list(module.named_buffers(recurse=False)):
                    if buffer is not None and buffer.numel():
                        module._buffers[name] = buffer.clone()
    return done


def shared_weights(model: Any) -> set[int]:
    """The storage addresses of parameters that more than one module holds (tied weights)."""
    holders: dict[int, int] = {}
    for module in model.modules():
        for parameter in module.parameters(recurse=False):
            holders[parameter.data_ptr()] = holders.get(parameter.data_ptr(), 0) + 1
    return {address for address, count in holders.items() if count > 1}
