"""``tada plan`` counts what a run does: planned denoiser forwards and row-steps equal
the ones a plain torch forward hook on the denoiser counts during the real run."""

from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from interp.experiments import model as models
from interp.experiments import run
from interp.experiments.planning import plan

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def counted_forwards(model_name: str):
    """Count the denoiser's forward calls and their batch rows (the run's own model: the
    process cache hands the run the adapter loaded here)."""
    adapter = models.load(model_name, weights=True, device="cpu", dtype=None, base_dir=ROOT / "experiments")
    counts = {"forwards": 0, "row_steps": 0, "shapes": set()}

    def hook(module, args, kwargs):
        x = args[0] if args else next(v for v in kwargs.values() if hasattr(v, "shape"))
        counts["forwards"] += 1
        counts["row_steps"] += int(x.shape[0])
        counts["shapes"].add(int(x.shape[0]))

    handle = adapter.denoiser.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield counts
    finally:
        handle.remove()


def check_plan_matches_run(spec, model_name: str, out: Path) -> dict:
    planned = plan(spec)
    with counted_forwards(model_name) as counts:
        run(spec, out=out, progress=False)
    total = planned.total
    assert counts["forwards"] > 0
    assert total.forwards == counts["forwards"]
    assert total.row_steps == counts["row_steps"]
    assert set(total.shapes()) == counts["shapes"]
    return counts


def test_tiny_spec_plan_equals_run(tmp_path):
    spec = ROOT / "experiments" / "tiny.yaml"
    counts = check_plan_matches_run(spec, "tiny-stable-audio", tmp_path / "tiny")
    # by hand: 4 prompts x 4 steps, batch 2 seeds x CFG 2 = 4 rows; the edited step also
    # runs its unedited reference (latent_distance): 3 generations per prompt
    assert counts["forwards"] == 3 * 4 * 4
    assert counts["row_steps"] == 3 * 4 * 4 * 4


def reduced_default() -> dict:
    """The default experiment, every step and method kept, at a size a test can run."""
    spec = yaml.safe_load((ROOT / "experiments" / "default.yaml").read_text())
    spec["generation"]["num_steps"] = 3
    locate, steer = spec["steps"]
    locate["pairs"] = {**locate["pairs"], "concepts": ["tempo", "drums"], "per_concept": 2}
    locate["max_heads"] = 3
    locate["batch_size"] = 7  # uneven chunks of the 24 heads
    steer["pairs"]["per_concept"] = 8
    steer["eval_prompts"] = 2
    steer["alphas"] = [-2, 2]
    spec["model"]["name"] = "synthmusic-dit"
    return spec


@pytest.mark.slow
def test_default_experiment_plan_equals_run(tmp_path):
    counts = check_plan_matches_run(reduced_default(), "synthmusic-dit", tmp_path / "default")
    assert len(counts["shapes"]) > 2  # baselines, chunks, steering: several batch shapes


@pytest.mark.slow
def test_sae_steps_plan_equals_run(tmp_path):
    spec = {
        "name": "sae-plan",
        "model": {"name": "synthmusic-dit"},
        "generation": {"num_steps": 3, "guidance_scale": 4.0, "seeds": [0]},
        "steps": [
            {"name": "saes", "method": "sae-train", "sites": ["cross.0.out"], "training_steps": 5,
             "pairs": {"source": "synthmusic", "concepts": ["tempo"], "per_concept": 3}, "batch_size": 64},
            {"name": "steer", "method": "sae-steer", "concept": "tempo", "target": "fast",
             "sae": {"from": "saes", "key": "saes"}, "site": "cross.0.out", "eval_prompts": 2,
             "pairs": {"source": "synthmusic", "per_concept": 8, "seed": 1}, "alphas": [-2, 2]},
        ],
    }  # fmt: skip
    check_plan_matches_run(spec, "synthmusic-dit", tmp_path / "sae")


def test_when_and_which_word_plan_equals_run(tmp_path):
    """The time-resolved sweep (windows that resume at their first step, uneven chunks)
    and the token patching sweep (one variant per word of each pair's clean prompt)."""
    spec = {
        "name": "when-which-plan",
        "model": {"name": "synthmusic-dit"},
        "generation": {"num_steps": 4, "guidance_scale": 4.0, "seeds": [0]},
        "steps": [
            {"name": "when", "method": "when", "sites": ["cross.0.head.3", "cross.2.head.1"],
             "layers": [0], "window": 2, "batch_size": 5,
             "pairs": {"source": "synthmusic", "concepts": ["tempo"], "per_concept": 2}},
            {"name": "which", "method": "which-word", "heads": {"tempo": ["cross.0.head.3"]},
             "batch_size": 4, "pairs": {"source": "synthmusic", "concepts": ["tempo"], "per_concept": 2}},
        ],
    }  # fmt: skip
    planned = plan(spec)
    # by hand, the when step: 2 heads + both together + layer 0's text + the prompt = 5
    # sites, over the windows 0:2, 2:4 (fixed), up to step 0, 2, 4 (0:0, 0:2, 0:4) and
    # from step 0, 2 (0:4, 2:4): 4 distinct windows, 20 variants per pair
    when = planned.steps[0].cost
    assert sum(c.count * (c.samples - 1) for c in when.calls if c.label == "windows/variants") == 2 * 20
    counts = check_plan_matches_run(spec, "synthmusic-dit", tmp_path / "when-which")
    assert len(counts["shapes"]) > 2


def shared_chunks_spec(heads_batch_size: int) -> dict:
    """A ``patch`` of the text sites over 2 pairs, then a ``locate`` over 3 (the same 2
    first) whose layer impact is the same sweep (same settings and metric, and the same
    batch size when ``heads_batch_size`` is 4): the run's work store computes the chunks
    of the 2 shared pairs once."""
    pairs = {"source": "synthmusic", "concepts": ["tempo"], "per_concept": 2}
    return {
        "name": "shared",
        "model": {"name": "synthmusic-dit"},
        "generation": {"num_steps": 2, "guidance_scale": 4.0, "seeds": [0]},
        "steps": [
            {"name": "layers", "method": "patch", "component": "text", "pairs": pairs, "batch_size": 4},
            {"name": "heads", "method": "locate", "pairs": {**pairs, "per_concept": 3}, "max_heads": 2,
             "audio": False, "batch_size": heads_batch_size},
        ],
    }  # fmt: skip


def test_chunks_two_steps_share_are_planned_once_as_the_run_computes_them(tmp_path):
    spec = shared_chunks_spec(4)
    counts = check_plan_matches_run(spec, "synthmusic-dit", tmp_path / "shared")
    layers, heads = plan(spec).steps
    # the layer impact of the 2 shared pairs is the layers step's sweep: every chunk and
    # baseline reused; the third pair's runs (a baseline and 2 chunks)
    assert heads.reused_from == ["layers"]
    assert heads.reused.generations == layers.cost.generations == 6  # 2 pairs x (baseline + 2 chunks)
    assert heads.reused.row_steps == layers.cost.row_steps
    assert sum(c.count for c in heads.cost.calls if c.label.startswith("layers/")) == 3
    assert counts["row_steps"] == layers.cost.row_steps + heads.cost.row_steps
    # another batch size regroups the chunks: other keys, nothing shared
    other = plan(shared_chunks_spec(3)).steps[1]
    assert other.reused.generations == 0 and other.reused_from == []
    # 3 pairs x (a baseline and 2 chunks of 3 sites)
    assert sum(c.count for c in other.cost.calls if c.label.startswith("layers/")) == 3 * 3


def test_a_patch_of_the_heads_is_the_ranking_a_later_locate_reuses(tmp_path):
    pairs = {"source": "synthmusic", "concepts": ["tempo"], "per_concept": 2}
    spec = {
        "name": "ranking",
        "model": {"name": "synthmusic-dit"},
        "generation": {"num_steps": 2, "guidance_scale": 4.0, "seeds": [0]},
        "steps": [
            {"name": "grid", "method": "patch", "component": "head", "layers": [0, 1], "pairs": pairs,
             "batch_size": 4},
            {"name": "heads", "method": "locate", "layers": [0, 1], "pairs": pairs, "max_heads": 2,
             "audio": False, "batch_size": 4, "layer_impact": False},
        ],
    }  # fmt: skip
    check_plan_matches_run(spec, "synthmusic-dit", tmp_path / "ranking")
    grid, heads = plan(spec).steps
    assert heads.reused_from == ["grid"] and heads.reused.generations == grid.cost.generations
    assert not any(c.label.startswith("heads/") for c in heads.cost.calls)  # the ranking is all reused
