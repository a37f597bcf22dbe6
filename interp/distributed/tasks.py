"""Work items that are not sweep chunks: one traced generation.

A generation that runs out of memory is split into halves of its samples and retried
(:func:`interp.batching.run_halving`) when its samples are independent of each other's
positions: no edit or read picks samples by index and no read reduces its rows. The
halves' outputs and reads are joined back in the original row order.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from interp.adapter import GenerationOutput, GenerationRequest
from interp.edits import Edit, Read
from interp.runner import RunResult


def to_cpu(value: Any) -> Any:
    """``value`` with every tensor it holds (in results, outputs, dicts, lists) on the CPU."""
    from torch import Tensor

    if isinstance(value, Tensor):
        return value.detach().cpu()
    if isinstance(value, RunResult):
        return RunResult(to_cpu(value.output), to_cpu(value.reads), dict(value.read_steps))
    if isinstance(value, GenerationOutput):
        fields = {k: to_cpu(v) for k, v in vars(value).items()}
        return GenerationOutput(**fields)
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(v) for v in value)
    return value


@dataclass(frozen=True)
class GenerationTask:
    """One :func:`interp.runner.run` call (Ray workers send its result back on the CPU)."""

    request: GenerationRequest
    edits: Sequence[Edit] = ()
    reads: Sequence[Read] = ()

    def key(self) -> None:
        return None  # generations are resumed per unit, not per item

    def __call__(self, adapter: Any) -> RunResult:
        from interp.batching import run_halving
        from interp.runner import run

        if not self.splittable:
            return run(adapter, self.request, list(self.edits), list(self.reads))

        def samples(indices: Sequence[int]) -> RunResult:
            part = _sub_request(self.request, indices[0], indices[-1] + 1)
            return run(adapter, part, list(self.edits), list(self.reads))

        results = run_halving(
            range(self.request.batch_size), samples, kind=self._kind(adapter), what="samples"
        )
        return results[0] if len(results) == 1 else _join(results)

    def _kind(self, adapter: Any) -> str:
        r = self.request
        return (
            f"generation {id(adapter)} {r.num_steps} {r.duration_s} {r.guided} {r.decode} {len(self.reads)}"
        )

    @property
    def splittable(self) -> bool:
        """Whether the samples can run in separate batches and be joined back."""
        items = [*self.edits, *self.reads]
        return all(i.samples is None for i in items) and all(r.reduce is None for r in self.reads)


def _sub_request(request: GenerationRequest, start: int, stop: int) -> GenerationRequest:
    """Samples ``start:stop`` of ``request``."""
    latents = request.start_latents
    return replace(
        request,
        prompts=request.prompts[start:stop],
        seeds=request.seeds[start:stop],
        start_latents=None if latents is None else latents[start:stop],
    )


def _join_rows(parts: list[torch.Tensor], sizes: list[int], axis: int) -> torch.Tensor:
    """Concatenate tensors whose ``axis`` holds ``blocks x samples`` rows, block-major
    (the CFG layout: uncond samples, then cond samples), keeping that layout."""
    blocks = parts[0].shape[axis] // sizes[0]
    split = [p.unflatten(axis, (blocks, size)) for p, size in zip(parts, sizes, strict=True)]
    return torch.cat(split, dim=axis + 1).flatten(axis, axis + 1)


def _join(results: list[RunResult]) -> RunResult:
    """One result from the results of consecutive sample ranges."""
    sizes = [int(r.output.latents.shape[0]) for r in results]
    outputs = [r.output for r in results]
    first = outputs[0]
    audio = None if first.audio is None else torch.cat([o.audio for o in outputs])  # type: ignore[misc]
    steps = {k: torch.cat([o.step_latents[k] for o in outputs]) for k in first.step_latents}
    output = GenerationOutput(torch.cat([o.latents for o in outputs]), audio, first.sample_rate, steps)
    reads = {k: _join_rows([r.reads[k] for r in results], sizes, axis=1) for k in results[0].reads}
    return RunResult(output, reads, dict(results[0].read_steps))
