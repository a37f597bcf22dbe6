"""CAA vectors and their application, against plain torch hooks on the tiny Stable Audio."""

from dataclasses import replace

import pytest
import torch

from interp.edits import Read
from interp.errors import TadaError
from interp.runner import run
from interp.steering import (
    CAASteerer,
    compute_caa,
    load_vectors,
    renormalized,
    save_vectors,
    steering_concept,
    steering_concept_names,
    sweep_alpha,
)
from tests.helpers.hooks import recorded

H, D = 4, 8  # heads and head width of the tiny model


def test_nine_concepts_ship_with_fifty_distinct_pairs():
    names = steering_concept_names()
    assert len(names) == 9
    for name in names:
        concept = steering_concept(name)
        assert len(concept.pairs) == 50
        assert len(set(concept.positive)) == 50
        assert all(p.clean != p.corrupted for p in concept.pairs)
        assert all(p.clean_value == concept.target for p in concept.pairs)
    with pytest.raises(TadaError, match="Valid concepts"):
        steering_concept("hapy")
    with pytest.raises(TadaError, match="Choose 1..50"):
        steering_concept("happy", 51)


def _manual_means(model, request, prompts, layer):
    """Mean cond-branch activation per step of cross.<layer>.out and .heads, by hooks."""
    attn2 = model.denoiser.transformer_blocks[layer].attn2
    batch = replace(request, prompts=tuple(prompts), seeds=(0,) * len(prompts))
    with recorded(attn2, "output") as out, recorded(attn2.to_out[0], "input") as heads:
        model.generate(batch)
    n = len(prompts)
    out_means = torch.stack([o[n:].double().mean(dim=(0, 1)) for o in out])
    head_means = torch.stack([h[n:].view(n, -1, H, D).double().mean(dim=(0, 1)) for h in heads])
    return out_means, head_means


def test_vectors_are_normalized_differences_of_means(tiny_sa, request_3, happy):
    vectors = compute_caa(
        tiny_sa,
        request_3,
        happy.positive,
        happy.negative,
        ["cross.1.out", "cross.1.head.2", "cross.1.heads"],
        seeds=[0],
        batch_size=4,
    )
    pos_out, pos_heads = _manual_means(tiny_sa, request_3, happy.positive, 1)
    neg_out, neg_heads = _manual_means(tiny_sa, request_3, happy.negative, 1)
    raw_out = pos_out - neg_out
    assert vectors.vectors["cross.1.out"].shape == (4, 32)
    torch.testing.assert_close(vectors.raw("cross.1.out").double(), raw_out, rtol=1e-4, atol=1e-7)
    unit = raw_out / raw_out.norm(dim=1, keepdim=True)
    torch.testing.assert_close(vectors.vectors["cross.1.out"].double(), unit, rtol=1e-4, atol=1e-6)
    raw_head = (pos_heads - neg_heads)[:, 2]
    torch.testing.assert_close(vectors.raw("cross.1.head.2").double(), raw_head, rtol=1e-4, atol=1e-7)
    assert vectors.vectors["cross.1.heads"].shape == (4, H, D)
    assert torch.allclose(vectors.vectors["cross.1.heads"].flatten(1).norm(dim=1), torch.ones(4))
    raw = compute_caa(
        tiny_sa, request_3, happy.positive, happy.negative, ["cross.1.out"], seeds=[0], normalize=False
    )
    torch.testing.assert_close(raw.vectors["cross.1.out"].double(), raw_out, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("renormalize", [False, True])
def test_alpha_zero_is_the_unsteered_generation_bit_for_bit(tiny_sa, request_3, happy, renormalize):
    vectors = compute_caa(
        tiny_sa, request_3, happy.positive[:2], happy.negative[:2], ["cross.0.out", "cross.1.head.1"]
    )
    plain = tiny_sa.generate(request_3)
    steerer = CAASteerer(vectors, branch="both", renormalize=renormalize)
    (alpha0, zero), (alpha1, one) = list(sweep_alpha(tiny_sa, request_3, steerer, [0.0, 2.0]))
    assert steerer.edits(0.0)  # alpha 0 still runs the edits (adding zero)
    assert torch.equal(zero.output.audio, plain.audio)
    assert torch.equal(zero.output.latents, plain.latents)
    assert not torch.equal(one.output.latents, plain.latents)


def test_added_vector_appears_exactly_at_the_chosen_steps_and_branch(tiny_sa, request_3, happy):
    vectors = compute_caa(
        tiny_sa, request_3, happy.positive[:2], happy.negative[:2], ["cross.1.head.2"], normalize=False
    )
    alpha, n = 5.0, request_3.batch_size
    read = [Read("cross.1.heads")]
    plain = run(tiny_sa, request_3, reads=read).reads["cross.1.heads"]
    first = CAASteerer(vectors, steps=[1], branch="cond").edits(alpha)
    both = CAASteerer(vectors, steps=[1, 3], branch="cond").edits(alpha)
    once = run(tiny_sa, request_3, edits=first, reads=read).reads["cross.1.heads"]
    twice = run(tiny_sa, request_3, edits=both, reads=read).reads["cross.1.heads"]
    added = alpha * vectors.at("cross.1.head.2", 1)
    # step 0: untouched; step 1: exactly x + alpha v on the cond rows of head 2, nothing else
    assert torch.equal(once[0], plain[0])
    expected = plain[1].clone()
    expected[n:, :, 2] = plain[1][n:, :, 2] + added
    assert torch.equal(once[1], expected)
    # step 3: the run steered at steps 1 and 3 differs from the one steered at step 1 only there
    assert torch.equal(twice[:3], once[:3])
    expected = once[3].clone()
    expected[n:, :, 2] = once[3][n:, :, 2] + alpha * vectors.at("cross.1.head.2", 3)
    assert torch.equal(twice[3], expected)
    assert not torch.equal(once[2], plain[2])  # the step-1 edit propagates downstream


def test_renormalized_steering_keeps_each_position_norm(tiny_sa, request_3, happy):
    vectors = compute_caa(tiny_sa, request_3, happy.positive[:2], happy.negative[:2], ["cross.0.out"])
    read = [Read("cross.0.out", steps=0)]
    plain = run(tiny_sa, request_3, reads=read).reads["cross.0.out"][0]
    edits = CAASteerer(vectors, steps=[0], renormalize=True).edits(3.0)
    steered = run(tiny_sa, request_3, edits=edits, reads=read).reads["cross.0.out"][0]
    n = request_3.batch_size
    torch.testing.assert_close(steered.norm(dim=-1), plain.norm(dim=-1))
    assert torch.equal(steered[:n], plain[:n])  # uncond rows untouched
    assert not torch.allclose(steered[n:], plain[n:])
    x = torch.randn(2, 5, 3, 4)
    assert torch.allclose(renormalized(x, 2 * x + 1).norm(dim=(2, 3)), x.norm(dim=(2, 3)))


def test_averaged_vectors_steer_every_step(tiny_sa, request_3, happy):
    vectors = compute_caa(
        tiny_sa, request_3, happy.positive[:2], happy.negative[:2], ["cross.1.out"], average_steps=True
    )
    assert vectors.averaged and vectors.vectors["cross.1.out"].shape == (1, 32)
    assert torch.allclose(vectors.vectors["cross.1.out"].norm(), torch.tensor(1.0))
    (edit,) = CAASteerer(vectors).edits(1.0)
    assert edit.steps.resolve(4) == (0, 1, 2, 3) and edit.branch.value == "cond"


def test_vectors_round_trip_through_safetensors_and_json(tiny_sa, request_3, happy, tmp_path):
    vectors = compute_caa(
        tiny_sa,
        request_3,
        happy.positive[:2],
        happy.negative[:2],
        ["cross.1.out", "cross.0.head.3"],
        concept="happy",
    )
    tensors, meta = save_vectors(vectors, tmp_path / "happy")
    assert tensors.name == "happy.safetensors" and meta.name == "happy.json"
    loaded = load_vectors(meta)
    assert loaded.sites == vectors.sites and loaded.steps == vectors.steps
    for site in vectors.sites:
        assert torch.equal(loaded.vectors[site], vectors.vectors[site])
        assert torch.equal(loaded.norms[site], vectors.norms[site])
    assert loaded.metadata["model"] == "tiny-stable-audio"
    assert loaded.metadata["positive"] == list(happy.positive[:2])
    assert loaded.metadata["concept"] == "happy" and loaded.normalized
    meta.unlink()
    with pytest.raises(TadaError, match="does not exist"):
        load_vectors(tensors)


def test_bad_steering_requests_get_clear_errors(tiny_sa, request_3, happy):
    vectors = compute_caa(
        tiny_sa, request_3, happy.positive[:1], happy.negative[:1], ["cross.1.out"], steps="0:2"
    )
    with pytest.raises(TadaError, match="have no steering vector"):
        CAASteerer(vectors, steps=[3])
    with pytest.raises(TadaError, match="available"):
        CAASteerer(vectors, sites=["cross.0.out"])
    with pytest.raises(TadaError, match="valid branches"):
        CAASteerer(vectors, branch="condd")
    with pytest.raises(TadaError, match="got 0 positive"):
        compute_caa(tiny_sa, request_3, [], happy.negative, ["cross.1.out"])
