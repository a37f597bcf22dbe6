"""The SynthMusic adapter (the shipped DiT and UNet) passes the adapter contract, and its
concept scorer works as a metric."""

import pytest
import torch

from interp.adapter import GenerationRequest
from interp.metrics import ConceptContrast, MetricContext
from interp.pairsources import pairs_from
from interp.registry import load_model
from tests.helpers import contract


@pytest.fixture(scope="module", params=["synthmusic-dit", "synthmusic-unet"])
def adapter(request):
    return load_model(request.param)


@pytest.fixture
def request_():
    return GenerationRequest(
        prompts=("a slow sad piano piece with drums", "fast organ, no drums"),
        seeds=(0, 1),
        num_steps=3,
        guidance_scale=4.0,
    )


def test_structure_and_meta_build_agree(adapter):
    meta = load_model(adapter.name, weights=False)
    assert not meta.has_weights
    assert [m.path for m in meta.catalog.modules] == [m.path for m in adapter.catalog.modules]
    assert adapter.catalog.count("cross") >= 6
    if adapter.name == "synthmusic-dit":
        cross = adapter.catalog.module("cross", 0)
        assert (cross.n_heads, cross.n_kv_heads, cross.d_head) == (4, 2, 32)


def test_adapter_contract(adapter, request_):
    contract.check_head_geometry(adapter)
    contract.check_execution_order_and_text_kwarg(adapter, request_)
    contract.check_reads_equal_hooks(adapter, request_, "cross", 1, 1)
    contract.check_identity_edits(adapter, request_, ["cross.0.head.1", "cross.1.text", "self.0.out"])
    contract.check_head_write(adapter, request_, "cross", 0, 2)


def test_skipping_the_decoder_keeps_the_latents(adapter, request_):
    from dataclasses import replace

    with_audio = adapter.generate(request_)
    without = adapter.generate(replace(request_, decode=False))
    assert without.audio is None and with_audio.audio.shape[0] == 2
    assert torch.equal(with_audio.latents, without.latents)


def test_concept_scorer_is_a_log_probability_contrast(adapter, request_):
    scorer = adapter.concept_scorer()
    out = adapter.generate(request_)
    probs = scorer.probabilities(out.latents)
    assert set(probs) == {"instrument", "drums", "tempo", "mood", "vocals"}
    torch.testing.assert_close(scorer.score(out, "tempo", "fast"), probs["tempo"][:, 2])
    torch.testing.assert_close(scorer.score(out, "fast", "fast"), probs["tempo"][:, 2])
    pair = pairs_from("synthmusic", ["tempo"], 1, 0)[0]
    value = ConceptContrast(scorer)(out, MetricContext.for_pair(out, out, pair))
    expected = (
        probs["tempo"][:, ["slow", "medium", "fast"].index(pair.clean_value)].log()
        - probs["tempo"][:, ["slow", "medium", "fast"].index(pair.corrupted_value)].log()
    )
    torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-4)
