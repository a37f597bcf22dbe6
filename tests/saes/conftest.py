"""Fixtures for SAE tests: one torch thread (small SAEs train ~30x faster on the shared
cores), a guided request, and a small activation cache of the tiny Stable Audio."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def request_2():
    from interp.adapter import GenerationRequest

    return GenerationRequest(
        prompts=("a sad song", "a happy song"), seeds=(0, 1), num_steps=4, guidance_scale=3.0, duration_s=4.0
    )


@pytest.fixture(scope="package")
def happy():
    from interp.steering import steering_concept

    return steering_concept("happy", n_pairs=12)


@pytest.fixture(scope="package")
def tiny_cache(tiny_sa, happy, tmp_path_factory):
    """cross.1.out and cross.1.heads of 24 prompts x 2 seeds, cond branch, 4 steps."""
    from interp.adapter import GenerationRequest
    from saes.cache import cache_activations

    request = GenerationRequest(prompts=("x",), seeds=(0,), num_steps=4, guidance_scale=3.0, duration_s=4.0)
    prompts = list(happy.positive + happy.negative)
    return cache_activations(
        tiny_sa,
        request,
        prompts,
        ["cross.1.out", "cross.1.heads"],
        tmp_path_factory.mktemp("cache"),
        seeds=[0, 1],
        batch_size=12,
    )


@pytest.fixture(scope="package")
def tiny_sae(tiny_cache, tmp_path_factory):
    """A TopK SAE (k=4, 128 features) trained briefly on cross.1.out, saved and reloaded."""
    from saes.train import SAESettings, load_sae, train_saes

    out = tmp_path_factory.mktemp("saes")
    settings = SAESettings(
        architecture="topk", k=4, expansion_factor=4, lr=3e-3, training_steps=100, batch_size=256, holdout=4
    )
    train_saes(tiny_cache, settings, out, sites=["cross.1.out"])
    return load_sae(out / "cross.1.out")
