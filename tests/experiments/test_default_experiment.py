"""The README's default experiment runs end to end on the shipped default model.

This is the slowest test (a few minutes on 2 CPU cores): it runs the real spec, not a
reduced copy, so what the README promises is what CI checks.
"""

from pathlib import Path

from interp.experiments import run

ROOT = Path(__file__).resolve().parents[2]


def test_default_experiment_locates_and_steers(tmp_path):
    results = run(ROOT / "experiments" / "default.yaml", out=tmp_path / "default", progress=False)
    locate = results.steps["locate"]["summary"]
    assert set(locate["subsets"]) == {"instrument", "drums", "tempo", "mood", "vocals"}
    assert all(1 <= len(heads) <= 8 for heads in locate["subsets"].values())
    impact = locate["layer_impact"]["tempo"]
    assert abs(sum(impact.values()) - 1.0) < 1e-6
    steer = results.steps["steer_tempo"]["summary"]
    assert set(steer["auc"]) == {"localized", "all_layers"}
    assert steer["sites"]["localized"] == locate["subsets"]["tempo"]
    assert (tmp_path / "default" / "index.html").is_file()
    assert any(p.suffix == ".wav" for p in results.audio)
