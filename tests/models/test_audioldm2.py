"""AudioLDM2 adapter: tiny two-stream pipeline against plain torch hooks; full-size meta."""

import pytest
import torch
from transformers import GPT2Model

from interp.adapter import GenerationRequest
from interp.errors import SiteError, TadaError
from interp.registry import load_model
from models.audioldm2 import AudioLDM2Adapter, audioldm2_catalog, with_generation_head
from models.tiny.audioldm2 import tiny_audioldm2
from tests.helpers import contract


@pytest.fixture(scope="module")
def adapter():
    return AudioLDM2Adapter("tiny-audioldm2", tiny_audioldm2())


@pytest.fixture
def request_():
    return GenerationRequest(
        prompts=("a sad violin song", "a happy trumpet"), seeds=(0, 1), num_steps=3, guidance_scale=3.0
    )


def test_sites_of_the_tiny_model(adapter):
    summary = adapter.catalog.summary()
    # 1 down + 1 mid + 2 up layers, 3 transformers each ([None, gpt2, t5]): 12 blocks
    assert summary["cross"] == {"layers": 8, "head_sites": 16}
    assert summary["self"] == {"layers": 16, "head_sites": 32}
    contract.check_head_geometry(adapter)
    assert [adapter.text_source(i) for i in range(8)] == ["gpt2", "flan-t5"] * 4
    widths = [adapter.catalog.module("cross", i).d_context for i in range(8)]
    assert widths == [16, 24] * 4
    with pytest.raises(SiteError, match="valid cross layers: layers 0..7"):
        adapter.text_source(8)


def test_execution_order_and_text_keyword(adapter, request_):
    paths = [m.path for m in adapter.catalog.modules]
    registration = [p for p, _ in adapter.denoiser.named_modules() if p in set(paths)]
    assert registration != paths  # up blocks are registered before the mid block
    contract.check_execution_order_and_text_kwarg(adapter, request_)


def test_large_layout_execution_order():
    """audioldm2-large's four transformers per layer ([None, gpt2, t5, None]), depth 2."""
    unet = tiny_audioldm2(large_layout=True, transformer_layers_per_block=2).unet
    catalog = audioldm2_catalog(unet)
    order: list[str] = []
    handles = [
        unet.get_submodule(m.path).register_forward_pre_hook(lambda mod, args, p=m.path: order.append(p))
        for m in catalog.modules
    ]
    sample = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        unet(
            sample,
            1,
            encoder_hidden_states=torch.randn(2, 3, 16),
            encoder_hidden_states_1=torch.randn(2, 5, 24),
        )
    for handle in handles:
        handle.remove()
    assert order == [m.path for m in catalog.modules]
    assert catalog.count("cross") == 16 and catalog.count("self") == 48


def test_reads_equal_plain_hooks(adapter, request_):
    contract.check_reads_equal_hooks(adapter, request_, "cross", 5, head=1)
    contract.check_reads_equal_hooks(adapter, request_, "self", 2, head=0)


def test_identity_edits_are_bit_identical(adapter, request_):
    sites = ["cross.0.head.1", "cross.3.heads", "cross.6.out", "cross.7.text", "self.4.heads"]
    contract.check_identity_edits(adapter, request_, sites)


def test_head_write_changes_only_that_head(adapter, request_):
    contract.check_head_write(adapter, request_, "cross", 2, head=1)


def test_step_and_branch_selection(adapter, request_):
    contract.check_step_and_branch_selection(adapter, request_, "cross", 4)


def test_head_write_equals_a_plain_hook_edit(adapter, request_):
    contract.check_write_equals_plain_hook(adapter, request_, "cross", 1, head=0)


def test_several_waveforms_per_prompt_are_refused(adapter, request_):
    from dataclasses import replace

    with pytest.raises(TadaError, match="num_waveforms_per_prompt=2"):
        adapter.generate(replace(request_, options=(("num_waveforms_per_prompt", 2),)))


def hub_like(pipe):
    """The pipeline as the hub checkpoints declare it: a bare GPT2Model language model."""
    base = GPT2Model(pipe.language_model.config)
    base.load_state_dict(pipe.language_model.transformer.state_dict())
    pipe.register_modules(language_model=base.eval())
    return pipe


def test_gpt2_model_checkpoints_get_a_generation_head(request_):
    """transformers 5's GPT2Model cannot run the pipeline's LM loop; the adapter fixes it."""
    pipe = hub_like(tiny_audioldm2())
    base = pipe.language_model
    assert not hasattr(base, "_update_model_kwargs_for_generation")
    with_generation_head(pipe)
    assert pipe.language_model.transformer is base
    got = AudioLDM2Adapter("gpt2-model", pipe).generate(request_)
    expected = AudioLDM2Adapter("lm-head", tiny_audioldm2()).generate(request_)
    assert torch.equal(got.audio, expected.audio)


def test_local_directory_loads_with_and_without_weights(tmp_path, request_):
    hub_like(tiny_audioldm2()).save_pretrained(tmp_path / "a2")
    model = load_model(str(tmp_path / "a2"))
    assert model.family == "audioldm2" and model.catalog.count("cross") == 8
    expected = AudioLDM2Adapter("lm-head", tiny_audioldm2()).generate(request_)
    assert torch.equal(model.generate(request_).audio, expected.audio)
    skeleton = load_model(str(tmp_path / "a2"), weights=False)
    assert not skeleton.has_weights
    assert [m.path for m in skeleton.catalog.modules] == [m.path for m in model.catalog.modules]


def test_full_size_audioldm2_large_structure():
    large = load_model("audioldm2-large", weights=False)
    assert not large.has_weights
    cross = [m for m in large.catalog.modules if m.attention == "cross"]
    assert len(cross) == 64
    assert large.catalog.count("self") == 192  # attn1 everywhere + attn2 of the text-free transformers
    stages = [m.path.split(".")[0] for m in cross]
    assert (stages.count("down_blocks"), stages.count("mid_block"), stages.count("up_blocks")) == (24, 4, 36)
    assert stages == sorted(stages, key=["down_blocks", "mid_block", "up_blocks"].index)
    assert {m.n_heads for m in large.catalog.modules} == {8}
    assert {m.d_context for m in cross} == {768, 1024}
    assert sum(p.numel() for p in large.denoiser.parameters()) == pytest.approx(718e6, rel=0.01)


@pytest.mark.parametrize("name", ["audioldm2", "audioldm2-music"])
def test_full_size_base_structure(name):
    model = load_model(name, weights=False)
    assert model.catalog.summary() == {
        "self": {"layers": 64, "head_sites": 512},
        "cross": {"layers": 32, "head_sites": 256},
    }
    assert sum(p.numel() for p in model.denoiser.parameters()) == pytest.approx(347e6, rel=0.01)
