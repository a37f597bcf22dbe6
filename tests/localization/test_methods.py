"""The localization methods run from an experiment spec on the tiny model."""

import pytest

from interp.errors import TadaError
from interp.experiments import run as run_experiment

SPEC = {
    "name": "tiny-locate",
    "model": {"name": "tiny-stable-audio"},
    "generation": {"num_steps": 3, "guidance_scale": 3.0, "duration_s": 4.0, "seeds": [0]},
    "steps": [
        {
            "name": "locate",
            "method": "locate",
            "metric": "latent_distance",
            "max_heads": 3,
            "audio_heads": 3,
            "pairs": {"source": "tada", "concepts": ["violin", "sad"], "per_concept": 1},
        },
        {
            "name": "layers",
            "method": "patch",
            "component": "text",
            "metric": "latent_distance",
            "pairs": {"source": "tada", "concepts": ["violin"], "per_concept": 1},
        },
        {
            "name": "heads",
            "method": "patch",
            "metric": "latent_distance",
            "layers": [1],
            "direction": "noising",
            "pairs": {"source": "tada", "concepts": ["violin"], "per_concept": 1},
        },
        {
            "name": "attribute",
            "method": "attribute",
            "metric": "latent_distance",
            "check_heads": 4,
            "pairs": {"source": "tada", "concepts": ["violin"], "per_concept": 1},
        },
        {
            "name": "both",
            "method": "locate",
            "metric": "latent_distance",
            "selection": "both",
            "max_heads": 2,
            "layer_impact": False,
            "audio": False,
            "stability": True,
            "pairs": {"source": "tada", "concepts": ["violin"], "per_concept": 3},
        },
    ],
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_experiment(SPEC, out=tmp_path_factory.mktemp("run"), progress=False)


def test_locate_writes_subsets_plots_and_audio(results):
    summary = results.steps["locate"]["summary"]
    assert set(summary["subsets"]) == {"violin", "sad"}
    assert all(1 <= len(v) <= 3 for v in summary["subsets"].values())
    assert summary["heads"] == sorted({h for v in summary["subsets"].values() for h in v})
    names = {p.name for p in results.plots}
    assert {
        "locate-heads-violin.png",
        "locate-prefix-sad.png",
        "locate-overlap.png",
        "locate-layer-impact.png",
    } <= names
    audio = {p.name for p in results.audio}
    assert {"violin-clean.wav", "violin-corrupted.wav", "violin-patched.wav"} <= audio


def test_locate_writes_a_head_grid_with_one_clip_per_shown_head(results):
    import json

    step_dir = results.path / "audio" / "locate"
    for concept in ("violin", "sad"):
        grid = json.loads((results.path / "data" / "locate" / f"head-grid-{concept}.json").read_text())
        rows = {r["site"]: float(r["value"]) for r in results.rows
                if r["step"] == "locate" and r["metric"] == "head_effect" and r["concept"] == concept}  # fmt: skip
        cells = {c["site"]: c for c in grid["cells"]}
        assert set(cells) == set(rows)  # every head of the tiny model is drawn
        assert all(cells[s]["effect"] == pytest.approx(v) for s, v in rows.items())
        loudest = sorted(rows, key=lambda s: -abs(rows[s]))[:3]  # audio_heads: 3
        heads = sorted(p.name for p in step_dir.glob(f"{concept}-head-*.wav"))
        assert heads == sorted(f"{concept}-head-{s}.wav" for s in loudest)  # no clip for silent cells
        assert {s: cells[s]["audio"] for s in rows} == {
            s: f"audio/locate/{concept}-head-{s}.wav" if s in loudest else None for s in rows
        }
        assert set(grid["clips"]) == {"clean", "corrupted", "subset patched"}
        assert grid["pair"]["clean"] != grid["pair"]["corrupted"]
    # audio: false draws the grid silent and writes no clip
    silent = json.loads((results.path / "data" / "both" / "head-grid-violin.json").read_text())
    assert len(silent["cells"]) == 8 and not any(c["audio"] for c in silent["cells"])
    assert silent["clips"] == {} and not (results.path / "audio" / "both").exists()
    assert "tadaPlay(this)" in (results.path / "index.html").read_text()


def test_rows_are_tidy_and_complete(results):
    rows = [r for r in results.rows if r["step"] == "locate"]
    head_rows = [r for r in rows if r["metric"] == "head_effect"]
    assert len(head_rows) == 2 * 8  # two concepts x every cross head of the tiny model
    assert {r["metric"] for r in rows} >= {
        "head_effect",
        "prefix_effect",
        "restored",
        "necessity",
        "layer_impact",
    }
    impact = [float(r["value"]) for r in rows if r["metric"] == "layer_impact" and r["concept"] == "sad"]
    assert sum(impact) == pytest.approx(1.0)


def test_patch_step_writes_a_silent_grid_of_its_heads_only(results):
    import json

    grid = json.loads((results.path / "data" / "heads" / "head-grid-violin.json").read_text())
    rows = {r["site"]: float(r["value"]) for r in results.rows if r["step"] == "heads"}
    assert {c["site"]: c["effect"] for c in grid["cells"]} == pytest.approx(rows)
    assert set(rows) == {f"cross.1.head.{h}" for h in range(4)}
    assert grid["direction"] == "noising" and not any(c["audio"] for c in grid["cells"])
    assert not (results.path / "data" / "layers").exists()  # text sites: no head grid
    assert "violin: noising effect per head" in (results.path / "index.html").read_text()


def test_patch_and_attribute_steps(results):
    effects = results.steps["layers"]["summary"]["effects"]["violin"]
    assert set(effects) == {"cross.0.text", "cross.1.text"}
    spearman = results.steps["attribute"]["summary"]["spearman"]["violin"]
    assert -1.0 <= spearman <= 1.0


def test_concept_metric_without_a_scorer_is_a_clear_error(tmp_path):
    spec = {**SPEC, "steps": [{**SPEC["steps"][1], "metric": "concept"}]}
    with pytest.raises(TadaError, match="ships none"):
        run_experiment(spec, out=tmp_path, progress=False)


def test_locate_writes_p_and_q_values_and_a_power_row(results):
    from scipy.stats import false_discovery_control

    rows = [r for r in results.rows if r["step"] == "both"]
    heads = [r for r in rows if r["metric"] == "head_effect"]
    assert len(heads) == 8
    p = [float(r["p"]) for r in heads]
    # three pairs: the exact sign-flip test cannot go below 2 / 2^3, so nothing is significant
    assert all(2 / 8 <= v <= 1 for v in p)
    assert [float(r["q"]) for r in heads] == pytest.approx(false_discovery_control(p).tolist())
    assert not any(r["significant"] == "True" for r in heads)
    metrics = {r["metric"] for r in rows}
    assert {"significant_count", "pairs_needed", "restored", "prefix_effect"} <= metrics
    assert "significant_restored" not in metrics  # nothing significant, nothing to patch
    needed = next(r for r in rows if r["metric"] == "pairs_needed")
    assert float(needed["value"]) >= 10  # at least the floor 2 / 2^n <= 0.05 / 8
    summary = results.steps["both"]["summary"]
    assert summary["significant"] == {"violin": []}
    assert summary["subsets"]["violin"]  # the greedy subset is still located


def test_stability_with_both_selections_writes_the_halves(results):
    # the halves rerun locate with the step's own metric and settings (regression: the
    # metric object was shadowed by a loop variable before the halves ran)
    rows = {r["metric"]: r for r in results.rows if r["step"] == "both"}
    jaccard = rows["stability_jaccard"]
    first, second = set(jaccard["first"].split("+")), set(jaccard["second"].split("+"))
    assert first and second and "" not in first | second  # each half located a subset
    assert float(jaccard["value"]) == pytest.approx(len(first & second) / len(first | second))
    assert -1.0 <= float(rows["stability_spearman"]["value"]) <= 1.0
    assert results.steps["both"]["summary"]["stability_jaccard"] == {"violin": float(jaccard["value"])}
    assert (results.path / "data" / "both" / "localization-violin-even.json").is_file()


def test_significant_selection_needs_patching_ranking():
    from interp.experiments import SpecError, load_spec

    spec = {**SPEC, "steps": [{**SPEC["steps"][0], "ranking": "attribution", "selection": "significant"}]}
    with pytest.raises(SpecError, match="ranking: patching"):
        load_spec(spec)
