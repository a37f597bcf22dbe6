"""Activation caching: bounded memory, exact values, labels, streaming."""

from dataclasses import replace

import pytest
import torch

from interp.edits import Read
from interp.errors import TadaError
from interp.runner import run
from saes.cache import ActivationCache, cache_activations

SITES = ["cross.0.out", "cross.1.head.2"]


def _direct(model, request, prompts, site, width, batch_size):
    """The same vectors, read directly (both branches, all steps), in cache order."""
    parts = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        batch = replace(request, prompts=tuple(chunk), seeds=(0,) * len(chunk))
        read = run(model, batch, reads=[Read(site, branch="both")]).reads[site]
        parts.append(read.reshape(read.shape[0], -1, width).reshape(-1, width))
    return torch.cat(parts)


def test_cache_holds_ten_times_its_memory_budget_exactly(tiny_sa, request_2, tmp_path):
    prompts = [f"a {w} song" for w in ("sad", "happy", "fast", "slow", "loud", "soft")] * 6
    budget = 36_000
    cache = cache_activations(
        tiny_sa, request_2, prompts, SITES, tmp_path, branch="both", batch_size=1, memory_budget_bytes=budget
    )
    data_bytes = sum(cache.count(s) * cache.width(s) * 4 for s in SITES)
    assert data_bytes > 10 * budget
    assert cache.manifest["memory_bound_bytes"] <= budget
    for site in SITES:
        shards = cache.shard_paths(site)
        assert len(shards) > 10
        assert all(p.stat().st_size <= budget for p in shards)
    # 36 prompts x 2 branches x 4 steps x 9 positions (8 frames + the global token)
    assert cache.count("cross.0.out") == 36 * 2 * 4 * 9
    got = torch.cat([c["acts"] for c in cache.iter_shards("cross.0.out")])
    assert torch.equal(got, _direct(tiny_sa, request_2, prompts, "cross.0.out", 32, 1))
    got = torch.cat([c["acts"] for c in cache.iter_shards("cross.1.head.2")])
    assert torch.equal(got, _direct(tiny_sa, request_2, prompts, "cross.1.head.2", 8, 1))


def test_labels_say_step_branch_sample_and_position(tiny_sa, request_2, tmp_path):
    cache = cache_activations(
        tiny_sa,
        request_2,
        ["a sad song", "a happy song", "a fast song"],
        ["cross.1.out"],
        tmp_path,
        seeds=[5, 6],
        steps=[1, 3],
        branch="both",
        batch_size=4,
    )
    columns = next(cache.iter_shards("cross.1.out"))
    assert set(columns["step"].tolist()) == {1, 3}
    assert cache.manifest["seeds"] == [5, 6] and cache.manifest["units"] == 6
    # batch 0 holds units 0..3 (prompt-major: (p0,s5), (p0,s6), (p1,s5), (p1,s6)); rows
    # of a step are [uncond 0..3, cond 0..3], each 9 positions
    first = slice(0, 8 * 9)
    assert columns["branch"][first].tolist() == [0] * 36 + [1] * 36
    assert columns["sample"][first].tolist() == [i for i in range(4) for _ in range(9)] * 2
    assert columns["position"][:9].tolist() == list(range(9))
    cond_only = torch.cat([c["acts"] for c in cache.iter_shards("cross.1.out", branch="cond", steps=[3])])
    assert cond_only.shape == (6 * 9, 32)
    held = cache.take("cross.1.out", 10_000, split="eval", holdout=3)
    train = torch.cat([c["acts"] for c in cache.iter_shards("cross.1.out", split="train", holdout=3)])
    assert held.shape[0] + train.shape[0] == cache.count("cross.1.out")
    assert held.shape[0] == 2 * 2 * 2 * 9  # units 2 and 5, both branches, 2 steps


def test_batches_stream_every_vector_once_per_epoch(tiny_cache):
    total = tiny_cache.count("cross.1.out")
    assert total == 24 * 2 * 4 * 9 and total % 96 == 0
    batches = list(tiny_cache.batches("cross.1.out", 96, shuffle=True, seed=3))
    assert len(batches) == total // 96 and all(b.shape == (96, 32) for b in batches)
    ordered = torch.cat([c["acts"] for c in tiny_cache.iter_shards("cross.1.out")])
    seen = torch.cat(batches)
    assert not torch.equal(seen, ordered)  # shuffled
    for a, b in zip(
        torch.unique(seen, dim=0, return_counts=True), torch.unique(ordered, dim=0, return_counts=True)
    ):
        assert torch.equal(a, b)  # the same vectors, each as often
    endless = tiny_cache.batches("cross.1.out", 1000, loop=True)
    assert all(next(endless).shape == (1000, 32) for _ in range(2 * total // 1000 + 1))


def test_cache_errors_are_clear(tiny_sa, request_2, tiny_cache, tmp_path):
    with pytest.raises(TadaError, match="too small"):
        cache_activations(tiny_sa, request_2, ["a song"] * 4, SITES, tmp_path / "a", memory_budget_bytes=1000)
    with pytest.raises(TadaError, match="already holds"):
        cache_activations(tiny_sa, request_2, ["a song"], SITES, tiny_cache.path)
    with pytest.raises(TadaError, match="Cached sites"):
        tiny_cache.width("cross.0.out")
    with pytest.raises(TadaError, match="manifest.json missing"):
        ActivationCache(tmp_path)


def test_auto_batch_keeps_the_cache_within_its_budget(tiny_sa, request_2, tmp_path):
    prompts = [f"a {w} song" for w in ("sad", "happy", "fast", "slow")] * 3
    budget = 60_000
    cache = cache_activations(
        tiny_sa, request_2, prompts, SITES, tmp_path, branch="both", memory_budget_bytes=budget
    )
    assert cache.manifest["memory_bound_bytes"] <= budget
    assert cache.count("cross.0.out") == 12 * 2 * 4 * 9
    got = torch.cat([c["acts"] for c in cache.iter_shards("cross.0.out")])
    single = _direct(tiny_sa, request_2, prompts, "cross.0.out", 32, 1)
    torch.testing.assert_close(got, single, rtol=1e-4, atol=1e-5)  # other batch shapes: rounding only
