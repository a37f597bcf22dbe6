"""One call of a diffusers audio pipeline for a :class:`GenerationRequest`.

Stable Audio, AudioLDM and AudioLDM2 take the same arguments except the name of the
duration argument, and report the latents of each step through the same legacy
``callback``. This module makes that call once for all of them: per-row generators,
the negative prompt repeated per sample, the final latents captured, and decoding
skipped when the request asks for latents only. Each step is reported to
:mod:`interp.progress` from the same callback.
"""

from typing import Any

import torch

from interp.adapter import GenerationOutput, GenerationRequest
from interp.progress import denoising_step


def call_pipeline(
    pipeline: Any,
    request: GenerationRequest,
    device: torch.device,
    sample_rate: int,
    *,
    duration_argument: str,
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
        output_type="pt" if request.decode else "latent",
        callback=keep_latents,
        callback_steps=1,
        **{duration_argument: request.duration_s},
        **dict(request.options),
    )
    return GenerationOutput(final["latents"], out.audios if request.decode else None, sample_rate)
