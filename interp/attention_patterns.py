"""Attention patterns of cross-attention heads over the text tokens, read without
changing the generation.

A pattern is each head's attention probabilities over the context positions,
``softmax(q kᵀ · scale + mask)``. Attention implementations (SDPA) never materialize it,
so it is computed in the read path: one traced generation reads the query projection
(``queries``), the key projection (``keys``) and the text mask (``mask``) of each chosen
layer, and the adapter's :meth:`~interp.adapter.ModelAdapter.attention_scores` applies
what the model's attention processor does between projections and softmax (per-head
query/key norms, grouped-query repetition, scale). Only reads: the generation's output
is the plain one, bit for bit.

>>> # patterns = read_patterns(model, request, layers=[2])
>>> # patterns.probabilities[2].shape   # [step, rows, head, ctx]: averaged over audio positions
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from beartype import beartype
from torch import Tensor

from interp.adapter import GenerationOutput, GenerationRequest, ModelAdapter
from interp.edits import Read
from interp.errors import SiteError
from interp.runner import run
from interp.selection import Branch, StepsLike
from interp.types import Pattern


@dataclass
class AttentionPatterns:
    """Attention probabilities of the heads of some cross-attention layers.

    Attributes:
        probabilities: Cross layer -> ``[step, rows, head, ctx]`` (averaged over the audio
            positions) or ``[step, rows, head, seq, ctx]`` (``average=False``); rows are the
            read branch's rows (``both``: uncond rows, then cond rows).
        steps: The denoising steps along the first axis.
        output: The generation, identical to one without the reads.
    """

    probabilities: dict[int, Pattern]
    steps: tuple[int, ...]
    output: GenerationOutput


def probabilities(adapter: ModelAdapter, layer: int, queries: Tensor, keys: Tensor, bias: Tensor) -> Tensor:
    """One call's attention probabilities ``[batch, head, seq, ctx]`` (float32).

    Args:
        adapter: The model (it knows its attention's math).
        layer: The cross-attention layer.
        queries: ``[batch, seq, head, d_head]`` (the ``queries`` site).
        keys: ``[batch, ctx, kv_head, d_head]`` (the ``keys`` site).
        bias: ``[batch, ctx]`` additive mask (the ``mask`` site).
    """
    module = adapter.catalog.module("cross", layer)
    scores = adapter.attention_scores(module, queries, keys)
    return torch.softmax(scores + bias[:, None, None, :].float(), dim=-1)


@beartype
def read_patterns(
    adapter: ModelAdapter,
    request: GenerationRequest,
    layers: Sequence[int] | None = None,
    *,
    steps: StepsLike = None,
    branch: Branch | str = Branch.COND,
    average: bool = True,
) -> AttentionPatterns:
    """Run one generation and read the attention patterns of every head of ``layers``.

    Args:
        adapter: The model.
        request: Prompts, seeds and generation settings.
        layers: Cross-attention layers (default all).
        steps: Denoising steps to read (default all).
        branch: CFG branch (default the conditional one).
        average: Average over the audio positions (``[.., head, ctx]``) or keep them
            (``[.., head, seq, ctx]``).

    Raises:
        SiteError: For a layer that is not a cross-attention layer of the model.
        UnsupportedModelError: If the adapter does not know its attention's math.
    """
    catalog = adapter.catalog
    chosen = list(range(catalog.count("cross"))) if layers is None else list(layers)
    if not chosen:
        raise SiteError("No cross-attention layer to read patterns of: give at least one layer.")
    for layer in chosen:
        catalog.module("cross", layer)
    reads = [
        Read(f"cross.{layer}.{component}", steps=steps, branch=branch)
        for layer in chosen
        for component in ("mask", "queries", "keys")
    ]
    result = run(adapter, request, reads=reads)
    patterns: dict[int, Tensor] = {}
    for layer in chosen:
        per_step = []
        for q, k, bias in zip(*(result.reads[f"cross.{layer}.{c}"] for c in ("queries", "keys", "mask"))):
            p = probabilities(adapter, layer, q, k, bias)
            per_step.append(p.mean(dim=2) if average else p)
        patterns[layer] = torch.stack(per_step)
    step_indices = result.read_steps[f"cross.{chosen[0]}.mask"]
    return AttentionPatterns(patterns, step_indices, result.output)
