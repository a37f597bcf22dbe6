"""ACE-Step 1.5 adapter: GQA DiT, [cond, uncond] pipeline layout, turbo checkpoints."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from interp.adapter import GenerationRequest
from interp.edits import Read
from interp.errors import TadaError
from interp.registry import load_model
from interp.runner import run
from models.ace_step import FAMILY, AceStepAdapter
from models.tiny.ace_step import tiny_ace_step
from tests.helpers import contract
from tests.helpers.hooks import recorded


@pytest.fixture(scope="module")
def adapter():
    return AceStepAdapter("tiny-ace-step", tiny_ace_step())


@pytest.fixture
def request_():
    return GenerationRequest(
        prompts=("a sad violin song", "a happy trumpet"),
        seeds=(0, 1),
        num_steps=3,
        guidance_scale=3.0,
        duration_s=2.0,
    )


def test_sites_of_the_tiny_model(adapter):
    assert [m.path for m in adapter.catalog.modules] == [
        "layers.0.self_attn",
        "layers.0.cross_attn",
        "layers.1.self_attn",
        "layers.1.cross_attn",
    ]
    assert adapter.catalog.summary() == {
        "self": {"layers": 2, "head_sites": 8},
        "cross": {"layers": 2, "head_sites": 8},
    }
    assert {(m.n_heads, m.n_kv_heads, m.d_head) for m in adapter.catalog.modules} == {(4, 2, 8)}
    contract.check_head_geometry(adapter)


def test_execution_order_and_text_keyword(adapter, request_):
    contract.check_execution_order_and_text_kwarg(adapter, request_)


def test_denoiser_insides_see_uncond_rows_first(adapter, request_):
    """The pipeline batches [cond, null]; inside the transformer the adapter's swap
    puts the learned null condition in the first (uncond) rows."""
    transformer = adapter.denoiser
    with recorded(transformer.layers[0].cross_attn, "text") as text:
        adapter.generate(request_)
    with torch.no_grad():
        null = transformer.condition_embedder(adapter.pipeline.condition_encoder.null_condition_emb)
    b = request_.batch_size
    assert torch.allclose(text[0][:b], null.expand_as(text[0][:b]), atol=1e-6)
    assert not torch.allclose(text[0][b:], null.expand_as(text[0][b:]))
    # the swap is undone on the way out: same audio as the pipeline without the adapter
    direct = adapter.pipeline(
        prompt=list(request_.prompts),
        lyrics=["", ""],
        audio_duration=request_.duration_s,
        num_inference_steps=request_.num_steps,
        guidance_scale=request_.guidance_scale,
        generator=request_.generators(),
        output_type="pt",
    )
    assert torch.allclose(direct.audios, adapter.generate(request_).audio, atol=1e-6)


def test_reads_equal_plain_hooks(adapter, request_):
    contract.check_reads_equal_hooks(adapter, request_, "cross", 1, head=3)
    contract.check_reads_equal_hooks(adapter, request_, "self", 0, head=1)


def test_identity_edits_are_bit_identical(adapter, request_):
    sites = ["cross.0.head.2", "cross.1.heads", "cross.1.out", "cross.0.text", "self.1.heads"]
    contract.check_identity_edits(adapter, request_, sites)


def test_head_write_changes_only_that_head(adapter, request_):
    contract.check_head_write(adapter, request_, "cross", 0, head=3)


def test_step_and_branch_selection(adapter, request_):
    contract.check_step_and_branch_selection(adapter, request_, "cross", 1)


def test_head_write_equals_a_plain_hook_edit(adapter, request_):
    contract.check_write_equals_plain_hook(adapter, request_, "self", 1, head=2)


def test_calls_that_break_one_call_per_step_are_refused(adapter, request_):
    half_cfg = replace(request_, options=(("cfg_interval_start", 0.5),))
    with pytest.raises(TadaError, match="cfg_interval"):
        adapter.generate(half_cfg)
    with pytest.raises(TadaError, match="negative prompt"):
        adapter.generate(replace(request_, negative_prompt="low quality"))
    # the hooks are gone after a failure: a plain generation still works
    assert adapter.generate(request_).audio.shape[0] == 2


def test_unguided_and_turbo_requests(request_):
    turbo = AceStepAdapter("tiny-turbo", tiny_ace_step(turbo=True))
    assert turbo.turbo and turbo.default_request(["x"], [0]).guidance_scale == 1.0
    with pytest.raises(TadaError, match="guidance-distilled"):
        turbo.generate(request_)
    unguided = replace(request_, guidance_scale=1.0)
    result = run(turbo, unguided, reads=[Read("cross.0.text", steps=0)])
    assert result.reads["cross.0.text"].shape[1] == request_.batch_size


def test_full_size_structure_matches_the_shipped_config():
    config = json.loads(
        (Path(__file__).parents[2] / "models/configs/ace-step-1.5/transformer.json").read_text()
    )
    model = load_model("ace-step-1.5", weights=False)
    assert FAMILY.aliases["ace-step-1.5"] == "ACE-Step/acestep-v15-xl-turbo-diffusers"
    assert model.catalog.count("self") == model.catalog.count("cross") == config["num_hidden_layers"] == 32
    for m in model.catalog.modules:
        assert (m.n_heads, m.n_kv_heads, m.d_head, m.d_model) == (32, 8, 128, 2560)
    assert {m.d_context for m in model.catalog.modules if m.attention == "cross"} == {2560}
    assert len(model.catalog.sites(["head"])) == 2 * 32 * 32
    assert model.turbo and model.default_request(["x"], [0]).guidance_scale == 1.0
