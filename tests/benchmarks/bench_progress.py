"""Cost of progress reporting: a generation with an active reporter and its terminal
display vs the same generation with none.

Run on demand (not collected by pytest)::

    python tests/benchmarks/bench_progress.py [--steps 20] [--repeats 3]

Model: a Stable Audio DiT of ~30M parameters (real diffusers classes, random weights).
Prints wall times, their ratio (goal <= 1.01), the number of step events (must equal the
steps) and the longest time between two redraws of the display (goal: under 30 s; the
display's timer redraws every 10 s even when a step takes longer).
"""

import argparse
import io
import statistics
import time

import torch

from interp.adapter import GenerationRequest
from interp.progress import Progress, reporting
from interp.progress_display import ProgressDisplay
from interp.runner import run
from models.stable_audio import StableAudioAdapter
from models.tiny.stable_audio import tiny_stable_audio


class _Timed(io.StringIO):
    """A stream that records when the display writes to it."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def write(self, text: str) -> int:
        self.times.append(time.perf_counter())
        return super().write(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    adapter = StableAudioAdapter("bench", tiny_stable_audio(num_layers=8, width=512, heads=8, kv_heads=4))
    request = GenerationRequest(prompts=("a sad violin song", "a fast drum track"), seeds=(0, 1),
                                num_steps=args.steps, guidance_scale=3.0, duration_s=4.0)  # fmt: skip
    events = []

    def plain() -> None:
        run(adapter, request)

    def reported() -> None:
        stream = _Timed()
        display = ProgressDisplay("bench", file=stream)
        with reporting(Progress(display, events.append)):
            run(adapter, request)
        display.close()
        gaps.extend(b - a for a, b in zip(stream.times, stream.times[1:]))

    gaps: list[float] = []
    plain()  # warm up
    times = {"plain": [], "reported": []}
    for _ in range(args.repeats):
        for name, fn in (("plain", plain), ("reported", reported)):
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    a, b = statistics.median(times["plain"]), statistics.median(times["reported"])
    steps = sum(e.kind == "step" for e in events) / args.repeats
    print(f"plain {a:.3f} s, reported {b:.3f} s, ratio {b / a:.3f}; step events per run {steps:.0f} "
          f"(steps {args.steps}); longest gap between redraws {max(gaps):.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
