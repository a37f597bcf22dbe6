"""A tiny Stable Audio model with planted heads: only they carry the prompt."""

import pytest
import torch

PLANTED = {"cross.0.head.1", "cross.1.head.3"}


@pytest.fixture(scope="module")
def planted_model():
    """Every cross-attention head outside :data:`PLANTED` has zero output-projection
    columns, so the prompt reaches the output through the planted heads only."""
    from models.stable_audio import StableAudioAdapter
    from models.tiny.stable_audio import tiny_stable_audio

    adapter = StableAudioAdapter("planted", tiny_stable_audio(seed=1))
    with torch.no_grad():
        for layer, block in enumerate(adapter.denoiser.transformer_blocks):
            module = adapter.catalog.module("cross", layer)
            for head in range(module.n_heads):
                if f"cross.{layer}.head.{head}" not in PLANTED:
                    columns = slice(head * module.d_head, (head + 1) * module.d_head)
                    block.attn2.to_out[0].weight[:, columns] = 0
    return adapter


@pytest.fixture
def base():
    from interp.adapter import GenerationRequest

    return GenerationRequest(prompts=("x",), seeds=(0,), num_steps=4, guidance_scale=3.0, duration_s=4.0)


@pytest.fixture
def pairs():
    from interp.prompts import PromptPair

    return [
        PromptPair("a sad violin song", "a happy trumpet song", "mood", "sad", "happy"),
        PromptPair("a slow piano piece", "a fast organ piece", "tempo", "slow", "fast"),
    ]
