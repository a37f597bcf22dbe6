"""Every shipped experiment validates; the tiny one runs; the spec reference is current."""

from pathlib import Path

import pytest

from interp.experiments import load_spec, run
from interp.experiments.docs import DEFAULT_PATH, main, render

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "experiments").rglob("*.yaml"))


def test_there_are_experiments() -> None:
    assert ROOT / "experiments" / "tiny.yaml" in SPECS


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_experiment_validates(path: Path) -> None:
    loaded = load_spec(path)  # site strings checked against a meta-device build
    assert loaded.spec.steps


def test_tiny_experiment_runs(tmp_path: Path, quiet_warnings: None) -> None:
    results = run(ROOT / "experiments" / "tiny.yaml", out=tmp_path / "tiny", progress=False)
    assert len(results.rows) == 2 * 4 * 2 * 2  # steps x prompts x seeds x metrics
    zeroed = [
        r["value"] for r in results.rows if r["step"] == "zero_head" and r["metric"] == "latent_distance"
    ]
    assert max(zeroed) < 0  # -L2 to the unedited run: the zeroed head moves every sample
    assert (tmp_path / "tiny" / "index.html").is_file()


def test_spec_reference_is_up_to_date() -> None:
    assert DEFAULT_PATH == ROOT / "docs" / "spec-reference.md"
    assert DEFAULT_PATH.read_text(encoding="utf-8") == render(), (
        "docs/spec-reference.md is stale: run `python -m interp.experiments.docs`"
    )
    assert main(["--check"]) == 0
