"""The shared pipeline call: latents-only requests skip the decoder, latents unchanged."""

from dataclasses import replace

import pytest
import torch

from interp.adapter import GenerationRequest


def tiny(family: str):
    if family == "stable-audio":
        from models.stable_audio import StableAudioAdapter
        from models.tiny.stable_audio import tiny_stable_audio

        return StableAudioAdapter("tiny", tiny_stable_audio())
    from models.audioldm2 import AudioLDM2Adapter
    from models.tiny.audioldm2 import tiny_audioldm2

    return AudioLDM2Adapter("tiny", tiny_audioldm2())


@pytest.mark.parametrize("family", ["stable-audio", "audioldm2"])
def test_latents_only_requests_skip_decoding(family):
    adapter = tiny(family)
    request = GenerationRequest(
        prompts=("a sad violin song",),
        seeds=(0,),
        num_steps=2,
        guidance_scale=3.0,
        duration_s=4.0 if family == "stable-audio" else None,
    )
    calls: list[int] = []
    hook = adapter.pipeline.vae.decoder.register_forward_hook(lambda m, a, o: calls.append(1))
    try:
        decoded = adapter.generate(request)
        decoder_calls = len(calls)
        latents_only = adapter.generate(replace(request, decode=False))
    finally:
        hook.remove()
    assert decoder_calls >= 1 and len(calls) == decoder_calls, "the decoder must not run for latents only"
    assert decoded.audio is not None and latents_only.audio is None
    assert torch.equal(decoded.latents, latents_only.latents)
