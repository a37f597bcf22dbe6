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
"""

import hashlib
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

import torch
from torch import Tensor

from interp.adapter import GenerationOutput, GenerationRequest, ModelAdapter
from interp.batching import AUTO, BatchSize, planned_batch_size, resolve_batch_size, run_halving
from interp.cost import Cost
from interp.distributed.executor import run_tasks
from interp.distributed.tasks import GenerationTask
from interp.edits import Edit, Read, Replace, ReplaceTokens, Zero
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
    """A set of sites intervened on together, with a label for tables and plots.

    Attributes:
        label: Name in tables and plots.
        sites: The sites patched together.
        tokens: Patch only these positions of the axis after the rows (the context
            tokens of ``text``, ``keys``/``key``, ``values``/``value`` sites:
            :class:`~interp.edits.ReplaceTokens`); ``None``: every position.
        steps: The denoising steps this variant is patched at: ``None`` takes the sweep's
            ``steps``; an empty tuple patches nothing (the row is the unpatched target
            run, e.g. a window of zero steps).
    """

    label: str
    sites: tuple[Site, ...]
    tokens: tuple[int, ...] | None = None
    steps: tuple[int, ...] | None = None

    @classmethod
    def of(
        cls,
        sites: Sequence[Site | str],
        label: str | None = None,
        tokens: Sequence[int] | None = None,
        steps: Sequence[int] | None = None,
    ) -> "Variant":
        parsed = tuple(as_site(s) for s in sites)
        return cls(
            label or "+".join(s.name for s in parsed),
            parsed,
            None if tokens is None else tuple(tokens),
            None if steps is None else tuple(steps),
        )

    def replace(self, value: dict[int, Tensor]) -> Replace | ReplaceTokens:
        """The operation writing the cached ``value`` at this variant's positions."""
        return Replace(value) if self.tokens is None else ReplaceTokens(value, self.tokens)


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
        tuple(sorted({start for start, _ in chunks} - {0})),
        resolved,
    )
    tasks = [
        _ChunkTask(plan, pair_index, pair, seed, chunk, start)
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
            _BASELINES.clear()  # the last baseline's reads are not needed after the sweep
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


def _baseline_request(
    base: GenerationRequest, pair: PromptPair, seed: int, starts: tuple[int, ...]
) -> GenerationRequest:
    """The clean and corrupted runs of one (pair, seed) unit, in one batch, keeping the
    latents at the steps where patched chunks resume."""
    both = replace(base, prompts=(pair.clean, pair.corrupted), seeds=(seed, seed))
    return replace(both, keep_latents_at=starts)


def _variants_request(
    base: GenerationRequest, prompt: str, seed: int, n: int, start: int, start_latents: Tensor | None
) -> GenerationRequest:
    """One chunk: an unpatched control row and ``n - 1`` variants, resumed at ``start``."""
    request = replace(base, prompts=(prompt,) * n, seeds=(seed,) * n)
    if start and start_latents is not None:
        request = replace(request, start_step=start, start_latents=start_latents)
    return request


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
    cost = Cost.of(_baseline_request(base, pair, 0, starts), count=units, label="baseline")
    for start, chunk in chunks:
        n = len(chunk) + 1
        latents = torch.empty(n, 0) if start else None
        cost = cost + Cost.of(_variants_request(base, "x", 0, n, start, latents), units, "variants")
    return cost.merged()


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


@dataclass(frozen=True)
class _ChunkTask:
    """One work item of a sweep: a chunk of variants for one (pair, seed) unit."""

    plan: _SweepPlan
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
            _baseline_request(plan.base, pair, seed, plan.starts),
            reads=reads if plan.resolved else [],
        )
        ref = MetricContext.for_pair(
            _select(baseline.output, 0), _select(baseline.output, 1), pair, adapter=adapter
        )
        source = 0 if plan.direction == "denoising" else 1
        assert ref.corrupted is not None  # for_pair sets both runs
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
            steps = plan.steps if variant.steps is None else variant.steps
            if variant.steps == ():
                continue  # patched at no step: the row is the target run
            for site in variant.sites:
                if direction == "ablation" and plan.ablation == "zero":
                    op = Zero()
                elif direction == "ablation":
                    assert plan.mean_activations is not None  # sweep() refuses mean ablation without them
                    op = Replace(_cached_value(plan.mean_activations, resolved, site, 0, rows_per_sample, 1))
                else:
                    op = variant.replace(
                        _cached_value(baseline.reads, resolved, site, source, rows_per_sample, 2)
                    )
                edits.append(Edit(site, op, steps=steps, branch=plan.branch, samples=(i,)))
        n = len(chunk) + 1
        latents = None
        if self.start:
            resume_from = baseline.output.step_latents[self.start][target : target + 1]
            latents = resume_from.expand(n, *resume_from.shape[1:]).clone()
        request = _variants_request(plan.base, target_prompt, seed, n, self.start, latents)
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


def _select(output: GenerationOutput, index: int) -> GenerationOutput:
    """One sample of a batched GenerationOutput, keeping the batch axis."""
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


@dataclass
class Listening:
    """Generations of one pair and seed to listen to: the clean and corrupted runs, and
    the target run with each variant patched.

    Attributes:
        clean: The clean prompt's generation (a batch of one).
        corrupted: The corrupted prompt's generation (a batch of one).
        patched: Variant label -> the target run with that variant patched (a batch of one).
    """

    clean: GenerationOutput
    corrupted: GenerationOutput
    patched: dict[str, GenerationOutput]


def patched_generations(
    adapter: ModelAdapter,
    base: GenerationRequest,
    pair: PromptPair,
    seed: int,
    variants: Sequence[Variant],
    *,
    direction: Literal["denoising", "noising"] = "denoising",
    steps: StepsLike = None,
    branch: Branch | str = Branch.COND,
    batch_size: BatchSize = AUTO,
) -> Listening:
    """The clean, corrupted and patched generations of one pair and seed (to listen to).

    The clean and corrupted runs share one batch and cache the sites' activations; the
    variants then run ``batch_size`` to a forward pass, each row with the same seed and
    its own sites patched, so one generation per variant.

    Args:
        adapter: The model.
        base: Generation settings (its prompts and seeds are replaced).
        pair: The prompt pair.
        seed: The seed of every run.
        variants: Site sets, each patched together in its own row (labels must differ).
        direction: ``denoising`` (clean into the corrupted run) or ``noising``.
        steps: Denoising steps at which to patch (default all).
        branch: CFG branch to patch (default conditional).
        batch_size: Variants per batched forward pass, or ``"auto"`` (:mod:`interp.batching`).
    """
    labels = [v.label for v in variants]
    if len(set(labels)) != len(labels):
        raise TadaError(f"Variant labels must differ, got {labels}.")
    step_sel, branch = Steps.parse(steps), Branch.parse(branch)
    for v in variants:
        adapter.catalog.parse_many(v.sites)
    both = _baseline_request(base, pair, seed, ())
    batch_size = resolve_batch_size(batch_size, adapter, both, len(variants))
    chunks = [variants[i : i + batch_size] for i in range(0, len(variants), batch_size)]
    expect(2 + sum(len(chunk) for chunk in chunks))  # clean and corrupted, then the variants
    needed = sorted({stage_site(s).name for v in variants for s in v.sites})
    reads = tuple(Read(n, steps=step_sel, branch=branch) for n in needed)
    baseline = run_tasks(adapter, [GenerationTask(both, reads=reads)])[0]
    resolved = step_sel.resolve(base.num_steps)
    rows_per_sample = 2 if (branch is Branch.BOTH and base.guided) else 1
    source = 0 if direction == "denoising" else 1
    target = pair.corrupted if direction == "denoising" else pair.clean
    tasks = []
    for chunk in chunks:
        edits = [
            Edit(
                s,
                Replace(_cached_value(baseline.reads, resolved, s, source, rows_per_sample, 2)),
                steps=step_sel,
                branch=branch,
                samples=(row,),
            )
            for row, variant in enumerate(chunk)
            for s in variant.sites
        ]
        request = _variants_request(base, target, seed, len(chunk), 0, None)
        tasks.append(GenerationTask(request, tuple(edits)))
    patched: dict[str, GenerationOutput] = {}
    for chunk, result in zip(chunks, run_tasks(adapter, tasks) if tasks else []):
        for row, variant in enumerate(chunk):
            patched[variant.label] = _select(result.output, row)
    return Listening(_select(baseline.output, 0), _select(baseline.output, 1), patched)


def patched_generations_cost(base: GenerationRequest, n_variants: int, batch_size: BatchSize = AUTO) -> Cost:
    """What :func:`patched_generations` runs: the clean and corrupted runs in one batch,
    then ``n_variants`` patched rows, ``batch_size`` to a forward pass."""
    batch_size = planned_batch_size(batch_size)
    pair = PromptPair("clean", "corrupted", "concept")
    cost = Cost.of(_baseline_request(base, pair, 0, ()), label="audio")
    full, rest = divmod(n_variants, batch_size)
    if full:
        cost = cost + Cost.of(_variants_request(base, "x", 0, batch_size, 0, None), count=full, label="audio")
    if rest:
        cost = cost + Cost.of(_variants_request(base, "x", 0, rest, 0, None), label="audio")
    return cost
