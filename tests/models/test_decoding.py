"""Memory-aware decoding: one sample at a time, and Stable Audio decoding only the frames
the duration needs (models/decoding.py, models/pipeline_call.py)."""

from dataclasses import replace

import pytest
import torch
from diffusers.models.autoencoders.autoencoder_oobleck import AutoencoderOobleck

from interp.adapter import GenerationRequest
from interp.batching import forget_halvings
from models.decoding import OOBLECK_MARGIN_FRAMES, decode_per_sample, frames_to_decode


def test_frames_to_decode_counts_the_duration_plus_the_margin():
    # 10 s at 44.1 kHz with a hop of 2048: 441000 / 2048 = 215.3 -> 216 frames, + 16
    assert frames_to_decode(10.0, 1024, 2048, 44100, 16) == 232
    assert frames_to_decode(None, 1024, 2048, 44100, 16) == 1024
    assert frames_to_decode(47.0, 1024, 2048, 44100, 16) == 1024  # capped by the latents


@pytest.fixture(scope="module")
def narrow_oobleck():
    """Stable Audio Open's Oobleck strides and depth, 4 channels wide: its receptive field
    in latent frames is that of the full-size decoder."""
    torch.manual_seed(0)
    return AutoencoderOobleck(
        encoder_hidden_size=4, downsampling_ratios=[2, 4, 4, 8, 8], channel_multiples=[1, 2, 4, 8, 16],
        decoder_channels=4, decoder_input_channels=64, audio_channels=2, sampling_rate=44100,
    ).eval()  # fmt: skip


def test_one_latent_frame_reaches_fewer_frames_than_the_margin(narrow_oobleck):
    vae, frames = narrow_oobleck, 40
    z = torch.randn(1, 64, frames)
    moved = z.clone()
    moved[..., 20] += 1.0
    with torch.no_grad():
        changed = (vae.decode(z).sample - vae.decode(moved).sample).abs().amax(dim=(0, 1)).nonzero()
    reach = max(20 - int(changed.min()) / vae.hop_length, (int(changed.max()) + 1) / vae.hop_length - 21)
    assert 5 < reach < OOBLECK_MARGIN_FRAMES  # measured 9.26 frames


def test_the_cropped_decode_equals_the_full_decode_over_the_kept_audio(narrow_oobleck):
    vae, frames = narrow_oobleck, 48
    z = torch.randn(2, 64, frames)
    duration = 12 * vae.hop_length / 44100  # 12 frames of audio
    end = int(duration * 44100)
    kept = frames_to_decode(duration, frames, vae.hop_length, 44100, OOBLECK_MARGIN_FRAMES)
    assert kept == 28
    with torch.no_grad():
        full = vae.decode(z).sample[..., :end]
        cropped = vae.decode(z[..., :kept]).sample[..., :end]
        short = vae.decode(z[..., :13]).sample[..., :end]  # a margin of one frame is not enough
    assert cropped.shape == full.shape
    assert (cropped - full).abs().max() < 1e-5 * full.abs().max()
    assert (short - full).abs().max() > 1e-3 * full.abs().max()


def test_samples_are_decoded_one_at_a_time_and_one_that_does_not_fit_is_a_clear_error(narrow_oobleck):
    from interp.batching import OutOfMemory

    vae = narrow_oobleck
    z = torch.randn(3, 64, 6)
    seen = []

    def decode(x):
        seen.append(int(x.shape[0]))
        return vae.decode(x).sample

    with torch.no_grad():
        decoded = decode_per_sample(decode, z)
        rows = torch.cat([vae.decode(z[i : i + 1]).sample for i in range(3)])
    assert seen == [1, 1, 1]
    assert torch.equal(decoded, rows)  # a sample's audio never depends on its batch

    def too_big(x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 11.20 GiB")

    forget_halvings()
    with pytest.raises(OutOfMemory, match="batch of one .*11.20 GiB"):
        decode_per_sample(too_big, z)


@pytest.mark.parametrize("family", ["stable-audio", "audioldm2"])
def test_adapters_decode_as_their_pipeline_does(family):
    if family == "stable-audio":
        from models.stable_audio import StableAudioAdapter
        from models.tiny.stable_audio import tiny_stable_audio

        adapter, duration = StableAudioAdapter("tiny", tiny_stable_audio()), 4.0
    else:
        from models.audioldm2 import AudioLDM2Adapter
        from models.tiny.audioldm2 import tiny_audioldm2

        adapter, duration = AudioLDM2Adapter("tiny", tiny_audioldm2()), None
    request = GenerationRequest(prompts=("a sad violin song", "fast drums"), seeds=(0, 1), num_steps=2,
                                guidance_scale=3.0, duration_s=duration)  # fmt: skip
    ours = adapter.generate(request)
    kwargs = {"audio_end_in_s": duration} if family == "stable-audio" else {"audio_length_in_s": duration}
    theirs = adapter.pipeline(
        prompt=list(request.prompts), num_inference_steps=2, guidance_scale=3.0,
        generator=request.generators(), output_type="pt", **kwargs,
    ).audios  # fmt: skip
    assert ours.audio is not None
    assert torch.equal(ours.latents, adapter.generate(replace(request, decode=False)).latents)
    assert ours.audio.shape == theirs.shape
    torch.testing.assert_close(ours.audio, torch.as_tensor(theirs), rtol=1e-5, atol=1e-6)
