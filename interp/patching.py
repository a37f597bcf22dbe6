"""Activation patching and ablation sweeps, batched over variants.

For each (prompt pair, seed) unit, the source run's activations are cached once, then
every *variant* (a set of sites patched together) is run as one row of a batched
generation: ``batch_size`` variants share one forward pass, and every row gets the same
seed, so all rows start from the same noise and see the same scheduler noise.

* ``denoising`` patches clean activations into the corrupted run: is this site enough
  to restore the concept? effect = (m_patched - m_corrupted) / (m_clean - m_corrupted).
* ``noising`` patches corrupted activations into the clean run: is it necessary?
  effect = (m_clean - m_patched) / (m_clean - m_corrupted).
* ablation zeroes (or mean-replaces) the sites in the clean run; effect as for noising.

When the intervention starts at a later step ``k`` and the adapter can resume a
generation (:attr:`~interp.adapter.ModelAdapter.can_resume`), the patched rows start at
step ``k`` from the target run's latents, which the baseline run recorded: the steps
before ``k`` are identical to the unpatched target run and are not recomputed.

A variant may carry its own steps (a window of the denoising trajectory, see
:mod:`interp.time_patching`): variants are then batched with others that start at the
same step, and all of them share one baseline run per unit.

What a row patches is a :class:`~interp.patch_variants.Variant`; the chunks run as
:mod:`interp.sweep_chunks` says; :mod:`interp.listening` keeps the patched generations
themselves, to listen to.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import torch
from torch import Tensor

from interp.adapter import GenerationRequest, ModelAdapter
from interp.batching import AUTO, BatchSize, planned_batch_size, resolve_batch_size
from interp.cost import Cost
from interp.distributed.executor import run_tasks
from interp.edits import Read
from interp.errors import TadaError
from interp.listening import patched_generations
from interp.metrics import Metric, needs_audio
from interp.patch_variants import Variant, single_site_variants, stage_site
from interp.progress import expect, shown
from interp.prompts import PromptPair
from interp.runner import run
from interp.selection import Branch, Steps, StepsLike
from interp.sites import Site, as_site
from interp.statistics import Effect, normalized_effect
from interp.sweep_chunks import (
    ChunkTask,
    Direction,
    SweepPlan,
    baseline_request,
    forget_baselines,
    variants_request,
)

__all__ = [
    "Direction",
    "SweepResult",
    "Variant",
    "mean_activations",
    "patched_generations",
    "single_site_variants",
    "sweep",
    "sweep_cost",
    "variant_chunks",
]


@dataclass
class SweepResult:
    """Metric values of every (unit, variant), plus the unpatched baselines.

    Attributes:
        direction: ``denoising``, ``noising`` or ``ablation``.
        metric: Name of the metric.
        rows: One dict per (pair, seed, variant): concept, pair, seed, variant,
            value, clean, corrupted.
    """

    direction: str
    metric: str
    rows: list[dict] = field(default_factory=list)

    def effects(self, n_boot: int = 1000) -> dict[str, Effect]:
        """Normalized effect with bootstrap CI per variant label."""
        grouped: dict[str, list[dict]] = defaultdict(list)
        for row in self.rows:
            grouped[row["variant"]].append(row)
        out = {}
        for label, rows in grouped.items():
            value = [r["value"] for r in rows]
            clean = [r["clean"] for r in rows]
            corrupted = [r["corrupted"] for r in rows]
            removal = self.direction != "denoising"  # noising / ablation remove the concept
            out[label] = normalized_effect(value, clean, corrupted, n_boot, removal=removal)
        return out

    def table(self, n_boot: int = 1000) -> list[dict]:
        """One row per variant: label, effect, CI, number of units."""
        return [{"variant": k, **e.as_dict()} for k, e in self.effects(n_boot).items()]


def sweep(
    adapter: ModelAdapter,
    base: GenerationRequest,
    pairs: Sequence[PromptPair],
    seeds: Sequence[int],
    variants: Sequence[Variant],
    metric: Metric,
    *,
    direction: Direction = "denoising",
    steps: StepsLike = None,
    branch: Branch | str = Branch.COND,
    ablation: Literal["zero", "mean"] = "zero",
    mean_activations: dict[str, Tensor] | None = None,
    batch_size: BatchSize = "auto",
    progress: bool = True,
    on_unit: Callable[[dict], None] | None = None,
    reuse_latents: bool = True,
) -> SweepResult:
    """Patch or ablate each variant for every (pair, seed) unit.

    Args:
        adapter: The model.
        base: Generation settings (its prompts and seeds are replaced per unit).
        pairs: Counterfactual prompt pairs.
        seeds: Seeds; every pair is run with every seed.
        variants: Site sets to intervene on (each patched together).
        metric: One number per sample, higher = closer to the clean run.
        direction: ``denoising`` (clean into corrupted), ``noising`` (corrupted into
            clean) or ``ablation`` (zero / mean in the clean run).
        steps: Denoising steps at which to intervene (default all).
        branch: CFG branch to intervene on (default conditional).
        ablation: ``zero`` or ``mean`` (needs ``mean_activations``: site name ->
            per-step tensor ``[step, rows, ...]`` from :func:`mean_activations`).
        batch_size: Variants per batched forward pass (1 = sequential), or ``"auto"``:
            the most that fit in free memory (:mod:`interp.batching`). A chunk that runs
            out of memory is halved and retried either way.
        progress: Show progress on stderr (ignored inside an active
            :func:`interp.progress.reporting` block, which receives the counts).
        on_unit: Called with each finished row (for incremental saving).
        reuse_latents: Start patched rows at the first intervened step from the target
            run's latents, when the adapter can resume (see the module docstring).
    """
    if not variants:
        raise TadaError("Nothing to sweep: give at least one variant (site set).")
    step_sel = Steps.parse(steps)
    branch = Branch.parse(branch)
    own = [_variant_steps(v, step_sel, base.num_steps) for v in variants]
    resolved = tuple(sorted({s for steps_of in own for s in steps_of}))  # what the baseline reads
    base = replace(base, decode=needs_audio(metric))  # skip the decoder when only latents count
    for v in variants:
        adapter.catalog.parse_many(v.sites)
    if direction == "ablation" and any(v.tokens is not None for v in variants):
        raise TadaError(
            "Token-level variants patch cached activations: use direction 'denoising' or 'noising'."
        )
    if direction == "ablation" and ablation == "mean" and mean_activations is None:
        raise TadaError("Mean ablation needs mean_activations (see interp.patching.mean_activations).")
    if direction == "ablation" and ablation == "mean" and any(v.steps is not None for v in variants):
        raise TadaError(
            "Mean ablation replaces at the sweep's steps (those of mean_activations); give the "
            "variants no steps of their own, and the sweep steps=."
        )
    needed = tuple(sorted({stage_site(s).name for v in variants for s in v.sites}))
    rows_per_sample = 2 if (branch is Branch.BOTH and base.guided) else 1
    size = resolve_batch_size(batch_size, adapter, base, len(variants), fixed_rows=1)
    chunks = variant_chunks(variants, own, size, reuse_latents and adapter.can_resume)
    plan = SweepPlan(
        base,
        metric,
        direction,
        step_sel,
        branch,
        ablation,
        mean_activations,
        needed,
        rows_per_sample,
        tuple(sorted({start for start, _ in chunks} - {0})),
        resolved,
    )
    tasks = [
        ChunkTask(plan, pair_index, pair, seed, chunk, start)
        for pair_index, pair in enumerate(pairs)
        for seed in seeds
        for start, chunk in chunks
    ]
    result = SweepResult(direction, metric.name)
    with shown(progress, f"{direction} x{len(variants)} variants"):
        expect(len(pairs) * len(seeds) * (2 + sum(len(chunk) + 1 for _, chunk in chunks)))
        try:
            done = run_tasks(adapter, tasks)
        finally:
            forget_baselines()  # the last baseline's reads are not needed after the sweep
    for rows in done:
        for row in rows:
            result.rows.append(row)
            if on_unit is not None:
                on_unit(row)
    return result


def variant_chunks(
    variants: Sequence[Variant], own: Sequence[tuple[int, ...]], batch_size: int, resume: bool
) -> list[tuple[int, tuple[Variant, ...]]]:
    """The variants of one sweep as ``(start step, chunk)``, ``batch_size`` per batched
    generation. With ``resume``, variants that start at the same step share batches and
    start there from the target run's latents; a variant patched at no step (the target
    run itself) joins the batches that start latest, the cheapest ones."""
    firsts = [steps_of[0] for steps_of in own if steps_of]
    latest = max(firsts) if resume and firsts else 0
    groups: dict[int, list[Variant]] = defaultdict(list)
    for v, steps_of in zip(variants, own):
        groups[(steps_of[0] if steps_of else latest) if resume else 0].append(v)
    return [
        (start, tuple(group[i : i + batch_size]))
        for start, group in sorted(groups.items())
        for i in range(0, len(group), batch_size)
    ]


def _variant_steps(variant: Variant, default: Steps, num_steps: int) -> tuple[int, ...]:
    """The steps ``variant`` is patched at, checked against the schedule."""
    if variant.steps is None:
        return default.resolve(num_steps)
    if not variant.steps:
        return ()
    return Steps.of(variant.steps).resolve(num_steps)


def sweep_cost(
    adapter: ModelAdapter,
    base: GenerationRequest,
    n_pairs: int,
    n_seeds: int,
    n_variants: int,
    metric: Metric,
    *,
    steps: StepsLike = None,
    batch_size: BatchSize = AUTO,
    reuse_latents: bool = True,
    variant_steps: "Sequence[tuple[int, ...]] | None" = None,
) -> Cost:
    """What :func:`sweep` runs for these sizes, counted with its own batching and requests
    (``adapter`` may be a structure-only build: only ``can_resume`` is used; ``auto``
    counts as :func:`~interp.batching.planned_batch_size` says). ``variant_steps``: each
    variant's own steps, as a :class:`Variant`'s ``steps`` (one per variant), for variants
    that carry them (:mod:`interp.time_patching`'s windows)."""
    if n_pairs * n_seeds * n_variants == 0:
        return Cost()
    batch_size = planned_batch_size(batch_size)
    base = replace(base, decode=needs_audio(metric))
    default, each = Steps.parse(steps), variant_steps or [None] * n_variants
    if len(each) != n_variants:
        raise TadaError(
            f"variant_steps has {len(each)} entries for {n_variants} variants; give one per variant."
        )
    own = [_variant_steps(Variant("planned", (), steps=s), default, base.num_steps) for s in each]
    chunks = variant_chunks(
        [Variant("planned", ())] * n_variants, own, batch_size, reuse_latents and adapter.can_resume
    )
    starts = tuple(sorted({start for start, _ in chunks} - {0}))
    units = n_pairs * n_seeds
    pair = PromptPair("clean", "corrupted", "concept")
    cost = Cost.of(baseline_request(base, pair, 0, starts), count=units, label="baseline")
    for start, chunk in chunks:
        n = len(chunk) + 1
        latents = torch.empty(n, 0) if start else None
        cost = cost + Cost.of(variants_request(base, "x", 0, n, start, latents), units, "variants")
    return cost.merged()


def mean_activations(
    adapter: ModelAdapter,
    base: GenerationRequest,
    prompts: Sequence[str],
    seeds: Sequence[int],
    sites: Sequence[Site | str],
    *,
    steps: StepsLike = None,
    branch: Branch | str = Branch.COND,
) -> dict[str, Tensor]:
    """Mean activation over a reference prompt set, per step, for mean-ablation.

    Returns site-stage name -> ``[step, rows_per_sample, ...]`` (the mean over samples).
    """
    branch = Branch.parse(branch)
    stage_names = sorted({stage_site(as_site(s)).name for s in sites})
    request = replace(base, prompts=tuple(prompts), seeds=tuple(seeds))
    result = run(adapter, request, reads=[Read(n, steps=steps, branch=branch) for n in stage_names])
    n = len(prompts)
    out = {}
    for name, stacked in result.reads.items():
        rows_per_sample = stacked.shape[1] // n
        per = stacked.reshape(stacked.shape[0], rows_per_sample, n, *stacked.shape[2:])
        out[name] = per.mean(dim=2)
    return out
