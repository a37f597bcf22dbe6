"""The CLAP scorer: a tiny CLAP model built offline, and the offline error for real weights."""

import numpy as np
import pytest
import torch
from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

from interp.adapter import GenerationOutput
from interp.errors import ModelNotFoundError
from interp.metrics import ConceptContrast, MetricContext
from interp.prompts import PromptPair
from models.clap import ClapScorer
from models.tiny.text import word_tokenizer


@pytest.fixture(scope="module")
def tiny_clap():
    torch.manual_seed(0)
    text = dict(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        projection_dim=16,
        max_position_embeddings=64,
    )
    audio = dict(
        spec_size=128,
        window_size=4,
        num_mel_bins=64,
        patch_embeds_hidden_size=16,
        hidden_size=32,
        depths=[1, 1],
        num_attention_heads=[2, 2],
        enable_fusion=False,
        projection_dim=16,
        patch_stride=(4, 4),
    )
    model = ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=16))
    extractor = ClapFeatureExtractor(
        feature_size=64, sampling_rate=48000, max_length_s=1, truncation="rand_trunc"
    )
    processor = ClapProcessor(feature_extractor=extractor, tokenizer=word_tokenizer())
    return ClapScorer(model, processor)


def output(seed: int, n: int = 2) -> GenerationOutput:
    rng = np.random.default_rng(seed)
    audio = torch.tensor(rng.standard_normal((n, 2, 16000)) * 0.1, dtype=torch.float32)
    return GenerationOutput(torch.zeros(n, 4), audio, 16000)


def test_clap_scores_are_cosine_similarities(tiny_clap):
    out = output(0)
    scores = tiny_clap.score(out, "violin", "violin")
    assert scores.shape == (2,) and bool((scores.abs() <= 1 + 1e-6).all())
    embeddings = tiny_clap.audio_embeddings(out)
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(2))
    assert torch.equal(tiny_clap.score(out, "violin", "violin"), scores)  # deterministic


def test_clap_contrast_metric(tiny_clap):
    pair = PromptPair("a violin song", "a trumpet song", "violin", "violin", "trumpet")
    out = output(1)
    metric = ConceptContrast(tiny_clap, name="clap")
    values = metric(out, MetricContext.for_pair(out, out, pair))
    expected = tiny_clap.score(out, "violin", "violin") - tiny_clap.score(out, "violin", "trumpet")
    torch.testing.assert_close(values, expected.float())


def test_missing_clap_weights_give_one_clear_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="Could not load the CLAP scorer") as info:
        ClapScorer.load("laion/larger_clap_music")
    assert "\n" not in str(info.value)
