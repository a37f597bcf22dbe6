"""Attention patterns of every adapter family against plain torch hooks.

Ground truth, per cross-attention call: the query/key/value projections' outputs and the
mask the module received (plain hooks), turned into softmax(q kᵀ/√d + mask) by hand; and
the module's real output: the pattern times the values must give the per-head outputs
the model computed (the input of its output projection).
"""

from dataclasses import replace

import pytest
import torch

from interp.adapter import GenerationRequest
from interp.attention_patterns import read_patterns
from interp.edits import Read
from interp.errors import SiteError
from interp.runner import run

FAMILIES = ["tiny-stable-audio", "tiny-audioldm2", "tiny-ace-step", "synthmusic-dit", "synthmusic-unet"]


@pytest.fixture(scope="module", params=FAMILIES)
def adapter(request):
    name = request.param
    if name == "tiny-stable-audio":
        from models.stable_audio import StableAudioAdapter
        from models.tiny.stable_audio import tiny_stable_audio

        return StableAudioAdapter(name, tiny_stable_audio())
    if name == "tiny-audioldm2":
        from models.audioldm2 import AudioLDM2Adapter
        from models.tiny.audioldm2 import tiny_audioldm2

        return AudioLDM2Adapter(name, tiny_audioldm2())
    if name == "tiny-ace-step":
        from models.ace_step import AceStepAdapter
        from models.tiny.ace_step import tiny_ace_step

        return AceStepAdapter(name, tiny_ace_step())
    from interp.registry import load_model

    return load_model(name)


def request_for(adapter) -> GenerationRequest:
    duration = {"stable-audio": 4.0, "ace-step": 2.0}.get(adapter.family)
    return GenerationRequest(
        prompts=("a sad violin song", "a fast happy trumpet with drums"),
        seeds=(0, 1),
        num_steps=2,
        guidance_scale=3.0,
        duration_s=duration,
    )


def plain_calls(adapter, request, layer):
    """Per call of cross layer ``layer``: q, k, v, the mask kwarg and the per-head outputs."""
    module = adapter.catalog.module("cross", layer)
    attn = adapter.denoiser.get_submodule(module.path)
    proj = adapter.denoiser.get_submodule(module.out_proj)
    calls: dict[str, list] = {"q": [], "k": [], "v": [], "mask": [], "heads": []}
    handles = [
        attn.to_q.register_forward_hook(lambda m, a, o: calls["q"].append(o.clone())),
        attn.to_k.register_forward_hook(lambda m, a, o: calls["k"].append(o.clone())),
        attn.to_v.register_forward_hook(lambda m, a, o: calls["v"].append(o.clone())),
        attn.register_forward_pre_hook(
            lambda m, a, kw: calls["mask"].append(kw.get("attention_mask")), with_kwargs=True
        ),
        proj.register_forward_pre_hook(lambda m, a: calls["heads"].append(a[0].clone())),
    ]
    try:
        output = adapter.generate(request)
    finally:
        for handle in handles:
            handle.remove()
    return module, attn, calls, output


def by_hand(module, attn, q, k, mask):
    """softmax(q kᵀ · scale + mask) with grouped-query repetition, from the raw projections."""
    b, d = q.shape[0], module.d_head
    q = q.view(b, -1, module.n_heads, d)
    k = k.view(b, -1, module.n_kv_heads, d)
    if getattr(attn, "norm_q", None) is not None:
        q, k = attn.norm_q(q), attn.norm_k(k)
    k = k.repeat_interleave(module.n_heads // module.n_kv_heads, dim=2)
    scores = torch.einsum("bshd,bchd->bhsc", q, k) / d**0.5
    if mask is not None:
        mask = mask.reshape(b, 1, 1, -1)
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    return scores.softmax(dim=-1)


def test_patterns_equal_the_hand_computed_softmax_and_leave_the_output_unchanged(adapter):
    request = request_for(adapter)
    layer = adapter.catalog.count("cross") - 1
    module, attn, calls, plain = plain_calls(adapter, request, layer)
    full = read_patterns(adapter, request, [layer], branch="both", average=False)
    averaged = read_patterns(adapter, request, [layer])
    assert torch.equal(full.output.latents, plain.latents)
    if plain.audio is not None:
        assert torch.equal(full.output.audio, plain.audio)
    pattern = full.probabilities[layer]
    assert pattern.shape[:3] == (request.num_steps, 2 * request.batch_size, module.n_heads)
    b = request.batch_size
    for step in range(request.num_steps):
        expected = by_hand(module, attn, calls["q"][step], calls["k"][step], calls["mask"][step])
        torch.testing.assert_close(pattern[step], expected, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(averaged.probabilities[layer][step], expected[b:].mean(dim=2))
        # the pattern times the values gives what the model's own attention computed
        v = calls["v"][step].view(2 * b, -1, module.n_kv_heads, module.d_head)
        v = v.repeat_interleave(module.n_heads // module.n_kv_heads, dim=2)
        heads = torch.einsum("bhsc,bchd->bshd", pattern[step], v)
        torch.testing.assert_close(heads.flatten(2), calls["heads"][step], atol=1e-4, rtol=1e-3)
    assert torch.allclose(pattern.sum(dim=-1), torch.ones(()), atol=1e-5)


def test_a_layer_out_of_range_is_a_clear_error(adapter):
    n = adapter.catalog.count("cross")
    with pytest.raises(SiteError, match=rf"No cross-attention layer {n}.*layers 0\.\.{n - 1}"):
        read_patterns(adapter, request_for(adapter), [n])


def test_context_positions_map_back_to_the_prompt_words(adapter):
    from interp.context_tokens import prompt_words
    from interp.word_reading import context_of

    prompt = "a fast, happy trumpet with drums"
    request = replace(request_for(adapter), prompts=(prompt,), seeds=(0,))
    layers = range(adapter.catalog.count("cross"))
    patterns = read_patterns(adapter, request, list(layers), steps=0)
    for layer in layers:
        ctx = patterns.probabilities[layer].shape[-1]
        tokens = context_of(adapter, layer, prompt, ctx)
        assert [t.position for t in tokens] == list(range(ctx))
        words = [t.word for t in tokens if t.word is not None]
        if adapter.family == "audioldm2" and adapter.text_source(layer) == "gpt2":
            assert words == []  # the language model's generated states carry no single word
        else:
            assert list(dict.fromkeys(words)) == list(prompt_words(prompt))
            bias = read_mask(adapter, request, layer)
            # positions the model masks out are no words
            assert all(t.word is None for t in tokens if bias[t.position] < -1000)


def read_mask(adapter, request, layer):
    """The cond row's additive mask of a cross layer at step 0."""
    return run(adapter, request, reads=[Read(f"cross.{layer}.mask", steps=0, branch="cond")]).reads[
        f"cross.{layer}.mask"
    ][0, 0]
