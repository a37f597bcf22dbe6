"""A tiny Stable Audio pipeline: the real diffusers classes with small configs."""

import torch
from diffusers import (
    AutoencoderOobleck,  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
    CosineDPMSolverMultistepScheduler,  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
    StableAudioDiTModel,  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
    StableAudioPipeline,  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
)
from diffusers.pipelines.stable_audio.modeling_stable_audio import StableAudioProjectionModel
from transformers import T5Config, T5EncoderModel

from models.tiny.text import WORDS, word_tokenizer


def tiny_stable_audio(
    seed: int = 0,
    num_layers: int = 2,
    width: int = 32,
    heads: int = 4,
    kv_heads: int = 2,
) -> StableAudioPipeline:
    """A randomly initialised ``StableAudioPipeline`` with GQA cross-attention.

    Args:
        seed: Seed of the weight initialisation.
        num_layers: DiT layers (each has one self- and one cross-attention).
        width: Model width; ``heads`` must divide it.
        heads: Query heads per attention module.
        kv_heads: Key/value heads of the cross-attention.
    """
    torch.manual_seed(seed)
    text_dim = 32
    tokenizer = word_tokenizer()
    text_encoder = T5EncoderModel(
        T5Config(vocab_size=len(WORDS) + 3, d_model=text_dim, d_kv=8, d_ff=37, num_layers=2, num_heads=4)
    )
    projection = StableAudioProjectionModel(
        text_encoder_dim=text_dim, conditioning_dim=text_dim, min_value=0, max_value=32
    )
    transformer = StableAudioDiTModel(
        sample_size=8,
        in_channels=4,
        num_layers=num_layers,
        attention_head_dim=width // heads,
        num_attention_heads=heads,
        num_key_value_attention_heads=kv_heads,
        out_channels=4,
        cross_attention_dim=text_dim,
        time_proj_dim=8,
        global_states_input_dim=2 * text_dim,
        cross_attention_input_dim=text_dim,
    )
    vae = AutoencoderOobleck(
        encoder_hidden_size=6,
        downsampling_ratios=[1, 2],
        decoder_channels=3,
        decoder_input_channels=4,
        audio_channels=2,
        channel_multiples=[2, 4],
        sampling_rate=4,
    )
    scheduler = CosineDPMSolverMultistepScheduler(
        solver_order=2, prediction_type="v_prediction", sigma_data=1.0, sigma_schedule="exponential"
    )
    pipe = StableAudioPipeline(
        vae=vae,
        text_encoder=text_encoder,
        projection_model=projection,
        tokenizer=tokenizer,
        transformer=transformer,
        scheduler=scheduler,  # pyright: ignore[reportArgumentType]  # Stable Audio Open ships this one; diffusers annotates EDM
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
