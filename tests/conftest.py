"""Shared fixtures: tiny models built offline from constructor arguments."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the hub
# Tiny models run fastest, and identically, on one thread (CI has 2 cores).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_sa():
    """A tiny Stable Audio adapter (2 layers, 4 query heads, 2 kv heads, width 32)."""
    from models.stable_audio import StableAudioAdapter
    from models.tiny.stable_audio import tiny_stable_audio

    return StableAudioAdapter("tiny-stable-audio", tiny_stable_audio())


@pytest.fixture
def sa_request():
    """A 4-step guided request for two prompts with distinct seeds."""
    from interp.adapter import GenerationRequest

    return GenerationRequest(
        prompts=("a sad violin song", "a happy trumpet"),
        seeds=(0, 1),
        num_steps=4,
        guidance_scale=3.0,
        duration_s=4.0,
    )
