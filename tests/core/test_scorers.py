"""Named scorers: the librosa tempo scorer on clicks at known tempi, and the registry."""

import numpy as np
import pytest
import torch

from interp.adapter import GenerationOutput
from interp.errors import TadaError
from interp.scorers import TempoScorer, load_scorer, scorer_factories


def clicks(bpm: float, sr: int = 16000, seconds: float = 8.0) -> np.ndarray:
    """Decaying noise bursts on a beat grid."""
    rng = np.random.default_rng(0)
    audio = np.zeros(int(sr * seconds), dtype=np.float32)
    period = int(sr * 60 / bpm)
    for start in range(0, audio.size - 800, period):
        audio[start : start + 800] += rng.standard_normal(800) * np.exp(-np.arange(800) / 150)
    return audio


def test_tempo_scorer_orders_fast_above_slow():
    audio = torch.tensor(np.stack([clicks(70), clicks(120)]))
    out = GenerationOutput(torch.zeros(2, 1), audio, 16000)
    fast = TempoScorer().score(out, "fast", "fast")
    slow = TempoScorer().score(out, "slow", "slow")
    assert fast[1] > fast[0] and slow[0] > slow[1]
    with pytest.raises(TadaError, match="scores fast/slow values"):
        TempoScorer().score(out, "violin", "violin")


def test_scorer_registry_lists_plugins_and_suggests():
    assert {"tempo", "clap"} <= set(scorer_factories())
    with pytest.raises(TadaError, match="Did you mean 'tempo'"):
        load_scorer("tempoo")
