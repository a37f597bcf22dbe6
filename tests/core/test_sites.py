"""Site strings, the site catalog, and step/branch selection."""

import pytest

from interp.catalog import SiteCatalog
from interp.errors import SelectionError, SiteError
from interp.selection import Branch, Steps, branch_rows
from interp.sites import Site


@pytest.mark.parametrize(
    "text", ["cross.7.head.3", "cross.0.heads", "self.12.out", "cross.3.text", "self.0.head.0"]
)
def test_site_strings_round_trip(text):
    site = Site.parse(text)
    assert site.name == text
    assert Site.parse(str(site)) == site


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("cross.7", "Malformed"),
        ("cross.7.head", "needs a non-negative head index"),
        ("cross.7.out.2", "takes no head index"),
        ("self.3.text", "Only cross-attention has a text input"),
        ("mlp.3.out", "Unknown attention kind"),
        ("cross.3.keyz", "Unknown site component"),
        ("self.3.keys", "Only cross-attention has a keys output"),
        ("cross.x.out", "Malformed"),
    ],
)
def test_malformed_sites_explain_the_grammar(text, fragment):
    with pytest.raises(SiteError, match=fragment):
        Site.parse(text)


def test_site_error_is_also_a_value_error():
    with pytest.raises(ValueError):
        Site.parse("nonsense")


def test_catalog_counts_and_ranges(tiny_sa):
    catalog: SiteCatalog = tiny_sa.catalog
    assert catalog.count("self") == 2 and catalog.count("cross") == 2
    heads = catalog.sites(["head"])
    assert len(heads) == sum(m.n_heads for m in catalog.modules) == 16
    with pytest.raises(SiteError, match="has 4 heads, numbered 0..3"):
        catalog.validate("cross.1.head.4")
    with pytest.raises(SiteError, match="valid cross layers: layers 0..1"):
        catalog.validate("cross.2.out")
    picked = catalog.where(attention="cross", layer=1, head=[0, 2])
    assert [s.name for s in picked] == ["cross.1.head.0", "cross.1.head.2"]


def test_catalog_reads_gqa_geometry_from_modules(tiny_sa):
    cross = tiny_sa.catalog.module("cross", 0)
    assert (cross.n_heads, cross.n_kv_heads, cross.d_head, cross.d_model) == (4, 2, 8, 32)
    assert cross.text_argument == "encoder_hidden_states"


def test_records_have_the_documented_fields(tiny_sa):
    records = tiny_sa.catalog.records()
    assert {"name", "module", "attention", "layer", "head", "shape"} <= set(records[0])
    for record in records:
        assert Site.parse(record["name"]).name == record["name"]
    head = next(r for r in records if r["name"] == "cross.1.head.3")
    assert head["module"] == "transformer_blocks.1.attn2.to_out.0" and head["head"] == 3


def test_steps_resolve_and_reject_out_of_schedule():
    assert Steps.all().resolve(4) == (0, 1, 2, 3)
    assert Steps.parse("1:3").resolve(4) == (1, 2)
    assert Steps.parse([3, 0]).resolve(4) == (0, 3)
    assert Steps.parse("2:").resolve(4) == (2, 3)
    with pytest.raises(SelectionError, match="beyond the schedule"):
        Steps.of(4).resolve(4)
    with pytest.raises(SelectionError, match="Cannot read steps"):
        Steps.parse("soon")


def test_branch_rows_follow_the_uncond_first_layout():
    assert branch_rows(Branch.COND, 3, guided=True) == [3, 4, 5]
    assert branch_rows(Branch.UNCOND, 3, guided=True, samples=(1,)) == [1]
    assert branch_rows(Branch.BOTH, 2, guided=True) == [0, 1, 2, 3]
    assert branch_rows(Branch.COND, 2, guided=False) == [0, 1]
    with pytest.raises(SelectionError, match="no unconditional branch"):
        branch_rows(Branch.UNCOND, 2, guided=False)
    with pytest.raises(SelectionError, match="Unknown CFG branch"):
        Branch.parse("positive")


def test_edit_and_read_hold_normalized_values():
    from interp.edits import Edit, Read, Zero
    from interp.selection import Branch, Steps
    from interp.sites import ModuleSite

    edit = Edit("cross.1.head.2", Zero(), steps="0:3", branch="cond", samples=[1])
    assert edit.site == Site("cross", 1, "head", 2) and type(edit.steps) is Steps
    assert edit.steps.resolve(5) == (0, 1, 2) and edit.branch is Branch.COND and edit.samples == (1,)
    read = Read("module.proj_in.output", steps=2)
    assert read.site == ModuleSite("proj_in", "output") and read.key == "module.proj_in.output"
    assert read.samples is None and read.branch is Branch.BOTH and read.steps.resolve(4) == (2,)
    assert Read(Site("self", 0, "out"), key="x").key == "x"
