"""Activation patching, ablation and attribution against planted ground truth."""

from dataclasses import replace

import pytest
import torch

from interp.attribution import attribute, rank_agreement
from interp.edits import Edit, Read, Replace
from interp.metrics import get_metric
from interp.patching import Variant, mean_activations, single_site_variants, sweep
from interp.prompts import PromptPair
from interp.runner import run
from interp.statistics import normalized_effect
from tests.localization.conftest import PLANTED


def heads(model):
    return model.catalog.where(attention="cross", component="head")


def test_patching_finds_exactly_the_planted_heads(planted_model, base, pairs):
    result = sweep(
        planted_model,
        base,
        pairs,
        [0, 1],
        single_site_variants(heads(planted_model)),
        get_metric("latent_distance"),
        progress=False,
    )
    effects = {k: e.mean for k, e in result.effects().items()}
    ranked = sorted(effects, key=lambda k: -abs(effects[k]))
    assert set(ranked[:2]) == PLANTED
    for name, value in effects.items():
        if name in PLANTED:
            assert abs(value) > 0.01
        else:  # zero up to float rounding between rows of one batch
            assert abs(value) < 1e-4, (name, value)


def test_batched_and_sequential_sweeps_agree(planted_model, base, pairs):
    variants = single_site_variants(heads(planted_model)[:5])
    batched = sweep(
        planted_model,
        base,
        pairs[:1],
        [0],
        variants,
        get_metric("latent_distance"),
        batch_size=5,
        progress=False,
    )
    sequential = sweep(
        planted_model,
        base,
        pairs[:1],
        [0],
        variants,
        get_metric("latent_distance"),
        batch_size=1,
        progress=False,
    )
    for a, b in zip(batched.rows, sequential.rows):
        assert a["variant"] == b["variant"]
        assert a["value"] == pytest.approx(b["value"], rel=1e-5, abs=1e-6)


def test_clean_into_clean_patching_has_zero_effect(planted_model, base):
    same = [PromptPair("a sad violin song", "a sad violin song", "mood", "sad", "sad")]
    result = sweep(
        planted_model,
        base,
        same,
        [0],
        single_site_variants(heads(planted_model)),
        get_metric("latent_distance"),
        progress=False,
    )
    # the cached activations come from a batch of another shape: equal up to float rounding
    for row in result.rows:
        assert row["value"] == pytest.approx(row["corrupted"], abs=1e-5)
    assert max(abs(r["value"]) for r in result.rows) < 1e-4


def test_patching_every_text_input_reproduces_the_clean_run(planted_model, base, pairs):
    pair = pairs[0]
    texts = planted_model.catalog.where(attention="cross", component="text")
    layout = replace(base, prompts=(pair.corrupted, pair.clean), seeds=(0, 0))
    reference = run(planted_model, layout, reads=[Read(s) for s in texts])
    # sample 1's rows (uncond, cond) of the reference, patched into a corrupted run
    edits = [
        Edit(s, Replace({i: reference.reads[s.name][i][[1, 3]] for i in range(4)}), samples=(1,))
        for s in texts
    ]
    patched = run(planted_model, replace(layout, prompts=(pair.corrupted,) * 2), edits=edits)
    assert torch.equal(patched.output.latents[1], reference.output.latents[1])
    assert torch.equal(patched.output.latents[0], reference.output.latents[0])
    assert not torch.equal(patched.output.latents[1], patched.output.latents[0])


def test_clean_and_corrupted_rows_share_all_noise(planted_model, base):
    same = replace(base, prompts=("a sad violin song",) * 2, seeds=(5, 5))
    out = planted_model.generate(same).latents
    assert torch.allclose(out[0], out[1], atol=1e-6)
    other = planted_model.generate(replace(same, seeds=(5, 6))).latents
    assert not torch.allclose(other[0], other[1], atol=1e-3)


def test_noising_and_ablation_remove_the_concept_only_at_planted_heads(planted_model, base, pairs):
    variants = [
        Variant.of(sorted(PLANTED), "planted"),
        Variant.of(["cross.0.head.0", "cross.1.head.1"], "other"),
    ]
    noising = sweep(
        planted_model,
        base,
        pairs,
        [0],
        variants,
        get_metric("latent_distance"),
        direction="noising",
        progress=False,
    ).effects()
    assert noising["planted"].mean == pytest.approx(1.0, abs=1e-4)
    assert abs(noising["other"].mean) < 1e-4
    zero = sweep(
        planted_model,
        base,
        pairs,
        [0],
        variants,
        get_metric("latent_distance"),
        direction="ablation",
        progress=False,
    ).effects()
    assert zero["planted"].mean > 0.2 and abs(zero["other"].mean) < 1e-4
    means = mean_activations(planted_model, base, ["a calm song", "a loud track"], [0, 1], sorted(PLANTED))
    mean = sweep(
        planted_model,
        base,
        pairs,
        [0],
        variants,
        get_metric("latent_distance"),
        direction="ablation",
        ablation="mean",
        mean_activations=means,
        progress=False,
    ).effects()
    assert mean["planted"].mean > 0.2 and abs(mean["other"].mean) < 1e-4


def test_attribution_ranks_planted_heads_first_and_zero_elsewhere(planted_model, base, pairs):
    estimates = attribute(planted_model, base, pairs, [0], heads(planted_model), progress=False)
    ranked = sorted(estimates.scores, key=lambda k: -abs(estimates.scores[k]))
    assert set(ranked[:2]) == PLANTED
    for name, value in estimates.scores.items():
        if name not in PLANTED:
            assert value == 0.0
        else:
            assert value != 0.0


def test_attribution_agrees_with_exact_patching_on_a_dense_model(tiny_sa, base, pairs):
    sites = tiny_sa.catalog.where(attention="cross", component="head")
    estimates = attribute(tiny_sa, base, pairs, [0], sites, progress=False)
    exact = sweep(
        tiny_sa, base, pairs, [0], single_site_variants(sites), get_metric("latent_distance"), progress=False
    )
    rho = rank_agreement(estimates.scores, {k: e.mean for k, e in exact.effects().items()})
    assert rho > 0.6


def test_normalized_effect_and_its_interval():
    effect = normalized_effect([0.5, 0.7, 0.6], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], n_boot=200)
    assert effect.mean == pytest.approx(0.6)
    assert 0.5 <= effect.ci_low <= 0.6 <= effect.ci_high <= 0.7
    assert normalized_effect([2.0], [3.0], [1.0]).mean == pytest.approx(0.5)


def test_attribution_leaves_the_gradient_mode_as_it_found_it(planted_model, base, pairs):
    import torch

    assert torch.is_grad_enabled()
    attribute(planted_model, base, pairs[:1], [0], ["cross.0.head.1"], progress=False)
    assert torch.is_grad_enabled()
    with torch.no_grad():
        attribute(planted_model, base, pairs[:1], [0], ["cross.0.head.1"], progress=False)
        assert not torch.is_grad_enabled()
