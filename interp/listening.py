"""Patched generations to listen to: the clean and corrupted runs of one pair and seed,
and the target run with each variant patched, one generation per variant.

Where a sweep (:func:`interp.patching.sweep`) turns each patched row into a number, this
keeps the rows themselves (the report's head grid plays them).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from interp.adapter import GenerationOutput, GenerationRequest, ModelAdapter
from interp.batching import AUTO, BatchSize, planned_batch_size, resolve_batch_size
from interp.cost import Cost
from interp.distributed.executor import run_tasks
from interp.distributed.tasks import GenerationTask
from interp.edits import Edit, Read, Replace
from interp.errors import TadaError
from interp.patch_variants import Variant, cached_value, stage_site
from interp.progress import expect
from interp.prompts import PromptPair
from interp.selection import Branch, Steps, StepsLike
from interp.sweep_chunks import baseline_request, select_sample, variants_request


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
    both = baseline_request(base, pair, seed, ())
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
                Replace(cached_value(baseline.reads, resolved, s, source, rows_per_sample, 2)),
                steps=step_sel,
                branch=branch,
                samples=(row,),
            )
            for row, variant in enumerate(chunk)
            for s in variant.sites
        ]
        request = variants_request(base, target, seed, len(chunk), 0, None)
        tasks.append(GenerationTask(request, tuple(edits)))
    patched: dict[str, GenerationOutput] = {}
    for chunk, result in zip(chunks, run_tasks(adapter, tasks) if tasks else []):
        for row, variant in enumerate(chunk):
            patched[variant.label] = select_sample(result.output, row)
    return Listening(select_sample(baseline.output, 0), select_sample(baseline.output, 1), patched)


def patched_generations_cost(base: GenerationRequest, n_variants: int, batch_size: BatchSize = AUTO) -> Cost:
    """What :func:`patched_generations` runs: the clean and corrupted runs in one batch,
    then ``n_variants`` patched rows, ``batch_size`` to a forward pass."""
    batch_size = planned_batch_size(batch_size)
    pair = PromptPair("clean", "corrupted", "concept")
    cost = Cost.of(baseline_request(base, pair, 0, ()), label="audio")
    full, rest = divmod(n_variants, batch_size)
    if full:
        cost = cost + Cost.of(variants_request(base, "x", 0, batch_size, 0, None), count=full, label="audio")
    if rest:
        cost = cost + Cost.of(variants_request(base, "x", 0, rest, 0, None), label="audio")
    return cost
