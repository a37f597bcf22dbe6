"""The component registry and the module-site escape hatch, against plain torch hooks."""

import pytest
import torch

from interp.components import (
    Hook,
    SiteComponent,
    component_names,
    get_component,
    register_component,
    unregister_component,
)
from interp.edits import Apply, Edit, Read, Zero
from interp.errors import EditError, SiteError
from interp.runner import run
from interp.sites import ModuleSite, Site, as_any_site, as_site
from tests.helpers.hooks import edited_input, recorded

H, D = 4, 8  # heads and head width of the tiny Stable Audio


def test_builtin_components_keep_their_names_axes_and_order():
    assert component_names()[:4] == ["text", "heads", "head", "out"]
    assert {n: get_component(n).axes for n in ("head", "heads", "out", "text")} == {
        "head": "batch seq d_head",
        "heads": "batch seq head d_head",
        "out": "batch seq d_model",
        "text": "batch ctx d_ctx",
    }
    assert Site.parse("cross.3.head.1").whole() == Site("cross", 3, "heads")
    assert Site.parse("self.0.out").whole() == Site("self", 0, "out")


def test_registration_refuses_duplicates_and_unknown_names_list_the_valid_ones():
    with pytest.raises(SiteError, match="already registered"):
        register_component(SiteComponent("out", Hook("module", "output", 20), "batch seq d_model", "again"))
    with pytest.raises(SiteError, match=r"valid components are \['text', 'heads', 'head', 'out'"):
        get_component("nonsense")
    with pytest.raises(SiteError, match="axis vocabulary"):
        SiteComponent("odd", Hook("module", "output", 20), "batch seq width", "bad axes")
    with pytest.raises(SiteError, match="must produce the axes 'batch seq head d_head'"):
        SiteComponent(
            "keys",
            Hook("to_k", "output", 5),
            "batch seq head d_head",
            "k",
            view="batch seq (head d_head) -> batch head seq d_head",
        )
    with pytest.raises(SiteError, match="lowercase letters"):
        SiteComponent("q2", Hook("to_q", "output", 5), "batch seq d_model", "bad name")


@pytest.fixture
def query_component():
    """A plugin component: the query projection's output, viewed per head."""
    spec = register_component(
        SiteComponent(
            "projected",
            Hook("to_q", "output", 4),
            "batch seq head d_head",
            "output of the query projection, per head",
            view="batch seq (head d_head) -> batch seq head d_head",
        )
    )
    yield spec
    unregister_component("projected")


def test_a_registered_component_is_listed_validated_read_and_edited(tiny_sa, sa_request, query_component):
    catalog = tiny_sa.catalog
    assert "cross.1.projected" in [s.name for s in catalog.sites()]
    assert catalog.records(["projected"])[0]["module"] == "transformer_blocks.0.attn1.to_q"
    to_q = tiny_sa.denoiser.transformer_blocks[1].attn2.to_q
    with recorded(to_q, "output") as plain:
        tiny_sa.generate(sa_request)
    result = run(tiny_sa, sa_request, reads=[Read("cross.1.projected"), Read("cross.1.heads")])
    for step in range(4):
        assert torch.equal(result.reads["cross.1.projected"][step], plain[step].view(4, -1, H, D))
    # the new hook sits between the module's input and its output projection
    zeroed = run(
        tiny_sa,
        sa_request,
        edits=[Edit("cross.1.projected", Zero(), steps=0)],
        reads=[Read("cross.1.heads", steps=0)],
    )
    assert not torch.equal(zeroed.reads["cross.1.heads"][0], result.reads["cross.1.heads"][0])


def test_key_and_value_sites_are_per_key_value_head_and_equal_plain_hooks(tiny_sa, sa_request):
    catalog = tiny_sa.catalog
    assert [s.name for s in catalog.sites(["key"]) if s.layer == 1] == ["cross.1.key.0", "cross.1.key.1"]
    assert catalog.records(["values"])[0]["module"] == "transformer_blocks.0.attn2.to_v"
    attn = tiny_sa.denoiser.transformer_blocks[1].attn2
    with recorded(attn.to_k, "output") as keys, recorded(attn.to_v, "output") as values:
        tiny_sa.generate(sa_request)
    result = run(tiny_sa, sa_request, reads=[Read("cross.1.key.1", branch="cond"), Read("cross.1.values")])
    for step in range(4):
        assert torch.equal(result.reads["cross.1.key.1"][step], keys[step][2:].view(2, -1, 2, D)[:, :, 1])
        assert torch.equal(result.reads["cross.1.values"][step], values[step].view(4, -1, 2, D))
    with pytest.raises(SiteError, match="Only cross-attention has a key"):
        Site.parse("self.0.key.0")


def test_module_sites_round_trip_and_only_edits_and_reads_take_them():
    text = "module.transformer_blocks.1.ff.output"
    site = as_any_site(text)
    assert site == ModuleSite("transformer_blocks.1.ff", "output") and site.name == text
    assert as_any_site(site.name) == site
    with pytest.raises(SiteError, match="only Edit and Read"):
        as_site(text)
    for bad in ("module.ff.middle", "module..output", "module.output"):
        with pytest.raises(SiteError, match="Malformed module site"):
            as_any_site(bad)


def test_module_site_reads_and_edits_equal_plain_torch_hooks(tiny_sa, sa_request):
    blocks = tiny_sa.denoiser.transformer_blocks
    with recorded(blocks[1].ff, "output") as ff_out, recorded(blocks[0].norm1, "input") as norm_in:
        tiny_sa.generate(sa_request)
    result = run(
        tiny_sa,
        sa_request,
        reads=[
            Read("module.transformer_blocks.1.ff.output", branch="cond"),
            Read("module.transformer_blocks.0.norm1.input", steps=[2]),
            Read("cross.0.out", steps=[2]),
        ],
    )
    assert result.reads["module.transformer_blocks.1.ff.output"].shape[0] == 4
    for step in range(4):
        assert torch.equal(result.reads["module.transformer_blocks.1.ff.output"][step], ff_out[step][2:])
    assert torch.equal(result.reads["module.transformer_blocks.0.norm1.input"][0], norm_in[2])

    def double_cond(x, call):
        if call == 1:
            x[2:] = 2 * x[2:]
        return x

    with edited_input(blocks[0].norm1, double_cond):
        expected = tiny_sa.generate(sa_request)
    got = run(
        tiny_sa,
        sa_request,
        edits=[
            Edit(
                "module.transformer_blocks.0.norm1.input", Apply(lambda x, s: 2 * x), steps=1, branch="cond"
            ),
        ],
        reads=[Read("cross.1.head.0", steps=1)],
    )
    assert torch.equal(expected.audio, got.output.audio)
    assert not torch.equal(tiny_sa.generate(sa_request).audio, got.output.audio)


def test_unknown_module_paths_and_tensors_without_the_batch_get_clear_errors(tiny_sa, sa_request):
    with pytest.raises(SiteError, match="Did you mean 'transformer_blocks.1.ff'"):
        run(tiny_sa, sa_request, reads=[Read("module.transformer_blocks.1.fff.output")])
    # the timestep embedding is computed once for the whole batch: one row, not four
    with pytest.raises(EditError, match=r"has shape \(1, 8\).*must be batch first"):
        run(tiny_sa, sa_request, reads=[Read("module.timestep_proj.input")])


@pytest.mark.slow
def test_module_sites_follow_execution_order_not_registration_order():
    """A diffusers UNet registers up_blocks before mid_block but runs mid_block first."""
    from interp.adapter import GenerationRequest
    from models.audioldm import AudioLDMAdapter
    from models.tiny.audioldm import tiny_audioldm

    adapter = AudioLDMAdapter("tiny-audioldm", tiny_audioldm())
    request = GenerationRequest(prompts=("a violin",), seeds=(0,), num_steps=2, guidance_scale=3.0)
    names = [n for n, _ in adapter.denoiser.named_modules()]
    assert names.index("up_blocks") < names.index("mid_block")
    unet = adapter.denoiser
    with recorded(unet.mid_block, "output") as mid, recorded(unet.up_blocks[0], "output") as up:
        adapter.generate(request)
    last = adapter.catalog.modules[-1]
    # an (identity) edit is a request too: nnsight refuses one that comes after its module ran
    result = run(
        adapter,
        request,
        edits=[Edit("module.mid_block.output", Apply(lambda x, s: x))],
        reads=[
            Read("module.up_blocks.0.output"),
            Read("module.mid_block.output"),
            Read(f"{last.attention}.{last.layer}.out"),
            Read("self.0.heads"),
        ],
    )
    for step in range(2):
        assert torch.equal(result.reads["module.mid_block.output"][step], mid[step])
        assert torch.equal(result.reads["module.up_blocks.0.output"][step], up[step])
