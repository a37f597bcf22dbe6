"""One call of a diffusers audio pipeline for a :class:`GenerationRequest`.

Stable Audio, AudioLDM and AudioLDM2 take the same arguments except the name of the
duration argument, and report the latents of each step through the same legacy
``callback``. This module makes that call once for all of them: per-row generators,
the negative prompt repeated per sample, the final latents captured, and decoding
skipped when the request asks for latents only. Each step is reported to
:mod:`interp.progress` from the same callback.

The pipeline itself never decodes: it returns latents, and the adapter's decoder
(:func:`stable_audio_decoder`, :func:`mel_decoder`) turns them into audio one sample at
a time (:func:`models.decoding.decode_per_sample`) and, for Stable Audio, from only the
latent frames the requested duration needs.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from interp.adapter import GenerationOutput, GenerationRequest
from interp.progress import denoising_step
from models.decoding import OOBLECK_MARGIN_FRAMES, decode_per_sample, frames_to_decode

#: Latents (batch first) and the request -> audio, batch first.
Decoder = Callable[[Tensor, GenerationRequest], Tensor]


def stable_audio_decoder(pipeline: Any) -> Decoder:
    """Oobleck decoding of the frames covering ``[0, duration_s]`` plus a margin, cropped
    to the duration as the pipeline crops (``int(duration_s * sample_rate)`` samples)."""
    vae = pipeline.vae
    rate = int(vae.config.sampling_rate)

    def decode(latents: Tensor, request: GenerationRequest) -> Tensor:
        total = int(latents.shape[-1])
        frames = frames_to_decode(request.duration_s, total, int(vae.hop_length), rate, OOBLECK_MARGIN_FRAMES)
        end = None if request.duration_s is None else int(request.duration_s * rate)

        def rows(z: Tensor) -> Tensor:
            return vae.decode(z[..., :frames]).sample[..., :end]

        return decode_per_sample(rows, latents)

    return decode


def mel_decoder(pipeline: Any) -> Decoder:
    """AudioLDM 2: VAE to mel spectrogram, vocoder to waveform, cropped to the
    duration as the pipelines crop it."""
    vocoder_rate = int(pipeline.vocoder.config.sampling_rate)
    upsample = float(np.prod(pipeline.vocoder.config.upsample_rates)) / vocoder_rate

    def decode(latents: Tensor, request: GenerationRequest) -> Tensor:
        duration = request.duration_s
        if duration is None:  # the pipelines' default length
            duration = pipeline.unet.config.sample_size * pipeline.vae_scale_factor * upsample
        length = int(duration * vocoder_rate)

        def rows(z: Tensor) -> Tensor:
            mel = pipeline.vae.decode(z / pipeline.vae.config.scaling_factor).sample
            return pipeline.mel_spectrogram_to_waveform(mel)[:, :length]

        return decode_per_sample(rows, latents)

    return decode


def call_pipeline(
    pipeline: Any,
    request: GenerationRequest,
    device: torch.device,
    sample_rate: int,
    *,
    duration_argument: str,
    decoder: Decoder | None,
) -> GenerationOutput:
    """Run ``pipeline`` for ``request`` and return its final latents and audio.

    Args:
        pipeline: A diffusers pipeline with the legacy ``callback`` / ``callback_steps``
            arguments and ``output_type`` ``"pt"`` / ``"latent"``.
        request: Prompts, seeds and settings.
        device: Device of the per-row generators.
        sample_rate: Sample rate of the decoded audio.
        duration_argument: Name of the pipeline's length argument
            (``audio_end_in_s`` for Stable Audio, ``audio_length_in_s`` for AudioLDM).
        decoder: Turns the final latents into audio (when the request decodes);
            ``None``: the pipeline decodes (AudioLDM 1's always does, whole batches).
    """
    final: dict[str, torch.Tensor] = {}

    def keep_latents(step: int, timestep: Any, latents: torch.Tensor) -> None:
        final["latents"] = latents
        denoising_step()

    negative = request.negative_prompt
    out = pipeline(
        prompt=list(request.prompts),
        negative_prompt=None if negative is None else [negative] * request.batch_size,
        num_inference_steps=request.num_steps,
        guidance_scale=request.guidance_scale,
        generator=request.generators(device),
        output_type="latent" if decoder is not None or not request.decode else "pt",
        callback=keep_latents,
        callback_steps=1,
        **{duration_argument: request.duration_s},
        **dict(request.options),
    )
    latents = final["latents"]
    if not request.decode:
        return GenerationOutput(latents, None, sample_rate)
    if decoder is None:
        return GenerationOutput(latents, out.audios, sample_rate)
    with torch.no_grad():
        audio = decoder(latents, request)
    return GenerationOutput(latents, audio, sample_rate)
