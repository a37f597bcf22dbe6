"""Rehearsal recipes: full-size structure on the meta device, and a small recipe end to end.

The full-size rehearsal itself (GBs of weights) is a benchmark:
``tests/benchmarks/bench_rehearsal.py``.
"""

import functools
import json

import pytest
import torch

import models.rehearse as rehearse_module
from interp.registry import load_model
from interp.runner import run
from models.rehearse import REHEARSABLE, rehearsal_components, rehearse


@functools.cache
def _millions(model: str) -> dict[str, float]:
    return {
        name: sum(p.numel() for p in c.parameters()) / 1e6
        for name, c in rehearsal_components(model)
        if hasattr(c, "parameters")
    }


def test_every_paper_model_has_a_recipe():
    assert set(REHEARSABLE) == {
        "stable-audio-open-1.0",
        "audioldm2",
        "audioldm2-large",
        "audioldm2-music",
        "ace-step-1.5",
        "audioldm-s-full-v2",
    }


def test_stable_audio_open_is_built_at_its_measured_size():
    # measured on a full-size build from the hub configs: DiT 1.06B, Oobleck VAE 156M, T5-base 110M
    sizes = _millions("stable-audio-open-1.0")
    assert sizes["transformer"] == pytest.approx(1057, abs=1)
    assert sizes["vae"] == pytest.approx(156, abs=1)
    assert sizes["text_encoder"] == pytest.approx(110, abs=1)
    assert sum(sizes.values()) == pytest.approx(1323, abs=2)


def test_audioldm2_unets_have_their_published_sizes():
    # diffusers docs: audioldm2 / -music 350M UNet (1.1B total), -large 750M UNet (1.5B total)
    base, large = _millions("audioldm2"), _millions("audioldm2-large")
    assert base["unet"] == pytest.approx(350, rel=0.02) and large["unet"] == pytest.approx(718, abs=1)
    assert sum(base.values()) == pytest.approx(1100, rel=0.03)
    assert sum(large.values()) == pytest.approx(1500, rel=0.05)


@pytest.mark.parametrize(
    "model", ["stable-audio-open-1.0", "audioldm2-large", "audioldm-s-full-v2", "ace-step-1.5"]
)
def test_the_rehearsed_denoiser_has_the_sites_of_the_structure_only_build(model):
    denoiser_name = {"stable-audio-open-1.0": "transformer", "ace-step-1.5": "transformer"}.get(model, "unet")
    structure = load_model(model, weights=False)
    assert _millions(model)[denoiser_name] == sum(p.numel() for p in structure.denoiser.parameters()) / 1e6
    assert structure.catalog.count("self") + structure.catalog.count("cross") > 0


TINY_SAO = {
    "transformer.json": {
        "sample_size": 8,
        "in_channels": 4,
        "num_layers": 2,
        "attention_head_dim": 8,
        "num_attention_heads": 4,
        "num_key_value_attention_heads": 2,
        "out_channels": 4,
        "cross_attention_dim": 16,
        "time_proj_dim": 8,
        "global_states_input_dim": 32,
        "cross_attention_input_dim": 16,
    },
    "text_encoder.json": {
        "vocab_size": 40,
        "d_model": 16,
        "d_kv": 8,
        "d_ff": 24,
        "num_layers": 1,
        "num_heads": 2,
    },
    "projection_model.json": {
        "text_encoder_dim": 16,
        "conditioning_dim": 16,
        "min_value": 0,
        "max_value": 32,
    },
    "vae.json": {
        "encoder_hidden_size": 6,
        "downsampling_ratios": [1, 2],
        "decoder_channels": 3,
        "decoder_input_channels": 4,
        "audio_channels": 2,
        "channel_multiples": [2, 4],
        "sampling_rate": 4,
    },
}


def test_a_small_recipe_writes_a_directory_that_loads_and_generates(tmp_path, monkeypatch):
    shipped = rehearse_module.CONFIG_DIR / "stable-audio-open-1.0"
    configs = tmp_path / "configs" / "stable-audio-open-1.0"
    configs.mkdir(parents=True)
    for name, config in TINY_SAO.items():
        (configs / name).write_text(json.dumps(config))
    for name in ("rehearsal.json", "scheduler.json"):  # the real recipe and scheduler
        (configs / name).write_text((shipped / name).read_text())
    monkeypatch.setattr(rehearse_module, "CONFIG_DIR", tmp_path / "configs")
    built = rehearse("stable-audio-open-1.0", tmp_path / "out")
    assert {c.name for c in built} == {
        "transformer",
        "text_encoder",
        "projection_model",
        "vae",
        "scheduler",
        "tokenizer",
    }
    index = json.loads((tmp_path / "out" / "model_index.json").read_text())
    assert index["_class_name"] == "StableAudioPipeline" and index["projection_model"][0] == "stable_audio"
    model = load_model(str(tmp_path / "out"))
    request = model.default_request(["a sad violin piece"], [0])
    from dataclasses import replace

    out = run(model, replace(request, num_steps=2, duration_s=2.0)).output
    assert out.audio is not None and out.audio.isfinite().all()
    assert model.catalog.count("cross") == 2


def test_cli_refuses_a_directory_with_files(tmp_path, capsys):
    from interp.cli import main

    (tmp_path / "keep.txt").write_text("mine")
    assert main(["rehearse", "stable-audio-open-1.0", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err and (tmp_path / "keep.txt").exists()


def test_the_clap_scorer_recipe_is_the_larger_music_checkpoints_size():
    # HTSAT-base audio tower + RoBERTa-base text tower; laion/larger_clap_music's weights are 0.78 GB in float32
    assert "larger-clap-music" not in REHEARSABLE  # a scorer, not a model interp.load_model knows
    sizes = _millions("larger-clap-music")
    assert sizes["model"] == pytest.approx(193.9, abs=0.1)


TINY_CLAP = {
    "text_config": {
        "vocab_size": 256,  # the offline word tokenizer's 191 tokens fit
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 37,
        "projection_dim": 16,
        "max_position_embeddings": 64,
    },
    "audio_config": {
        "spec_size": 256,  # the real one: 10 s windows of 64 mel bins must fit
        "window_size": 8,
        "num_mel_bins": 64,
        "patch_embeds_hidden_size": 16,
        "hidden_size": 32,
        "depths": [1, 1],
        "num_attention_heads": [2, 2],
        "enable_fusion": False,
        "projection_dim": 16,
    },
    "projection_dim": 16,
}


def test_a_small_clap_recipe_writes_a_flat_directory_the_scorer_loads(tmp_path, monkeypatch):
    from interp.adapter import GenerationOutput
    from models.clap import ClapScorer

    shipped = rehearse_module.CONFIG_DIR / "larger-clap-music"
    configs = tmp_path / "configs" / "larger-clap-music"
    configs.mkdir(parents=True)
    for name in ("rehearsal.json", "feature_extractor.json"):  # the real recipe and feature extractor
        (configs / name).write_text((shipped / name).read_text())
    (configs / "model.json").write_text(json.dumps(TINY_CLAP))
    monkeypatch.setattr(rehearse_module, "CONFIG_DIR", tmp_path / "configs")
    rehearse("larger-clap-music", tmp_path / "clap", seed=3)
    assert not (tmp_path / "clap" / "model_index.json").exists()

    loaded = ClapScorer.load(str(tmp_path / "clap"))
    components = dict(rehearse_module.rehearsal_components("larger-clap-music", "cpu", seed=3))
    assert loaded.processor.feature_extractor.truncation == "rand_trunc"
    audio = torch.randn(2, 2, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    out = GenerationOutput(torch.zeros(2, 4), audio, 16000)
    scores = loaded.score(out, "fast", "fast")
    # ground truth: the in-memory model (same seed) embeds the same features and text
    model = components["model"].eval()
    extractor = components["feature_extractor"]
    features = extractor(_resampled(out), sampling_rate=48000, return_tensors="pt")
    tokens = components["tokenizer"](["This is a music of fast"], return_tensors="pt")
    with torch.no_grad():
        a = torch.nn.functional.normalize(_tensor(model.get_audio_features(**features)), dim=-1)
        t = torch.nn.functional.normalize(_tensor(model.get_text_features(**tokens)), dim=-1)[0]
    assert scores.shape == (2,) and not torch.equal(scores[0], scores[1])
    torch.testing.assert_close(scores, a @ t, rtol=0, atol=1e-6)


def _tensor(features):
    return features if isinstance(features, torch.Tensor) else features.pooler_output


def _resampled(out):  # what ClapScorer does: mono, resampled to the extractor's 48 kHz
    import librosa
    import numpy as np

    mono = out.audio.float().numpy().mean(axis=1)
    return [
        librosa.resample(np.asarray(x, dtype=np.float32), orig_sr=out.sample_rate, target_sr=48000)
        for x in mono
    ]
