"""Memory-aware decoding of Stable Audio latents: receptive field, cropped vs full, batch.

Run on demand (not collected by pytest)::

    python tests/benchmarks/bench_decode.py --quick          # narrow decoder, seconds
    python tests/benchmarks/bench_decode.py                   # full-size Oobleck, minutes
    python tests/benchmarks/bench_decode.py --batch 9         # + 9 latents at 47.55 s
    python tests/benchmarks/bench_decode.py --batch 9 --no-field --only-batch   # just those

The decoder is the full-size Oobleck VAE of Stable Audio Open 1.0 built from
``models/configs/stable-audio-open-1.0/vae.json`` with random weights (``--quick``:
the same strides, 8 channels instead of 128, so the same receptive field in frames).
Three measurements (the decodes each in a fresh process, for clean peaks):

1. **Receptive field**: decode 64 random latent frames, add 1 to frame 32, and report
   how many frames either side the output changed (the margin must exceed it).
2. **Cropped vs full**: decode all 1024 frames (47.55 s) and only the frames that
   ``--duration`` seconds need plus the margin (as :func:`models.pipeline_call.
   stable_audio_decoder` does); print the largest difference over the kept samples,
   the time and the peak memory of each.
3. ``--batch N``: decode N latents of 47.55 s through the adapter's decoder
   (one sample at a time, :func:`models.decoding.decode_per_sample`) and print the
   peak resident memory of the process; before, the pipeline decoded the N at once.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from diffusers.models.autoencoders.autoencoder_oobleck import AutoencoderOobleck

from interp.adapter import GenerationRequest
from interp.memory import PeakMeter, process_peak_bytes
from models.decoding import OOBLECK_MARGIN_FRAMES, frames_to_decode
from models.pipeline_call import stable_audio_decoder

CONFIG = Path(__file__).resolve().parents[2] / "models" / "configs" / "stable-audio-open-1.0" / "vae.json"


def build(quick: bool) -> Any:
    config = {k: v for k, v in json.loads(CONFIG.read_text()).items() if not k.startswith("_")}
    if quick:
        config.update(encoder_hidden_size=8, decoder_channels=8)
    torch.manual_seed(0)
    return AutoencoderOobleck(**config).eval()


def receptive_field(vae: Any, frames: int = 64) -> float:
    hop = vae.hop_length
    z = torch.randn(1, vae.config.decoder_input_channels, frames)
    moved = z.clone()
    moved[..., frames // 2] += 1.0
    with torch.no_grad():
        changed = (vae.decode(z).sample - vae.decode(moved).sample).abs().amax(dim=(0, 1)).nonzero().flatten()
    left = frames // 2 - int(changed.min()) / hop
    right = (int(changed.max()) + 1) / hop - (frames // 2 + 1)
    print(f"receptive field: one latent frame changes the output {left:.2f} frames before it and "
          f"{right:.2f} frames after it; margin used: {OOBLECK_MARGIN_FRAMES} frames")  # fmt: skip
    return max(left, right)


def timed(decode, z: torch.Tensor) -> tuple[torch.Tensor, float, int]:
    with PeakMeter("cpu") as meter, torch.no_grad():
        start = time.perf_counter()
        audio = decode(z)
        seconds = time.perf_counter() - start
    return audio, seconds, meter.peak_bytes


def measure(args: argparse.Namespace) -> None:
    """One decode in this fresh process (``--measure full|crop|batch``): its time and
    peak growth as JSON, its audio in ``--save``. A fresh process, so that memory an
    earlier decode left with the allocator cannot hide this one's peak."""
    vae = build(args.quick)
    rate, hop = int(vae.config.sampling_rate), vae.hop_length
    generator = torch.Generator().manual_seed(1)
    n = args.batch if args.measure == "batch" else 1
    z = torch.randn(n, vae.config.decoder_input_channels, args.frames, generator=generator)
    end = int(args.duration * rate)
    kept = frames_to_decode(args.duration, args.frames, hop, rate, OOBLECK_MARGIN_FRAMES)
    if args.measure == "full":
        audio, seconds, peak = timed(lambda x: vae.decode(x).sample[..., :end], z)
    elif args.measure == "crop":
        audio, seconds, peak = timed(lambda x: vae.decode(x[..., :kept]).sample[..., :end], z)
    else:
        decoder = stable_audio_decoder(SimpleNamespace(vae=vae))
        request = GenerationRequest(prompts=("x",) * n, seeds=tuple(range(n)), duration_s=None)
        audio, seconds, peak = timed(lambda x: decoder(x, request), z)
    torch.save(audio, args.save)
    print(json.dumps({"seconds": seconds, "peak": peak, "process_peak": process_peak_bytes(), "kept": kept,
                      "shape": list(audio.shape)}))  # fmt: skip


def child(args: argparse.Namespace, mode: str, save: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", mode, "--save", str(save), "--frames", str(args.frames),
               "--duration", str(args.duration), "--batch", str(args.batch), "--threads", str(args.threads)]  # fmt: skip
    if args.quick:
        command.append("--quick")
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def cropped_vs_full(args: argparse.Namespace, rate: int, hop: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        full = child(args, "full", Path(tmp) / "full.pt")
        crop = child(args, "crop", Path(tmp) / "crop.pt")
        a, b = torch.load(Path(tmp) / "full.pt"), torch.load(Path(tmp) / "crop.pt")
    error, scale = float((a - b).abs().max()), float(a.abs().max())
    t_full, t_crop, m_full, m_crop = full["seconds"], crop["seconds"], full["peak"], crop["peak"]
    print(
        f"{args.duration:g} s of {args.frames * hop / rate:.2f} s: decode {crop['kept']} of {args.frames} frames"
    )
    print(f"  full decode:    {t_full:7.1f} s, peak {m_full / 2**30:6.2f} GB")
    print(f"  cropped decode: {t_crop:7.1f} s, peak {m_crop / 2**30:6.2f} GB  "
          f"(time x{t_full / t_crop:.1f} less, memory x{m_full / max(m_crop, 1):.1f} less)")  # fmt: skip
    print(f"  max abs difference over the {a.shape[-1]} kept samples: {error:.3g} (output scale {scale:.3g})")


def batch(args: argparse.Namespace, rate: int, hop: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        got = child(args, "batch", Path(tmp) / "batch.pt")
    print(f"batch of {args.batch} at {args.frames * hop / rate:.2f} s: audio {tuple(got['shape'])} in "
          f"{got['seconds']:.1f} s; peak growth {got['peak'] / 2**30:.2f} GB; process peak RSS "
          f"{got['process_peak'] / 2**30:.2f} GB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8-channel decoder, 256 frames")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds kept by the cropped decode")
    parser.add_argument("--batch", type=int, default=0, help="also decode this many latents of full length")
    parser.add_argument(
        "--frames", type=int, default=0, help="latent frames (default 1024, 47.55 s; --quick 256)"
    )
    parser.add_argument("--no-field", action="store_true", help="skip the receptive-field measurement")
    parser.add_argument("--only-batch", action="store_true", help="skip the cropped-vs-full comparison")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--measure", choices=("full", "crop", "batch"), help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.frames = args.frames or (256 if args.quick else 1024)
    args.duration = min(args.duration, 2.0) if args.quick else args.duration
    if args.measure:
        measure(args)
        return
    vae = build(args.quick)
    print(f"Oobleck decoder: {sum(p.numel() for p in vae.decoder.parameters()) / 1e6:.1f}M parameters, "
          f"hop {vae.hop_length}, {vae.config.sampling_rate} Hz")  # fmt: skip
    if not args.no_field:
        receptive_field(vae)
    rate, hop = int(vae.config.sampling_rate), vae.hop_length
    del vae
    if not args.only_batch:
        cropped_vs_full(args, rate, hop)
    if args.batch:
        batch(args, rate, hop)


if __name__ == "__main__":
    main()
