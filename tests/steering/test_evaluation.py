"""Steering evaluation: alignment vs preservation, AUC, plots and audio."""

import pytest
import soundfile
import torch

from interp.errors import TadaError
from interp.statistics import wilson
from interp.steering import (
    CAASteerer,
    CentroidScorer,
    alignment_auc,
    alpha_grid,
    compare,
    compute_caa,
    evaluate_steering,
)


def test_alignment_auc_is_the_area_up_to_the_budget():
    alphas = [-1.0, 0.0, 1.0, 2.0]
    alignment = [0.0, 0.5, 0.7, 0.9]
    distance = [0.1, 0.0, 0.2, 0.6]
    # gains 0 -> 0.2 (x 0 -> 0.2) -> 0.4 (x 0.2 -> 0.6), cut at 0.4: gain there 0.3
    area, reached = alignment_auc(alphas, alignment, distance, budget=0.4)
    assert area == pytest.approx(0.5 * 0.2 * 0.2 + 0.5 * (0.2 + 0.3) * 0.2)
    assert reached
    area, reached = alignment_auc(alphas, alignment, distance, budget=1.0)
    assert area == pytest.approx(0.02 + 0.5 * (0.2 + 0.4) * 0.4) and not reached
    down, _ = alignment_auc(alphas, alignment, distance, budget=0.1, side=-1)
    assert down == pytest.approx(0.5 * 0.5 * 0.1)  # alpha -1 lowers alignment by 0.5
    with pytest.raises(TadaError, match="alpha = 0"):
        alignment_auc([1.0], [0.0], [0.0], 0.5)


def test_alpha_grid_and_wilson_interval():
    assert alpha_grid(2.0, 2) == [-2.0, -1.0, 0.0, 1.0, 2.0]
    low, high = wilson(8, 10)
    assert 0.4 < low < 0.8 < high < 1.0
    with pytest.raises(TadaError, match="max_alpha > 0"):
        alpha_grid(0.0, 3)


def test_centroid_scorer_is_one_at_the_positive_centroid(tiny_sa, request_3, happy):
    scorer = CentroidScorer.fit(
        tiny_sa,
        request_3,
        happy.positive[:3],
        happy.negative[:3],
        concept="mood",
        target="happy",
        opposite="sad",
        seeds=[0, 1],
    )
    from dataclasses import replace

    pos = tiny_sa.generate(replace(request_3, prompts=happy.positive[:3] * 2, seeds=(0,) * 3 + (1,) * 3))
    assert scorer.score(pos, "mood", "happy").mean().item() == pytest.approx(1.0, abs=1e-4)
    assert scorer.score(pos, "mood", "sad").mean().item() == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(TadaError, match="scores values"):
        scorer.score(pos, "mood", "angry")


def test_evaluation_writes_tables_plots_and_audio(tiny_sa, request_3, happy, tmp_path):
    vectors = compute_caa(tiny_sa, request_3, happy.positive[:3], happy.negative[:3], ["cross.1.out"])
    scorer = CentroidScorer.fit(
        tiny_sa,
        request_3,
        happy.positive[:3],
        happy.negative[:3],
        concept="mood",
        target="happy",
        opposite="sad",
    )
    steerer = CAASteerer(vectors)
    result = evaluate_steering(
        tiny_sa,
        request_3,
        steerer,
        [-2.0, 2.0],
        scorer,
        "mood",
        "happy",
        label="caa-layer1",
        budget=0.3,
        out_dir=tmp_path,
    )
    assert result.alphas == [-2.0, 0.0, 2.0] and len(result.rows) == 9
    curve = {c["alpha"]: c for c in result.curve()}
    assert curve[0.0]["distance"] == 0.0
    assert curve[2.0]["distance"] > 0 and curve[2.0]["alignment"] > curve[0.0]["alignment"]
    assert curve[-2.0]["alignment"] < curve[0.0]["alignment"]
    summary = result.summary()
    assert summary["auc"] > 0 and summary["method"]["sites"] == ["cross.1.out"]
    for name in ("rows.csv", "curve.csv", "summary.json", "curves.png"):
        assert (tmp_path / name).stat().st_size > 0
    wav = tmp_path / "audio" / "alpha_+2.000_sample_1.wav"
    data, rate = soundfile.read(wav, dtype="float32")
    assert rate == 4 and data.shape[1] == 2
    steered = next(r for r in result.rows if r["alpha"] == 2.0 and r["sample"] == 1)
    assert steered["prompt"] == request_3.prompts[1]
    (row,) = compare([result], budget=0.1)
    assert row["label"] == "caa-layer1" and row["auc"] <= summary["auc"]


def test_evaluation_takes_any_concept_scorer_and_latent_distance(tiny_sa, request_3, happy):
    class NoAudio:
        def score(self, output, concept, value):
            return output.latents.flatten(1).mean(dim=1)

    vectors = compute_caa(tiny_sa, request_3, happy.positive[:1], happy.negative[:1], ["cross.1.out"])
    result = evaluate_steering(
        tiny_sa, request_3, CAASteerer(vectors), [1.0], NoAudio(), "mood", "happy", distance="latents"
    )
    zero = [r for r in result.rows if r["alpha"] == 0.0]
    assert all(r["distance"] == 0.0 and r["gain"] == 0.0 for r in zero)
    assert torch.isfinite(torch.tensor([r["alignment"] for r in result.rows])).all()


def test_run_caa_goes_from_prompt_sets_to_rows_and_artifacts(tiny_sa, request_3, happy, tmp_path):
    from interp.steering import CAASettings, load_vectors, run_caa

    scorer = CentroidScorer.fit(
        tiny_sa,
        request_3,
        happy.positive[:2],
        happy.negative[:2],
        concept="mood",
        target="happy",
        opposite="sad",
    )
    settings = CAASettings(steps="1:", renormalize=True, budget=0.2)
    runs = [
        run_caa(
            tiny_sa,
            request_3,
            happy.positive[:3],
            happy.negative[:3],
            sites,
            [1.0, 3.0],
            scorer,
            "mood",
            "happy",
            settings=settings,
            label=label,
            out_dir=tmp_path / label,
        )
        for label, sites in (
            ("localized", ["cross.1.head.0", "cross.1.head.3"]),
            ("all-layers", ["cross.0.out", "cross.1.out"]),
        )
    ]
    localized = runs[0]
    assert {r["alpha"] for r in localized.rows} == {0.0, 1.0, 3.0}
    assert localized.method["settings"]["renormalize"] == "True"
    assert localized.method["steps"] == "1,2,3"
    vectors = load_vectors(localized.artifacts["vectors"])
    assert vectors.sites == ["cross.1.head.0", "cross.1.head.3"] and vectors.steps == (1, 2, 3)
    assert (tmp_path / "localized" / "curves.png").is_file()
    assert (tmp_path / "all-layers" / "audio" / "alpha_+3.000_sample_2.wav").is_file()
    table = compare(runs)
    assert [r["label"] for r in table] == ["localized", "all-layers"]
