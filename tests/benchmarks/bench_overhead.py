"""Overhead of traced generation (nnsight runner) vs plain torch hooks doing the same work.

Run on demand (not collected by pytest)::

    python tests/benchmarks/bench_overhead.py [--steps 20] [--repeats 3]
    python tests/benchmarks/bench_overhead.py --full-size [--steps 2] [--repeats 3]

Default model: a Stable Audio DiT of ~30M parameters (real diffusers classes, random
weights). Work: read every cross-attention layer's heads and add a vector to one head of
each, at every step, on the conditional branch (goal <= 1.05).

``--full-size``: the real Stable Audio Open 1.0 pipeline built in memory from the shipped
rehearsal configs (DiT 1057M, random weights, not saved), one prompt (CFG batch 2), the
pipeline's 1024 latent frames, no decoding. Work: add a vector to ``cross.12.head.0``
and read ``cross.12.heads`` (the paper's layer) on the conditional branch at every step
(goal <= 1.03). Both modes check that the runner and the hooks give equal latents and
reads (bit for bit), so the ratio compares equal work; they time the two paths
interleaved (hooks, runner, hooks, ...) so load drift cancels, and print the peak
resident memory seen during each path's timed calls.
"""

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from interp.adapter import GenerationRequest
from interp.edits import Add, Edit, Read
from interp.runner import run
from models.stable_audio import StableAudioAdapter


@dataclass
class Workload:
    """One benchmark's model, request and work, with its plain-hook twin."""

    adapter: StableAudioAdapter
    request: GenerationRequest
    edits: list[Edit]
    reads: list[Read]
    layers: list[int]
    head: int
    vector: torch.Tensor
    goal: float


def _tiny(steps: int) -> Workload:
    from models.tiny.stable_audio import tiny_stable_audio

    torch.manual_seed(0)
    adapter = StableAudioAdapter("bench", tiny_stable_audio(num_layers=8, width=512, heads=8, kv_heads=4))
    request = GenerationRequest(
        prompts=("a sad violin song", "a fast drum track"),
        seeds=(0, 1),
        num_steps=steps,
        guidance_scale=3.0,
        duration_s=4.0,
    )
    layers = [s.layer for s in adapter.catalog.where(attention="cross", component="heads")]
    return _workload(adapter, request, layers, goal=1.05)


def _full_size(steps: int) -> Workload:
    from diffusers import StableAudioPipeline  # pyright: ignore[reportPrivateImportUsage]  # diffusers exports lazily

    from models.rehearse import rehearsal_components

    components = dict(rehearsal_components("stable-audio-open-1.0", device="cpu"))
    pipe = StableAudioPipeline(**components)
    adapter = StableAudioAdapter("stable-audio-open-1.0 (random weights)", pipe)
    request = GenerationRequest(
        prompts=("a sad violin song",),
        seeds=(0,),
        num_steps=steps,
        guidance_scale=7.0,
        duration_s=9.0,
        negative_prompt="Low quality, average quality.",
        decode=False,
    )
    return _workload(adapter, request, [12], goal=1.03)


def _workload(
    adapter: StableAudioAdapter, request: GenerationRequest, layers: list[int], goal: float
) -> Workload:
    d_head = adapter.catalog.module("cross", layers[0]).d_head
    vector = torch.randn(d_head, generator=torch.Generator().manual_seed(1))
    edits = [Edit(f"cross.{layer}.head.0", Add(vector), branch="cond") for layer in layers]
    reads = [Read(f"cross.{layer}.heads", branch="cond") for layer in layers]
    return Workload(adapter, request, edits, reads, layers, 0, vector, goal)


def traced(w: Workload) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The framework's path: one :func:`interp.runner.run` with the edits and reads."""
    result = run(w.adapter, w.request, edits=w.edits, reads=w.reads)
    return result.output.latents, [torch.as_tensor(result.reads[str(r.site)]) for r in w.reads]


def hooked(w: Workload) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The same edits and reads by plain forward pre-hooks on each layer's output projection."""
    stores: list[list[torch.Tensor]] = [[] for _ in w.layers]
    handles = []
    for layer, store in zip(w.layers, stores):
        module = w.adapter.catalog.module("cross", layer)
        proj = w.adapter.denoiser.get_submodule(module.out_proj)

        def hook(m, inputs, module=module, store=store):
            x = inputs[0].clone()
            view = x.view(*x.shape[:-1], module.n_heads, module.d_head)
            rows = torch.arange(view.shape[0] // 2, view.shape[0])  # CFG: [uncond, cond]
            view[rows, :, w.head] = view[rows, :, w.head] + w.vector.to(view.dtype)
            store.append(view[rows].detach().clone())
            return (x,)

        handles.append(proj.register_forward_pre_hook(hook))
    try:
        output = w.adapter.generate(w.request)
    finally:
        for h in handles:
            h.remove()
    return output.latents, [torch.stack(store) for store in stores]


class PeakRss:
    """Largest resident set size of this process seen while the block runs (sampled)."""

    def __init__(self, interval_s: float = 0.05):
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()

    @staticmethod
    def current_bytes() -> int:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self.current_bytes())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "PeakRss":
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self.current_bytes())


def check_equal(w: Workload) -> None:
    """The ground truth: both paths give the same latents and reads, bit for bit."""
    latents_t, reads_t = traced(w)
    latents_h, reads_h = hooked(w)
    plain = w.adapter.generate(w.request).latents
    assert not torch.equal(latents_t, plain), "the edit changed nothing: the benchmark compares no work"
    for name, a, b in [
        ("latents", latents_t, latents_h),
        *(("read", x, y) for x, y in zip(reads_t, reads_h)),
    ]:
        assert a.shape == b.shape, f"{name}: runner {tuple(a.shape)} vs hooks {tuple(b.shape)}"
        assert torch.equal(a, b), f"{name}: runner and hooks differ by {(a - b).abs().max().item():.3g}"
    print(
        f"equal work: runner == hooks bit for bit (latents {tuple(latents_t.shape)}, "
        f"reads {[tuple(r.shape) for r in reads_t]}); the edit moved the latents by "
        f"max {(latents_t - plain).abs().max().item():.3g}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--full-size", action="store_true", help="the real-size Stable Audio Open DiT")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default 20; 2 full size)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or (2 if args.full_size else 20)
    start = time.perf_counter()
    w = _full_size(steps) if args.full_size else _tiny(steps)
    n_params = sum(p.numel() for p in w.adapter.denoiser.parameters())
    print(f"built in {time.perf_counter() - start:.1f}s; RSS {PeakRss.current_bytes() / 1e9:.2f} GB")
    check_equal(w)  # also the warm-up of both paths

    paths: dict[str, Callable[[Workload], object]] = {"hooked": hooked, "traced": traced}
    times: dict[str, list[float]] = {name: [] for name in paths}
    peaks = {name: 0 for name in paths}
    for _ in range(args.repeats):
        for name, fn in paths.items():
            with PeakRss() as peak:
                t0 = time.perf_counter()
                fn(w)
                times[name].append(time.perf_counter() - t0)
            peaks[name] = max(peaks[name], peak.peak_bytes)
    t_traced, t_hooked = (statistics.median(times[k]) for k in ("traced", "hooked"))
    batch = len(w.request.prompts)
    print(
        f"model: StableAudioDiTModel, {n_params / 1e6:.1f}M parameters, {steps} steps, "
        f"batch {batch} (x2 CFG), {w.adapter.denoiser.config['sample_size']} latent frames, threads {torch.get_num_threads()}"
    )
    print(f"work: read {len(w.reads)} layers' heads + add to {len(w.edits)} heads, every step, cond branch")
    print(
        f"times (s): hooks {[round(t, 2) for t in times['hooked']]}  runner {[round(t, 2) for t in times['traced']]}"
    )
    print(
        f"plain torch hooks: {t_hooked:.3f} s   nnsight runner: {t_traced:.3f} s   (medians of {args.repeats})"
    )
    print(f"peak RSS: hooks {peaks['hooked'] / 1e9:.2f} GB   runner {peaks['traced'] / 1e9:.2f} GB")
    print(f"overhead ratio (runner / hooks): {t_traced / t_hooked:.3f}   (goal <= {w.goal:.2f})")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
