"""Memory-aware decoding of final latents to audio, shared by the diffusers adapters.

* **Never a batch that cannot fit.** :func:`decode_per_sample` decodes one sample at a
  time. A full-size Stable Audio decode of 47 s takes about 11 GB per sample: a batch
  of 9 decoded at once would need about 55 GB. One at a time, a sample's audio never
  depends on the batch it came in (batched convolutions round differently), so the
  audio is the same bits whatever the batch and whatever memory is free; the decoder is
  a small part of a generation's time (one pass against 100 denoiser steps). A sample
  that does not fit alone raises :class:`interp.batching.OutOfMemory` with what to do.
* **Only the frames the duration needs.** Stable Audio's pipeline denoises all
  ``sample_size`` latent frames (47.55 s) and crops the decoded audio to the requested
  duration. Its Oobleck VAE is convolutional with a bounded receptive field, so
  :func:`frames_to_decode` keeps only the frames covering the requested audio plus
  :data:`OOBLECK_MARGIN_FRAMES` frames of context on the right; the kept audio then
  equals the full decode's up to float rounding (docs/full-size.md has the numbers,
  ``tests/benchmarks/bench_decode.py`` measures them).

The margin was measured, not guessed: adding 1 to one latent frame of the Oobleck
decoder (random weights, the strides of ``models/configs/stable-audio-open-1.0/vae.json``)
changes the output from 9.26 frames before that frame to 9.26 frames after it
(``tests/benchmarks/bench_decode.py`` prints it); the decoded audio at a frame thus
depends on the 10 frames either side, and a decode cut short is wrong over its last 10
frames (zero padding instead of the real neighbours). :data:`OOBLECK_MARGIN_FRAMES` = 16
frames (0.74 s of audio, 1.6% of a full 47.55 s decode) leaves 6 frames more; the kept
audio then differs from the full decode's by float rounding only (4.8e-7 at an output
scale of 0.4).
"""

import math
from collections.abc import Callable

import torch
from torch import Tensor

from interp.batching import run_halving

#: Latent frames decoded beyond the last one the requested audio needs (measured: the
#: decoder's output at a frame depends on 10 frames either side; see the module docstring).
OOBLECK_MARGIN_FRAMES = 16


def frames_to_decode(
    duration_s: float | None, total_frames: int, hop: int, sample_rate: int, margin: int
) -> int:
    """Latent frames to decode for ``duration_s`` of audio (all of them when ``None``)."""
    if duration_s is None:
        return total_frames
    needed = math.ceil(duration_s * sample_rate / hop)
    return min(total_frames, needed + margin)


def decode_per_sample(decode: Callable[[Tensor], Tensor], latents: Tensor) -> Tensor:
    """``decode(latents)`` computed one sample at a time.

    Args:
        decode: Decodes a batch of latents (rows are independent).
        latents: The batch, samples first.

    Returns:
        The decoded batch, rows in order.
    """
    parts = [
        part
        for i in range(int(latents.shape[0]))
        for part in run_halving(
            [i], lambda rows: decode(latents[rows[0] : rows[0] + 1]), "decode", "sample to decode"
        )
    ]
    return torch.cat(parts)
