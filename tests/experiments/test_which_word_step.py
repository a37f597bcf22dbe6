"""The which-word spec method: rows, summary and plots of a run; clear errors for bad heads."""

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from interp.experiments import SpecError, load_spec, run

from .conftest import spec, write

PROMPTS = {
    "default": [
        {"prompt": "a sad violin song", "concept": "mood", "fields": {"corrupted": "a happy violin song"}},
    ]
}


def which(**changes: Any) -> dict[str, Any]:
    step = {"name": "which", "method": "which-word", "heads": ["cross.1.head.3"], "metric": "latent_distance"}
    return spec(prompts=PROMPTS, steps=[{**step, **changes}])


def test_a_run_writes_rows_per_word_a_summary_and_plots(tmp_path: Path, quiet_warnings: None) -> None:
    run(write(tmp_path / "s.yaml", which()), out=tmp_path / "run", progress=False)
    rows = list(csv.DictReader((tmp_path / "run" / "results.csv").open()))
    patching = {r["word"]: r for r in rows if r["metric"] == "word_patching_effect"}
    assert list(patching) == ["a", "sad", "violin", "song", "<other>", "<all>"]
    assert [patching[w]["role"] for w in ("sad", "violin", "<other>", "<all>")] == [
        "concept",
        "word",
        "other",
        "all",
    ]
    # the pipeline zeroes the padding's text states and the duration tokens are the same
    # in both prompts: patching the positions of no word does nothing
    assert abs(float(patching["<other>"]["value"])) < 1e-6
    assert abs(float(patching["<all>"]["value"])) > 1e-3
    shares = [float(r["value"]) for r in rows if r["metric"] == "attention_share"]
    assert len(shares) == 5 and sum(shares) == pytest.approx(1.0, abs=1e-5)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())["steps"][0]
    assert set(summary["summary"]["roles"]["mood"]["cross.1.head.3"]) == {
        "concept", "strongest_other_word", "other_words", "no_word", "all"
    }  # fmt: skip
    assert summary["files"] == [
        "plots/which-roles-mood.png", "plots/which-patching-mood.png", "plots/which-attention-mood.png"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("heads", "fragment"),
    [
        (["self.0.head.1"], "which-word reads cross-attention heads"),
        (["cross.1.text"], "which-word reads cross-attention heads"),
        (["cross.7.head.0"], "No cross-attention layer 7"),
        (["cross.1.head.9"], "Head 9 out of range"),
    ],
)
def test_bad_heads_are_one_clear_line_each(tmp_path: Path, heads: list[str], fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment) as caught:
        load_spec(write(tmp_path / "s.yaml", which(heads=heads)))
    assert "Traceback" not in str(caught.value)
