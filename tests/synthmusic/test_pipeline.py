"""The shipped pipelines: offline loading, the generation contract, the tokenizer."""

import json
from pathlib import Path

import pytest
import torch

from models.synthmusic.denoisers import MAX_TOKENS, build_tokenizer
from models.synthmusic.pipeline import CHECKPOINT_DIR, SynthMusicPipeline, load_synthmusic

KINDS = [k for k in ("dit", "unet") if (CHECKPOINT_DIR / k / "model_index.json").exists()]


def test_tokenizer_maps_unknown_words_to_unk():
    tok = build_tokenizer()
    ids = tok(
        ["a sad, slow piano piece", "a zzyzx kazoo polka!"], padding="max_length", max_length=MAX_TOKENS
    ).input_ids
    assert all(len(row) == MAX_TOKENS for row in ids)
    assert tok.unk_token_id not in ids[0]
    words = tok.convert_ids_to_tokens(ids[1])
    assert words[:6] == ["a", "<unk>", "<unk>", "<unk>", "<unk>", "</s>"]


def test_both_models_are_shipped():
    assert KINDS == ["dit", "unet"], f"missing checkpoints under {CHECKPOINT_DIR}"


@pytest.mark.parametrize("kind", KINDS)
def test_shipped_model_loads_offline_and_generates(kind):
    pipe = load_synthmusic(kind)
    assert isinstance(pipe, SynthMusicPipeline)
    assert (
        json.loads((CHECKPOINT_DIR / kind / "model_index.json").read_text())["_class_name"]
        == "SynthMusicPipeline"
    )
    info = json.loads((CHECKPOINT_DIR / kind / "training.json").read_text())
    assert {"command", "seed", "data_version", "steps"} <= set(info)
    prompts = ["a sad, slow piano piece with male vocals", "upbeat track featuring organ and drums"]
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    out = pipe(prompts, num_inference_steps=4, generator=gens, output_type="np")
    assert tuple(out.latents.shape) == (2, 80, 64)
    assert out.audios.shape == (2, 32000) and pipe.sample_rate == 16000
    assert torch.isfinite(out.latents).all()


@pytest.mark.parametrize("kind", KINDS)
def test_rows_depend_only_on_their_prompt_and_generator(kind):
    pipe = load_synthmusic(kind)
    a = pipe(
        ["fast guitar with drums", "slow flute, no drums"],
        num_inference_steps=3,
        generator=[torch.Generator().manual_seed(5), torch.Generator().manual_seed(6)],
        output_type="latent",
    ).latents
    b = pipe(
        ["organ, sad, with female vocals", "fast guitar with drums"],
        num_inference_steps=3,
        generator=[torch.Generator().manual_seed(9), torch.Generator().manual_seed(5)],
        output_type="latent",
    ).latents
    single = pipe(
        "fast guitar with drums",
        num_inference_steps=3,
        generator=[torch.Generator().manual_seed(5)],
        output_type="latent",
    ).latents
    assert torch.allclose(a[0], b[1], atol=1e-5)
    assert torch.allclose(a[0], single[0], atol=1e-5)
    again = pipe(
        ["fast guitar with drums", "slow flute, no drums"],
        num_inference_steps=3,
        generator=[torch.Generator().manual_seed(5), torch.Generator().manual_seed(6)],
        output_type="latent",
    ).latents
    assert torch.equal(a, again)


def test_denoiser_called_once_per_step_with_cfg_layout():
    pipe = load_synthmusic(KINDS[0])
    calls = []
    hook = pipe.denoiser.register_forward_hook(
        lambda m, args, kwargs, out: calls.append(kwargs), with_kwargs=True
    )
    try:
        pipe(
            ["slow piano", "fast organ", "bass"],
            num_inference_steps=3,
            guidance_scale=4.0,
            output_type="latent",
        )
        assert len(calls) == 3
        text = calls[0]["encoder_hidden_states"]
        assert text.shape[0] == 6
        empty, _ = pipe.encode_prompt([""])
        assert torch.allclose(text[:3], empty.expand(3, -1, -1), atol=1e-6)  # unconditional rows first
        calls.clear()
        pipe(["slow piano", "fast organ"], num_inference_steps=2, guidance_scale=1.0, output_type="latent")
        assert len(calls) == 2 and calls[0]["encoder_hidden_states"].shape[0] == 2
    finally:
        hook.remove()


def test_load_errors_are_clear(tmp_path: Path):
    with pytest.raises(ValueError, match="valid kinds"):
        load_synthmusic("gan")
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        load_synthmusic("dit", directory=tmp_path)
