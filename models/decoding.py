"""Memory-aware decoding of final latents to audio, shared by the diffusers adapters.

* **Never a batch that cannot fit.** :func:`decode_in_chunks` decodes the first sample
  alone while measuring its peak memory (:class:`interp.memory.PeakMeter`), then the
  others in chunks of as many samples as fit in the free memory
  (:func:`interp.batching.fitting_batch`); a chunk that still runs out of memory is
  halved (:func:`interp.batching.run_halving`). A full-size Stable Audio decode of 47 s
  takes about 11 GB per sample: a batch of 9 decoded at once would need about 55 GB.
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
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from interp.batching import chunks, fitting_batch, run_halving
from interp.memory import PeakMeter, available_bytes

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


def decode_in_chunks(decode: Callable[[Tensor], Tensor], latents: Tensor, kind: str) -> Tensor:
    """``decode(latents)`` computed a few samples at a time, as many as fit.

    Args:
        decode: Decodes a batch of latents (rows are independent).
        latents: The batch, samples first.
        kind: The kind of decode, for the halving it may learn (model and length).

    Returns:
        The decoded batch, rows in order.
    """
    rows = list(range(int(latents.shape[0])))

    def run(indices: Sequence[int]) -> Tensor:
        return decode(latents[indices[0] : indices[-1] + 1])

    with PeakMeter(latents.device) as meter:
        first = run_halving(rows[:1], run, kind, "samples to decode")
    rest = rows[1:]
    if not rest:
        return torch.cat(first)
    measured = meter.exact and meter.peak_bytes > 0
    size = fitting_batch(meter.peak_bytes, available_bytes(latents.device), cap=len(rest)) if measured else 1
    parts = [t for chunk in chunks(rest, size) for t in run_halving(chunk, run, kind, "samples to decode")]
    return torch.cat(first + parts)
