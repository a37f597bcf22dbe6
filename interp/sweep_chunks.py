"""The batched execution of a patching sweep (:func:`interp.patching.sweep`).

A sweep is cut into :class:`ChunkTask` work items, one chunk of variants for one
(pair, seed) unit each. The first chunk of a unit runs the unit's baseline (the clean
and corrupted runs in one batch, reading the sites the variants patch); the following
chunks of that unit reuse it (:data:`_BASELINES`). Every chunk is one batched generation
of the target prompt: an unpatched control row, then one row per variant, all with the
unit's seed, resumed from the target run's latents when the chunk starts at a later step.
"""

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal

import torch
from torch import Tensor

from interp.adapter import GenerationOutput, GenerationRequest, ModelAdapter
from interp.batching import run_halving
from interp.edits import Edit, Read, Replace, Zero
from interp.metrics import Metric, MetricContext
from interp.patch_variants import Variant, cached_value
from interp.prompts import PromptPair
from interp.runner import RunResult, run
from interp.selection import Branch, Steps

Direction = Literal["denoising", "noising", "ablation"]


def baseline_request(
    base: GenerationRequest, pair: PromptPair, seed: int, starts: tuple[int, ...]
) -> GenerationRequest:
    """The clean and corrupted runs of one (pair, seed) unit, in one batch, keeping the
    latents at the steps where patched chunks resume."""
    both = replace(base, prompts=(pair.clean, pair.corrupted), seeds=(seed, seed))
    return replace(both, keep_latents_at=starts)


def variants_request(
    base: GenerationRequest, prompt: str, seed: int, n: int, start: int, start_latents: Tensor | None
) -> GenerationRequest:
    """One chunk: an unpatched control row and ``n - 1`` variants, resumed at ``start``."""
    request = replace(base, prompts=(prompt,) * n, seeds=(seed,) * n)
    if start and start_latents is not None:
        request = replace(request, start_step=start, start_latents=start_latents)
    return request


def select_sample(output: GenerationOutput, index: int) -> GenerationOutput:
    """One sample of a batched GenerationOutput, keeping the batch axis."""
    audio = None if output.audio is None else output.audio[index : index + 1]
    return GenerationOutput(output.latents[index : index + 1], audio, output.sample_rate)


@dataclass(frozen=True)
class SweepPlan:
    """What every chunk of one sweep shares."""

    base: GenerationRequest
    metric: Metric
    direction: Direction
    steps: Steps
    branch: Branch
    ablation: str
    mean_activations: dict[str, Tensor] | None
    needed: tuple[str, ...]
    rows_per_sample: int
    starts: tuple[int, ...]  # the steps (> 0) where some chunk resumes from the target run
    resolved: tuple[int, ...]  # every step some variant is patched at

    @cached_property
    def key(self) -> str:
        from interp.experiments.units import fingerprint

        means = (
            None
            if self.mean_activations is None
            else {
                k: hashlib.sha256(v.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
                for k, v in sorted(self.mean_activations.items())
            }
        )
        return fingerprint(
            repr(self.base),
            self.metric.name,
            type(self.metric).__qualname__,
            repr(getattr(self.metric, "bound", ())),
            self.direction,
            str(self.steps),
            self.branch.value,
            self.ablation,
            means,
            self.needed,
            self.starts,
            self.resolved,
        )


#: The baseline run of the latest (pair, seed) unit in this process, which the following
#: chunks of that unit reuse (held like the loop that ran them one after the other).
_BASELINES: "OrderedDict[tuple, tuple]" = OrderedDict()
_BASELINES_KEPT = 1


def forget_baselines() -> None:
    """Drop the held baseline run (its reads are not needed after the sweep)."""
    _BASELINES.clear()


@dataclass(frozen=True)
class ChunkTask:
    """One work item of a sweep: a chunk of variants for one (pair, seed) unit."""

    plan: SweepPlan
    pair_index: int
    pair: PromptPair
    seed: int
    chunk: tuple[Variant, ...]
    start: int = 0  # the step the chunk's rows resume at (0: from the noise)

    def key(self) -> str:
        from interp.experiments.units import fingerprint

        return fingerprint(
            self.plan.key,
            self.pair_index,
            repr(self.pair),
            self.seed,
            # token selections and own steps only when given: plain variants keep short keys
            [
                (
                    v.label,
                    [s.name for s in v.sites],
                    *(() if v.tokens is None else (v.tokens,)),
                    *(() if v.steps is None else (("steps", v.steps),)),
                )
                for v in self.chunk
            ],
            self.start,
        )

    def affinity(self) -> str:
        """Chunks of the same sweep, pair and seed share a baseline run: executors with
        several workers send them to the same one (see :data:`_BASELINES`)."""
        return f"{self.plan.key}/{self.pair_index}/{self.seed}"

    def _baseline(self, adapter: ModelAdapter) -> tuple:
        plan, pair, seed = self.plan, self.pair, self.seed
        key = (id(adapter), plan.key, repr(pair), seed)
        if key in _BASELINES:
            _BASELINES.move_to_end(key)
            return _BASELINES[key]
        reads = [Read(name, steps=plan.resolved, branch=plan.branch) for name in plan.needed]
        baseline = run(
            adapter,
            baseline_request(plan.base, pair, seed, plan.starts),
            reads=reads if plan.resolved else [],
        )
        ref = MetricContext.for_pair(
            select_sample(baseline.output, 0), select_sample(baseline.output, 1), pair, adapter=adapter
        )
        source = 0 if plan.direction == "denoising" else 1
        assert ref.corrupted is not None  # for_pair sets both runs
        with torch.no_grad():
            m_source = float(
                plan.metric(
                    select_sample(baseline.output, source) if plan.direction != "ablation" else ref.corrupted,
                    ref,
                )[0]
            )
        _BASELINES[key] = (baseline, ref, m_source)
        while len(_BASELINES) > _BASELINES_KEPT:
            _BASELINES.popitem(last=False)
        return _BASELINES[key]

    def __call__(self, adapter: ModelAdapter) -> list[dict]:
        baseline, ref, m_source = self._baseline(adapter)

        def rows(variants: Sequence[Variant]) -> list[dict]:
            return self._rows(adapter, tuple(variants), baseline, ref, m_source)

        parts = run_halving(self.chunk, rows, kind=f"sweep {self.plan.key}", what="variants")
        return [row for part in parts for row in part]

    def _rows(
        self, adapter: ModelAdapter, chunk: tuple[Variant, ...], baseline: "RunResult", ref: MetricContext,
        m_source: float,
    ) -> list[dict]:  # fmt: skip
        """The rows of ``chunk``'s variants, from one batched generation with a control row."""
        plan, pair, seed, direction = self.plan, self.pair, self.seed, self.plan.direction
        source = 0 if direction == "denoising" else 1
        target = 1 - source if direction != "ablation" else 0
        target_prompt = (pair.clean, pair.corrupted)[target]
        resolved, rows_per_sample = plan.resolved, plan.rows_per_sample
        # row 0 is an unpatched control: the target run computed in the same batch
        # shape as its variants, so a site without effect reads exactly zero.
        edits = []
        for i, variant in enumerate(chunk, start=1):
            steps = plan.steps if variant.steps is None else variant.steps
            if variant.steps == ():
                continue  # patched at no step: the row is the target run
            for site in variant.sites:
                if direction == "ablation" and plan.ablation == "zero":
                    op = Zero()
                elif direction == "ablation":
                    assert plan.mean_activations is not None  # sweep() refuses mean ablation without them
                    op = Replace(cached_value(plan.mean_activations, resolved, site, 0, rows_per_sample, 1))
                else:
                    op = variant.replace(
                        cached_value(baseline.reads, resolved, site, source, rows_per_sample, 2)
                    )
                edits.append(Edit(site, op, steps=steps, branch=plan.branch, samples=(i,)))
        n = len(chunk) + 1
        latents = None
        if self.start:
            resume_from = baseline.output.step_latents[self.start][target : target + 1]
            latents = resume_from.expand(n, *resume_from.shape[1:]).clone()
        request = variants_request(plan.base, target_prompt, seed, n, self.start, latents)
        output = run(adapter, request, edits=edits).output
        with torch.no_grad():
            values = plan.metric(output, ref)
        m_target = float(values[0])
        m_clean, m_corrupted = (m_source, m_target) if direction == "denoising" else (m_target, m_source)
        return [
            {
                "concept": pair.concept,
                "pair": self.pair_index,
                "seed": seed,
                "variant": variant.label,
                "value": float(values[i]),
                "clean": m_clean,
                "corrupted": m_corrupted,
            }
            for i, variant in enumerate(chunk, start=1)
        ]
