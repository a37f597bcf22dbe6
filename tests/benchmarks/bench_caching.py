"""Benchmark: activation caching vs plain generation (a script, not a test).

Prints caching throughput (vectors/s), the extra time caching costs over the same
generations run plainly (goal: <= 15%), and peak memory: each phase runs in a fresh
subprocess and reports its peak RSS, so the cache's memory bound can be compared with
the size of what it writes (the cache should write many times its budget while its peak
RSS stays near that of plain generation).

Run from the repository root::

    .venv/bin/python tests/benchmarks/bench_caching.py            # defaults
    .venv/bin/python tests/benchmarks/bench_caching.py --width 256 --batch-size 16 --budget-mb 8
    .venv/bin/python tests/benchmarks/bench_caching.py --model synthmusic-dit --steps 25
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _model(args):
    import torch

    torch.set_num_threads(args.threads)
    if args.model == "synthmusic-dit":
        from interp.registry import load_model

        return load_model("synthmusic-dit")
    from models.stable_audio import StableAudioAdapter
    from models.tiny.stable_audio import tiny_stable_audio

    pipe = tiny_stable_audio(
        num_layers=args.layers, width=args.width, heads=args.heads, kv_heads=args.heads // 2
    )
    return StableAudioAdapter("bench-stable-audio", pipe)


def _request(args, index: int):
    from interp.adapter import GenerationRequest

    words = ["sad", "happy", "fast", "slow", "jazz", "metal", "piano", "violin"]
    prompts = tuple(f"a {words[(index + i) % 8]} song with drums" for i in range(args.batch_size))
    duration = None if args.model == "synthmusic-dit" else args.duration  # SynthMusic clips are 2 s
    # caching decodes nothing, so the plain baseline generates latents only as well
    return GenerationRequest(
        prompts=prompts,
        seeds=tuple(range(args.batch_size)),
        num_steps=args.steps,
        guidance_scale=3.0,
        duration_s=duration,
        decode=False,
    )


def _sites(args) -> list[str]:
    if args.model == "synthmusic-dit":
        return ["cross.2.out", "cross.3.out", "cross.3.head.0"]
    layers = range(args.layers // 2 - 1, args.layers // 2 + 1)
    return [f"cross.{layer}.out" for layer in layers] + [f"cross.{args.layers // 2}.head.0"]


def phase(args) -> dict:
    """One measurement in this process: plain generation or caching."""
    from interp.runner import run

    model = _model(args)
    run(model, _request(args, 0))  # warm-up (first call pays lazy initialisation)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if args.phase == "plain":
        start = time.perf_counter()
        for index in range(args.batches):
            run(model, _request(args, index))
        return {
            "seconds": time.perf_counter() - start,
            "rss_before": rss_before,
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }
    from saes.cache import cache_activations

    base = _request(args, 0)
    prompts = [p for i in range(args.batches) for p in _request(args, i).prompts]
    out = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    try:
        start = time.perf_counter()
        cache = cache_activations(
            model,
            base,
            prompts,
            _sites(args),
            out,
            batch_size=args.batch_size,
            branch="cond",
            memory_budget_bytes=int(args.budget_mb * 2**20),
        )
        seconds = time.perf_counter() - start
        written = sum(p.stat().st_size for p in out.rglob("*.safetensors"))
        vectors = sum(cache.count(s) for s in cache.sites)
        return {
            "seconds": seconds,
            "vectors": vectors,
            "bytes_written": written,
            "memory_bound": cache.manifest["memory_bound_bytes"],
            "shards": sum(len(cache.shard_paths(s)) for s in cache.sites),
            "rss_before": rss_before,
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _spawn(args, name: str) -> dict:
    command = [sys.executable, __file__, "--phase", name]
    for key in (
        "model",
        "layers",
        "width",
        "heads",
        "duration",
        "steps",
        "batches",
        "batch_size",
        "budget_mb",
        "threads",
    ):
        command += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=["plain", "cache"], default=None)
    parser.add_argument(
        "--model",
        choices=["tiny-stable-audio", "synthmusic-dit"],
        default="tiny-stable-audio",
        help="tiny-stable-audio (sized by --layers/--width/--heads) or the default model",
    )
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--budget-mb", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.phase is not None:
        print(json.dumps(phase(args)))
        return
    plain, cache = [], []
    for _ in range(args.repeats):  # interleaved: the shared CPU's load drifts
        plain.append(_spawn(args, "plain"))
        cache.append(_spawn(args, "cache"))
    p = min(plain, key=lambda r: r["seconds"])
    c = min(cache, key=lambda r: r["seconds"])
    mib = 2**20
    shape = (
        "SynthMusic DiT (6 layers, width 128)"
        if args.model == "synthmusic-dit"
        else f"tiny Stable Audio, {args.layers} layers, width {args.width}, {args.heads} heads"
    )
    print(
        f"model: {shape}; "
        f"{args.batches} batches x {args.batch_size} prompts, {args.steps} steps, "
        f"{args.duration if args.model != 'synthmusic-dit' else 2:g} s; sites {_sites(args)}; {args.threads} thread(s); best of {args.repeats}"
    )
    print(f"plain generation : {p['seconds']:.2f} s")
    print(
        f"caching          : {c['seconds']:.2f} s, {c['vectors']} vectors, "
        f"{c['vectors'] / c['seconds']:.0f} vectors/s, {c['bytes_written'] / mib:.1f} MiB "
        f"in {c['shards']} shards"
    )
    print(
        f"time ratio       : {c['seconds'] / p['seconds']:.3f} (extra {100 * (c['seconds'] / p['seconds'] - 1):+.1f}%, goal <= +15%)"
    )
    print(
        f"memory bound     : {c['memory_bound'] / mib:.2f} MiB (budget {args.budget_mb:g} MiB); "
        f"written / bound = {c['bytes_written'] / c['memory_bound']:.1f}x"
    )
    print(
        f"peak RSS         : plain {p['peak_rss'] / mib:.0f} MiB, caching {c['peak_rss'] / mib:.0f} MiB "
        f"(ratio {c['peak_rss'] / p['peak_rss']:.3f}; growth during caching "
        f"{(c['peak_rss'] - c['rss_before']) / mib:.1f} MiB vs plain "
        f"{(p['peak_rss'] - p['rss_before']) / mib:.1f} MiB)"
    )


if __name__ == "__main__":
    main()
