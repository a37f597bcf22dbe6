"""Fixtures for steering tests: one torch thread (the 2 shared cores are oversubscribed
otherwise, which makes tiny forwards ~30x slower), a small guided request."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def request_3():
    """A 4-step guided request for three prompts."""
    from interp.adapter import GenerationRequest

    return GenerationRequest(
        prompts=("a sad violin song", "a happy trumpet", "a fast jazz track"),
        seeds=(0, 1, 2),
        num_steps=4,
        guidance_scale=3.0,
        duration_s=4.0,
    )


@pytest.fixture(scope="package")
def happy():
    from interp.steering import steering_concept

    return steering_concept("happy", n_pairs=6)
