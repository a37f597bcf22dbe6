"""AudioLDM v1 adapter: text enters through the class embedding, so all attention is self."""

import pytest
import torch

from interp.adapter import GenerationRequest
from interp.errors import SiteError, TadaError
from interp.registry import load_model
from models.audioldm import AudioLDMAdapter
from models.tiny.audioldm import tiny_audioldm
from tests.helpers import contract


@pytest.fixture(scope="module")
def adapter():
    return AudioLDMAdapter("tiny-audioldm", tiny_audioldm())


@pytest.fixture
def request_():
    return GenerationRequest(
        prompts=("a sad violin song", "a happy trumpet"), seeds=(0, 1), num_steps=3, guidance_scale=3.0
    )


def test_attn2_is_built_for_context_but_catalogued_as_self(adapter):
    attn2 = [m for m in adapter.catalog.modules if m.path.endswith("attn2")]
    assert attn2 and all(adapter.denoiser.get_submodule(m.path).is_cross_attention for m in attn2)
    assert adapter.catalog.summary() == {
        "self": {"layers": 8, "head_sites": 16},
        "cross": {"layers": 0, "head_sites": 0},
    }
    contract.check_head_geometry(adapter)
    with pytest.raises(SiteError, match="none"):
        adapter.catalog.validate("cross.0.text")


def test_execution_order_and_no_text_reaches_attention(adapter, request_):
    # check_execution_order_and_text_kwarg asserts encoder_hidden_states is None for self modules
    contract.check_execution_order_and_text_kwarg(adapter, request_)


def test_reads_equal_plain_hooks(adapter, request_):
    contract.check_reads_equal_hooks(adapter, request_, "self", 3, head=1)


def test_identity_edits_are_bit_identical(adapter, request_):
    contract.check_identity_edits(adapter, request_, ["self.0.head.1", "self.3.heads", "self.5.out"])


def test_head_write_changes_only_that_head(adapter, request_):
    contract.check_head_write(adapter, request_, "self", 1, head=0)


def test_step_and_branch_selection(adapter, request_):
    contract.check_step_and_branch_selection(adapter, request_, "self", 6)


def test_head_write_equals_a_plain_hook_edit(adapter, request_):
    contract.check_write_equals_plain_hook(adapter, request_, "self", 7, head=1)


def test_full_size_structure():
    model = load_model("audioldm-s-full-v2", weights=False)
    assert model.catalog.summary() == {
        "self": {"layers": 32, "head_sites": 256},
        "cross": {"layers": 0, "head_sites": 0},
    }
    stages = [m.path.split(".")[0] for m in model.catalog.modules]
    assert (stages.count("down_blocks"), stages.count("mid_block"), stages.count("up_blocks")) == (12, 2, 18)
    # "attention_head_dim": 8 in this config is the number of heads; widths come from modules
    assert {(m.n_heads, m.d_head) for m in model.catalog.modules} == {(8, 32), (8, 48), (8, 80)}


def test_an_adapter_without_pipeline_or_unet_of_its_class_is_refused():
    with pytest.raises(TadaError, match="needs a pipeline or a UNet"):
        AudioLDMAdapter("audioldm", None)
    with pytest.raises(TadaError, match="needs a UNet2DConditionModel, got Linear"):
        AudioLDMAdapter("audioldm", None, torch.nn.Linear(2, 2))
