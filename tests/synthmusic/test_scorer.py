"""The concept scorer: accuracy on fresh generator clips, differentiability, tempo check."""

import numpy as np
import pytest
import torch

from models.synthmusic.data import build
from models.synthmusic.music import CONCEPTS, TEMPO_BPM, ConceptValues, render
from models.synthmusic.scorer import SCORER_DIR, estimate_tempo, load_scorer, tempo_class
from models.synthmusic.spectrogram import to_spec

pytestmark = pytest.mark.skipif(not (SCORER_DIR / "model.safetensors").exists(), reason="scorer not trained")


@pytest.fixture(scope="module")
def scorer():
    return load_scorer()


def test_scorer_is_accurate_on_fresh_clips_including_held_out(scorer):
    # Seeds never used in training or in the shipped accuracy measurement.
    for split, n in (("test", 192), ("held_out", 96)):
        ds = build(split, n, start=77_000_000)
        pred = scorer.predict(ds.specs)
        for i, concept in enumerate(CONCEPTS):
            acc = (pred[concept] == ds.labels[:, i]).float().mean().item()
            assert acc >= 0.95, f"{split} {concept}: {acc:.3f}"


def test_scorer_is_differentiable_and_returns_probabilities(scorer):
    spec = to_spec(render(ConceptValues("flute", "yes", "fast", "sad", "male"), 3)).requires_grad_(True)
    probs = scorer(spec)
    assert set(probs) == set(CONCEPTS)
    for c, p in probs.items():
        assert p.shape == (1, len(CONCEPTS[c]))
        assert torch.allclose(p.sum(-1), torch.ones(1), atol=1e-5)
    probs["mood"][0, 1].backward()
    assert spec.grad is not None and spec.grad.abs().sum() > 0


def test_scorer_rejects_wrong_shapes(scorer):
    with pytest.raises(ValueError, match="spec must be"):
        scorer(torch.zeros(2, 64, 80))


def test_librosa_tempo_matches_the_bpm():
    bpm = {
        t: np.median(
            [estimate_tempo(render(ConceptValues("piano", "yes", t, "happy", "none"), s)) for s in range(3)]
        )
        for t in TEMPO_BPM
    }
    for t in ("medium", "fast"):
        assert abs(bpm[t] / TEMPO_BPM[t] - 1) < 0.05, bpm
    # librosa's beat tracker (prior around 120 BPM) may report slow clips at double tempo.
    assert min(abs(bpm["slow"] / (k * TEMPO_BPM["slow"]) - 1) for k in (1, 2)) < 0.05, bpm
    assert tempo_class(TEMPO_BPM["fast"] * 1.05) == "fast"
