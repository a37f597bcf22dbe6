"""Half precision on every adapter: tiny models in bfloat16 on CPU.

Edits and reads keep the model's dtype and equal plain torch hooks (reads bit for bit,
writes at bfloat16 tolerance: the runner casts a float32 vector to bfloat16 before
adding, a plain ``+=`` rounds after); CAA means, renormalization and attribution
accumulate in float32; an SAE in float32 steers a bfloat16 model.
"""

import pytest
import torch

from interp.adapter import GenerationRequest
from interp.edits import Add, Edit, Read, Scale
from interp.runner import run
from tests.helpers.contract import per_head
from tests.helpers.hooks import edited_input, recorded

BF16 = torch.bfloat16


def _stable_audio():
    from models.stable_audio import StableAudioAdapter
    from models.tiny.stable_audio import tiny_stable_audio

    return StableAudioAdapter("tiny-stable-audio", tiny_stable_audio())


def _audioldm2():
    from models.audioldm2 import AudioLDM2Adapter
    from models.tiny.audioldm2 import tiny_audioldm2

    return AudioLDM2Adapter("tiny-audioldm2", tiny_audioldm2())


def _audioldm():
    from models.audioldm import AudioLDMAdapter
    from models.tiny.audioldm import tiny_audioldm

    return AudioLDMAdapter("tiny-audioldm", tiny_audioldm())


def _ace_step():
    from models.ace_step import AceStepAdapter
    from models.tiny.ace_step import tiny_ace_step

    return AceStepAdapter("tiny-ace-step", tiny_ace_step())


def _synthmusic():
    from interp.registry import load_model

    return load_model("synthmusic-dit")


# (builder, attention kind with text, layer, head)
ADAPTERS = {
    "stable-audio": (_stable_audio, "cross", 1, 2),
    "audioldm2": (_audioldm2, "cross", 1, 1),
    "audioldm": (_audioldm, "self", 2, 1),
    "ace-step": (_ace_step, "cross", 1, 3),
    "synthmusic": (_synthmusic, "cross", 2, 1),
}


@pytest.fixture(scope="module", params=sorted(ADAPTERS))
def half(request):
    build, attention, layer, head = ADAPTERS[request.param]
    adapter = build()
    adapter.pipeline.to(dtype=BF16)
    assert next(adapter.denoiser.parameters()).dtype == BF16
    return adapter, attention, layer, head


def _request(adapter) -> GenerationRequest:
    return GenerationRequest(
        prompts=("a sad violin song",),
        seeds=(0,),
        num_steps=3,
        guidance_scale=3.0,
        duration_s=2.0 if adapter.family in ("stable-audio", "ace-step") else None,
    )


def test_reads_keep_the_dtype_and_equal_a_plain_hook(half):
    adapter, attention, layer, _ = half
    request = _request(adapter)
    m = adapter.catalog.module(attention, layer)
    proj = adapter.denoiser.get_submodule(m.out_proj)
    with recorded(proj, "input") as heads:
        plain = adapter.generate(request)
    result = run(
        adapter, request, reads=[Read(f"{attention}.{layer}.heads"), Read(f"{attention}.{layer}.out")]
    )
    read = result.reads[f"{attention}.{layer}.heads"]
    assert read.dtype == BF16 and result.reads[f"{attention}.{layer}.out"].dtype == BF16
    for step in range(request.num_steps):
        assert torch.equal(read[step], per_head(heads[step], m.n_heads))
    assert torch.equal(result.output.latents, plain.latents)


def test_identity_edit_changes_no_bit_in_bfloat16(half):
    adapter, attention, layer, head = half
    request = _request(adapter)
    plain = adapter.generate(request)
    edited = run(adapter, request, edits=[Edit(f"{attention}.{layer}.head.{head}", Scale(1.0))])
    assert torch.equal(edited.output.latents, plain.latents)


def test_a_float32_vector_added_to_a_head_equals_a_plain_hook_at_bfloat16_tolerance(half):
    adapter, attention, layer, head = half
    request = _request(adapter)
    m = adapter.catalog.module(attention, layer)
    proj = adapter.denoiser.get_submodule(m.out_proj)
    vector = 4 * torch.randn(m.d_head, generator=torch.Generator().manual_seed(3))  # float32

    def plain_edit(x: torch.Tensor, call: int) -> torch.Tensor:
        per_head(x, m.n_heads)[1:, :, head] += vector.to(BF16)  # cond row of [uncond, cond]
        return x

    with edited_input(proj, plain_edit):
        hooked = adapter.generate(request).latents
    got = run(adapter, request, edits=[Edit(f"{attention}.{layer}.head.{head}", Add(vector), branch="cond")])
    assert got.output.latents.dtype == hooked.dtype  # the pipeline's own latent dtype
    expected, got_latents = hooked.float(), got.output.latents.float()
    unedited = adapter.generate(request).latents.float()
    scale = expected.abs().max()
    assert (got_latents - expected).abs().max() <= 2e-2 * scale  # bfloat16: 8 bits of mantissa
    assert (unedited - expected).abs().max() > 10 * (got_latents - expected).abs().max()  # the edit matters


def test_renormalization_survives_float16_norms_that_overflow():
    from interp.steering.steer import renormalized

    x = torch.full((1, 2, 1536), 2000.0, dtype=torch.float16)  # norm 78,384 > float16's max 65,504
    assert not x.norm(dim=2).isfinite().any()
    new = renormalized(x, x + 1.0)
    assert new.dtype == torch.float16 and new.isfinite().all()
    assert torch.allclose(new.float().norm(dim=2), x.float().norm(dim=2), rtol=1e-3)


@pytest.fixture(scope="module")
def sa_pair():
    """The tiny Stable Audio in float32 and the same weights in bfloat16."""
    full, half = _stable_audio(), _stable_audio()
    half.pipeline.to(dtype=BF16)
    return full, half


def test_caa_means_of_a_bfloat16_model_are_float32_and_match_float32(sa_pair):
    from interp.steering.caa import activation_means

    full, half = sa_pair
    request = GenerationRequest(prompts=("x",), seeds=(0,), num_steps=3, guidance_scale=3.0, duration_s=2.0)
    prompts = ["a sad violin song", "a happy trumpet", "fast drums"]
    means_half, _ = activation_means(half, request, prompts, ["cross.1.out", "cross.1.heads"])
    means_full, _ = activation_means(full, request, prompts, ["cross.1.out", "cross.1.heads"])
    for name in means_full:
        assert means_half[name].dtype == torch.float32
        error = (means_half[name] - means_full[name]).abs().max()
        assert error <= 0.05 * means_full[name].abs().max()


def test_a_float32_sae_steers_a_bfloat16_model(sa_pair):
    from sae_lens import TopKSAE, TopKSAEConfig

    from saes.steer import SAEClampSteerer

    _, half = sa_pair
    width = half.catalog.module("cross", 1).d_model
    torch.manual_seed(0)
    sae = TopKSAE(TopKSAEConfig(d_in=width, d_sae=4 * width, k=4))
    with torch.no_grad():
        for p in sae.parameters():
            p.normal_(0, 0.3)
    request = GenerationRequest(
        prompts=("a sad violin song",), seeds=(0,), num_steps=3, guidance_scale=3.0, duration_s=2.0
    )
    steerer = SAEClampSteerer(sae, [0, 1, 2], site="cross.1.out", target=5.0, mode="add")
    result = run(half, request, edits=steerer.edits(1.0), reads=[Read("cross.1.out", branch="cond")])
    plain = half.generate(request)
    assert result.reads["cross.1.out"].dtype == BF16 and result.output.latents.isfinite().all()
    assert not torch.equal(result.output.latents, plain.latents)


def test_attribution_of_a_bfloat16_model_accumulates_in_float32(sa_pair):
    from interp.attribution import attribute, rank_agreement
    from interp.prompts import PromptPair

    full, half = sa_pair
    base = GenerationRequest(prompts=("x",), seeds=(0,), num_steps=3, guidance_scale=3.0, duration_s=2.0)
    pairs = [PromptPair("a sad violin song", "a sad trumpet song", "violin")]
    sites = full.catalog.where(attention="cross", component="head")
    exact = attribute(full, base, pairs, [0], sites, progress=False).scores
    approx = attribute(half, base, pairs, [0], sites, progress=False).scores
    assert all(isinstance(v, float) and v == v for v in approx.values())
    assert rank_agreement(approx, exact) > 0.8


def test_delta_times_grad_sums_bfloat16_products_in_float32():
    from interp.attribution import _delta_times_grad

    generator = torch.Generator().manual_seed(0)
    delta, grad = (torch.randn(2, 512, 4, 64, generator=generator).to(BF16) for _ in range(2))
    exact = (delta.double() * grad.double()).sum(dim=(0, 1, 3))
    total = _delta_times_grad("cross.1.heads", delta, grad)
    assert total.dtype == torch.float32
    assert torch.allclose(total.double(), exact, rtol=1e-5, atol=1e-3)
    # the same sum in bfloat16 is off by far more than float32's error
    assert ((delta * grad).sum(dim=(0, 1, 3)).double() - exact).abs().max() > 100 * (
        total.double() - exact
    ).abs().max()
