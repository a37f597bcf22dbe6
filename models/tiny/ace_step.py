"""A tiny ACE-Step 1.5 pipeline: the real diffusers classes with small configs, offline.

Components: ``AceStepTransformer1DModel`` (GQA self- and cross-attention per layer), the
``AceStepConditionEncoder`` (lyric and timbre encoders, learned null condition), a tiny
Qwen3 text encoder, an Oobleck VAE and the flow-matching Euler scheduler configured as
the pipeline expects (``num_train_timesteps=1``, ``shift=1``).
"""

import torch
from diffusers import AceStepPipeline, AutoencoderOobleck, FlowMatchEulerDiscreteScheduler  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
from diffusers.models.transformers.ace_step_transformer import AceStepTransformer1DModel
from diffusers.pipelines.ace_step import AceStepConditionEncoder  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily
from transformers import Qwen3Config, Qwen3Model

from models.tiny.text import WORDS, word_tokenizer


def tiny_ace_step(
    seed: int = 0,
    num_layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    head_dim: int = 8,
    turbo: bool = False,
) -> AceStepPipeline:
    """A randomly initialised ``AceStepPipeline``.

    Args:
        seed: Seed of the weight initialisation.
        num_layers: DiT layers (each has ``self_attn`` and ``cross_attn``).
        heads: Query heads per attention module.
        kv_heads: Key/value heads (grouped-query attention).
        head_dim: Width of one head.
        turbo: Mark the transformer as a guidance-distilled turbo checkpoint (the
            pipeline then runs without classifier-free guidance).
    """
    torch.manual_seed(seed)
    width = 32
    acoustic = 8
    text_dim = 16
    transformer = AceStepTransformer1DModel(
        hidden_size=width,
        intermediate_size=48,
        num_hidden_layers=num_layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        in_channels=3 * acoustic,  # context (source latents + chunk mask) + noisy latents
        audio_acoustic_hidden_dim=acoustic,
        patch_size=2,
        rope_theta=10000.0,
        sliding_window=4,
        is_turbo=turbo,
    )
    condition_encoder = AceStepConditionEncoder(
        hidden_size=width,
        intermediate_size=48,
        text_hidden_dim=text_dim,
        timbre_hidden_dim=acoustic,
        num_lyric_encoder_hidden_layers=1,
        num_timbre_encoder_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        rope_theta=10000.0,
        sliding_window=4,
    )
    text_encoder = Qwen3Model(
        Qwen3Config(
            hidden_size=text_dim,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=8,
            vocab_size=len(WORDS) + 3,
            max_position_embeddings=256,
        )
    )
    vae = AutoencoderOobleck(
        encoder_hidden_size=6,
        downsampling_ratios=[1, 2],
        decoder_channels=3,
        decoder_input_channels=acoustic,
        audio_channels=2,
        channel_multiples=[2, 4],
        sampling_rate=8,  # 4 latent frames per second
    )
    pipe = AceStepPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=word_tokenizer(max_length=256),
        transformer=transformer,
        condition_encoder=condition_encoder,
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0),
    )
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()  # no dropout: generations must be deterministic
    pipe.set_progress_bar_config(disable=True)
    return pipe
