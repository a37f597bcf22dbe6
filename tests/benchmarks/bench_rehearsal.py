"""A full-size rehearsal: build, save, load and run one head edit on a real pipeline.

Run on demand (not collected by pytest; several GB of memory and minutes on a CPU)::

    python tests/benchmarks/bench_rehearsal.py stable-audio-open-1.0 /tmp/sao --steps 1

Writes the model's pipeline at full size with random weights (``tada rehearse``), loads
it through :func:`interp.load_model`, then runs one generation plain and one with a
head zeroed at one cross-attention layer (reading that layer's heads), without
decoding. Prints the parameter count, the directory size, the time of each phase, the
peak resident memory, and whether the edit changed the latents.
"""

import argparse
import resource
import shutil
import time
from pathlib import Path

import torch

import interp
from models.rehearse import rehearse


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("directory")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--layer", type=int, default=None, help="cross-attention layer (default: the middle)")
    parser.add_argument("--reuse", action="store_true", help="skip the build when the directory exists")
    args = parser.parse_args()
    torch.set_num_threads(2)
    directory = Path(args.directory)
    start = time.perf_counter()
    if not (args.reuse and (directory / "model_index.json").is_file()):
        built = rehearse(args.model, directory)
        for c in built:
            print(f"  {c.name:18s} {c.class_name:34s} {c.parameters / 1e6:9.1f}M  {c.seconds:6.1f}s")
        print(f"parameters: {sum(c.parameters for c in built) / 1e9:.3f}B")
    size = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    print(
        f"rehearse: {time.perf_counter() - start:.1f}s, directory {size / 1e9:.2f} GB, peak RSS {_peak_gb():.1f} GB"
    )

    start = time.perf_counter()
    model = interp.load_model(str(directory))
    print(f"load: {time.perf_counter() - start:.1f}s, peak RSS {_peak_gb():.1f} GB")
    layers = model.catalog.count("cross")
    layer = layers // 2 if args.layer is None else args.layer
    request = model.default_request(["a sad violin piece"], [0])
    request = interp.GenerationRequest(
        prompts=request.prompts,
        seeds=request.seeds,
        num_steps=args.steps,
        guidance_scale=request.guidance_scale,
        negative_prompt=request.negative_prompt,
        duration_s=args.duration if request.duration_s is not None else None,
        decode=False,
    )
    start = time.perf_counter()
    plain = interp.run(model, request)
    print(
        f"plain generation ({args.steps} steps, no decode): {time.perf_counter() - start:.1f}s, "
        f"peak RSS {_peak_gb():.1f} GB"
    )
    start = time.perf_counter()
    edited = interp.run(
        model,
        request,
        edits=[interp.Edit(f"cross.{layer}.head.0", interp.Zero(), branch="cond")],
        reads=[interp.Read(f"cross.{layer}.heads", branch="cond")],
    )
    heads = edited.reads[f"cross.{layer}.heads"]
    print(
        f"head edit cross.{layer}.head.0 + read cross.{layer}.heads {tuple(heads.shape)}: "
        f"{time.perf_counter() - start:.1f}s, peak RSS {_peak_gb():.1f} GB"
    )
    zeroed = bool((heads[..., 0, :] == 0).all())
    changed = float((edited.output.latents - plain.output.latents).abs().max())
    print(f"edited head reads zero: {zeroed}; max latent change from the edit: {changed:.3g}")
    if not args.reuse:
        shutil.rmtree(directory)


if __name__ == "__main__":
    main()
