"""Overhead of traced generation (nnsight runner) vs plain torch hooks doing the same work.

Run on demand (not collected by pytest)::

    python tests/benchmarks/bench_overhead.py [--steps 20] [--repeats 3]

Model: a Stable Audio DiT of ~30M parameters (real diffusers classes, random weights).
Work: read every cross-attention layer's heads and add a vector to one head of each,
at every step, on the conditional branch. Prints wall times and the ratio (goal <= 1.05).
"""

import argparse
import statistics
import time

import torch

from interp.adapter import GenerationRequest
from interp.edits import Add, Edit, Read
from interp.runner import run
from models.stable_audio import StableAudioAdapter
from models.tiny.stable_audio import tiny_stable_audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    pipe = tiny_stable_audio(num_layers=8, width=512, heads=8, kv_heads=4)
    adapter = StableAudioAdapter("bench", pipe)
    n_params = sum(p.numel() for p in pipe.transformer.parameters())
    request = GenerationRequest(
        prompts=("a sad violin song", "a fast drum track"),
        seeds=(0, 1),
        num_steps=args.steps,
        guidance_scale=3.0,
        duration_s=4.0,
    )
    cross = adapter.catalog.where(attention="cross", component="heads")
    d_head = adapter.catalog.module("cross", 0).d_head
    vector = torch.randn(d_head)
    edits = [Edit(f"cross.{s.layer}.head.0", Add(vector), branch="cond") for s in cross]
    reads = [Read(s, branch="cond") for s in cross]

    def traced() -> None:
        run(adapter, request, edits=edits, reads=reads)

    def hooked() -> None:
        store: list[torch.Tensor] = []
        handles = []
        for s in cross:
            module = adapter.catalog.module("cross", s.layer)
            proj = adapter.denoiser.get_submodule(module.out_proj)

            def hook(m, inputs, module=module):
                x = inputs[0].clone()
                view = x.view(*x.shape[:-1], module.n_heads, module.d_head)
                rows = torch.arange(view.shape[0] // 2, view.shape[0])
                view[rows, :, 0] = view[rows, :, 0] + vector
                store.append(view[rows].detach().clone())
                return (x,)

            handles.append(proj.register_forward_pre_hook(hook))
        try:
            adapter.generate(request)
        finally:
            for h in handles:
                h.remove()

    for fn in (traced, hooked):  # warm up
        fn()
    times = {"traced": [], "hooked": []}
    for _ in range(args.repeats):
        for name, fn in (("hooked", hooked), ("traced", traced)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    t_traced, t_hooked = (statistics.median(times[k]) for k in ("traced", "hooked"))
    print(
        f"model: StableAudioDiTModel, {n_params / 1e6:.1f}M parameters, {args.steps} steps, batch 2 (x2 CFG)"
    )
    print(f"work: read {len(reads)} layers' heads + add to {len(edits)} heads, every step")
    print(f"plain torch hooks: {t_hooked:.3f} s   nnsight runner: {t_traced:.3f} s")
    print(f"overhead ratio (runner / hooks): {t_traced / t_hooked:.3f}   (goal <= 1.05)")


if __name__ == "__main__":
    main()
