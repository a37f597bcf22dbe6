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
"""

import hashlib
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

import torch
from torch import Tensor

from interp.adapter import GenerationRequest, ModelAdapter
from interp.batching import BatchSize, chunks, resolve_batch_size, run_halving
from interp.distributed.executor import run_tasks
from interp.distributed.tasks import GenerationTask
from interp.edits import Edit, Read, Replace, Zero
from interp.errors import TadaError
from interp.metrics import Metric, MetricContext, needs_audio
from interp.progress import expect, shown
from interp.prompts import PromptPair
from interp.runner import RunResult, run
from interp.selection import Branch, Steps, StepsLike
from interp.sites import Site, as_site
from interp.statistics import Effect, normalized_effect

Direction = Literal["denoising", "noising", "ablation"]


@dataclass(frozen=True)
class Variant:
    """A set of sites intervened on together, with a label for tables and plots."""

    label: str
    sites: tuple[Site, ...]

    @classmethod
    def of(cls, sites: Sequence[Site | str], label: str | None = None) -> "Variant":
        parsed = tuple(as_site(s) for s in sites)
        return cls(label or "+".join(s.name for s in parsed), parsed)


def single_site_variants(sites: Sequence[Site | str]) -> list[Variant]:
    """One variant per site."""
    return [Variant.of([s]) for s in sites]


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


def stage_site(site: Site) -> Site:
    """The site whose read caches what ``site`` needs (a head lives in ``heads``)."""
    return site.whole()


def _cached_value(
    cache: dict[str, Tensor],
    steps: tuple[int, ...],
    site: Site,
    sample: int,
    rows_per_sample: int,
    n_samples: int,
) -> dict[int, Tensor]:
    """Per-step slice of the source activation for ``site`` and one source sample."""
    stacked = cache[stage_site(site).name]  # [step, rows, ...]
    # rows of the read are ordered branch-major: (uncond samples..., cond samples...)
    rows = [sample + r * n_samples for r in range(rows_per_sample)]
    values = stacked[:, rows]
    if site.spec.index is not None and site.head is not None:
        values = values.select(site.spec.index_position() + 1, site.head)  # after the step axis
    return {step: values[i] for i, step in enumerate(steps)}


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
    resolved = step_sel.resolve(base.num_steps)
    base = replace(base, decode=needs_audio(metric))  # skip the decoder when only latents count
    for v in variants:
        adapter.catalog.parse_many(v.sites)
    if direction == "ablation" and ablation == "mean" and mean_activations is None:
        raise TadaError("Mean ablation needs mean_activations (see interp.patching.mean_activations).")
    needed = tuple(sorted({stage_site(s).name for v in variants for s in v.sites}))
    rows_per_sample = 2 if (branch is Branch.BOTH and base.guided) else 1
    start = min(resolved) if reuse_latents and adapter.can_resume else 0
    plan = _SweepPlan(
        base,
        metric,
        direction,
        step_sel,
        branch,
        ablation,
        mean_activations,
        needed,
        rows_per_sample,
        start,
        resolved,
    )
    size = resolve_batch_size(batch_size, adapter, base, len(variants), fixed_rows=1)
    parts = chunks(variants, size)
    tasks = [
        _ChunkTask(plan, pair_index, pair, seed, chunk)
        for pair_index, pair in enumerate(pairs)
        for seed in seeds
        for chunk in parts
    ]
    result = SweepResult(direction, metric.name)
    with shown(progress, f"{direction} x{len(variants)} variants"):
        expect(len(pairs) * len(seeds) * (2 + sum(len(chunk) + 1 for chunk in parts)))
        try:
            done = run_tasks(adapter, tasks)
        finally:
            _BASELINES.clear()  # the last baseline's reads are not needed after the sweep
    for rows in done:
        for row in rows:
            result.rows.append(row)
            if on_unit is not None:
                on_unit(row)
    return result


@dataclass(frozen=True)
class _SweepPlan:
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
    start: int
    resolved: tuple[int, ...]

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
            self.start,
        )


#: The baseline run of the latest (pair, seed) unit in this process, which the following
#: chunks of that unit reuse (held like the loop that ran them one after the other).
_BASELINES: "OrderedDict[tuple, tuple]" = OrderedDict()
_BASELINES_KEPT = 1


@dataclass(frozen=True)
class _ChunkTask:
    """One work item of a sweep: a chunk of variants for one (pair, seed) unit."""

    plan: _SweepPlan
    pair_index: int
    pair: PromptPair
    seed: int
    chunk: tuple[Variant, ...]

    def key(self) -> str:
        from interp.experiments.units import fingerprint

        return fingerprint(
            self.plan.key,
            self.pair_index,
            repr(self.pair),
            self.seed,
            [(v.label, [s.name for s in v.sites]) for v in self.chunk],
        )

    def _baseline(self, adapter: ModelAdapter) -> tuple:
        plan, pair, seed = self.plan, self.pair, self.seed
        key = (id(adapter), plan.key, repr(pair), seed)
        if key in _BASELINES:
            _BASELINES.move_to_end(key)
            return _BASELINES[key]
        both = replace(plan.base, prompts=(pair.clean, pair.corrupted), seeds=(seed, seed))
        baseline = run(
            adapter,
            replace(both, keep_latents_at=(plan.start,) if plan.start else ()),
            reads=[Read(name, steps=plan.steps, branch=plan.branch) for name in plan.needed],
        )
        ref = MetricContext.for_pair(
            _select(baseline.output, 0), _select(baseline.output, 1), pair, adapter=adapter
        )
        source = 0 if plan.direction == "denoising" else 1
        with torch.no_grad():
            m_source = float(
                plan.metric(
                    _select(baseline.output, source) if plan.direction != "ablation" else ref.corrupted, ref
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
            for site in variant.sites:
                if direction == "ablation":
                    op = (
                        Zero()
                        if plan.ablation == "zero"
                        else Replace(
                            _cached_value(plan.mean_activations, resolved, site, 0, rows_per_sample, 1)
                        )
                    )
                else:
                    op = Replace(_cached_value(baseline.reads, resolved, site, source, rows_per_sample, 2))
                edits.append(Edit(site, op, steps=plan.steps, branch=plan.branch, samples=(i,)))
        n = len(chunk) + 1
        request = replace(plan.base, prompts=(target_prompt,) * n, seeds=(seed,) * n)
        if plan.start:
            resume_from = baseline.output.step_latents[plan.start][target : target + 1]
            request = replace(
                request,
                start_step=plan.start,
                start_latents=resume_from.expand(n, *resume_from.shape[1:]).clone(),
            )
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


def _select(output, index: int):
    """One sample of a batched GenerationOutput, keeping the batch axis."""
    from interp.adapter import GenerationOutput

    audio = None if output.audio is None else output.audio[index : index + 1]
    return GenerationOutput(output.latents[index : index + 1], audio, output.sample_rate)


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


def patched_generation(
    adapter: ModelAdapter,
    base: GenerationRequest,
    pair: PromptPair,
    seed: int,
    sites: Sequence[Site | str],
    *,
    direction: Direction = "denoising",
    steps: StepsLike = None,
    branch: Branch | str = Branch.COND,
):  # returns three GenerationOutputs
    """The clean, corrupted and patched generations of one pair and seed (to listen to).

    Returns:
        ``(clean, corrupted, patched)`` outputs, each with a batch of one.
    """
    variant = Variant.of(sites, "patched")
    step_sel, branch = Steps.parse(steps), Branch.parse(branch)
    expect(3)  # clean and corrupted in one batch, then the patched run
    needed = sorted({stage_site(s).name for s in variant.sites})
    both = replace(base, prompts=(pair.clean, pair.corrupted), seeds=(seed, seed))
    reads = tuple(Read(n, steps=step_sel, branch=branch) for n in needed)
    baseline = run_tasks(adapter, [GenerationTask(both, reads=reads)])[0]
    resolved = step_sel.resolve(base.num_steps)
    rows_per_sample = 2 if (branch is Branch.BOTH and base.guided) else 1
    source = 0 if direction == "denoising" else 1
    edits = [
        Edit(
            s,
            Replace(_cached_value(baseline.reads, resolved, s, source, rows_per_sample, 2)),
            steps=step_sel,
            branch=branch,
        )
        for s in variant.sites
    ]
    target = pair.corrupted if direction == "denoising" else pair.clean
    request = replace(base, prompts=(target,), seeds=(seed,))
    patched = run_tasks(adapter, [GenerationTask(request, tuple(edits))])[0].output
    return _select(baseline.output, 0), _select(baseline.output, 1), patched
