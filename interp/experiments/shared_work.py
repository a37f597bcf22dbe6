"""Sweep chunks that several steps share, counted once, as a run computes them.

A run keeps every finished sweep chunk in its work store (``units/work/``,
:func:`interp.experiments.engine.work_store`), addressed by the chunk's key, so a chunk
that a later step (or unit) needs again is taken from the store instead of being run:
``locate``'s layer impact reuses a ``patch`` step of the text sites with the same pairs,
seeds, generation settings, metric and batch size. ``tada plan`` counts it once too.

It does not compare settings itself: each step declares the sweeps of a unit
(:meth:`~interp.experiments.methods.MethodSpec.planned_sweeps`), and :func:`chunks`
builds their work items with :func:`interp.patching.sweep` itself, on the structure-only
model, under an executor that only collects them (:class:`Collector`): the keys are the
work store's own (``Task.key``). A chunk whose key an earlier step or unit already
produced is reused; a (pair, seed) whose every chunk is reused skips its baseline run
too, since the chunk items run it.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from interp.cost import Calls, Cost
from interp.errors import TadaError


@dataclass(frozen=True)
class PlannedSweep:
    """One sweep of a unit, as its step runs it (the arguments of :func:`interp.patching.sweep`).

    Attributes:
        label: The label of its calls in the step's cost (``sites``, ``layers``).
        base: The base request.
        pairs: The (clean, corrupted) pairs.
        seeds: The seeds.
        sites: The sites, one variant each.
        metric: The metric.
        options: ``direction``, ``steps``, ``branch``, ``batch_size`` as the step passes them.
    """

    label: str
    base: Any
    pairs: Sequence[Any]
    seeds: Sequence[int]
    sites: Sequence[Any]
    metric: Any
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """A sweep's work item: its key, the (pair, seed) it belongs to, its samples and the
    denoising steps it runs (fewer when it resumes from the baseline's latents)."""

    key: str
    group: str
    samples: int
    steps: int


class Collector:
    """An executor that runs nothing: it keeps the work items it is given and returns
    empty results (a sweep then has no rows)."""

    workers = 1
    name = "plan"

    def __init__(self) -> None:
        self.tasks: list[Any] = []

    def map(self, adapter: Any, tasks: Sequence[Any], on_result: Any) -> list[Any]:
        self.tasks.extend(tasks)
        return [[] for _ in tasks]

    def close(self) -> None:
        pass


def chunks(structure: Any, sweep: PlannedSweep) -> list[Chunk]:
    """The work items :func:`interp.patching.sweep` makes of ``sweep``, with their keys."""
    from interp.batching import planned_batch_size
    from interp.distributed.executor import recording, using
    from interp.patching import single_site_variants
    from interp.patching import sweep as run_sweep

    options = dict(sweep.options)
    options["batch_size"] = planned_batch_size(options.get("batch_size", "auto"))
    collector = Collector()
    with using(collector), recording(None):
        variants = single_site_variants(list(sweep.sites))
        run_sweep(
            structure, sweep.base, sweep.pairs, sweep.seeds, variants, sweep.metric, progress=False, **options
        )
    steps = sweep.base.num_steps
    return [Chunk(t.key(), t.affinity(), len(t.chunk) + 1, steps - t.start) for t in collector.tasks]


@dataclass
class Reuse:
    """The work items a plan has seen, and which step computes each."""

    computed_by: dict[str, str] = field(default_factory=dict)

    def take(self, step: str, sweep: PlannedSweep, found: list[Chunk], cost: Cost) -> tuple[Cost, set[str]]:
        """The calls of ``cost`` that ``found``'s already-seen chunks save (labelled
        ``{label}/variants`` and ``{label}/baseline`` as the sweep's cost counts them),
        and the steps that compute them; the others are recorded as ``step``'s."""
        label, steps = sweep.label, sweep.base.num_steps
        saved: list[Calls] = []
        sources: set[str] = set()
        groups: dict[str, list[Chunk]] = {}
        for chunk in found:
            groups.setdefault(chunk.group, []).append(chunk)
        for group in groups.values():
            seen = [c for c in group if c.key in self.computed_by]
            for chunk in group:
                self.computed_by.setdefault(chunk.key, step)
            for chunk in seen:
                sources.add(self.computed_by[chunk.key])
                saved.append(_one(step, cost, f"{label}/variants", chunk.samples, chunk.steps))
            if seen and len(seen) == len(group):  # no chunk runs: nor does the baseline
                saved.append(_one(step, cost, f"{label}/baseline", 2, steps))
        return Cost(saved).merged(), sources


def _one(step: str, cost: Cost, label: str, samples: int, steps: int) -> Calls:
    """One call of ``cost`` labelled ``label`` of ``samples`` samples and ``steps``
    denoising steps (the sweep's cost counts each chunk as such a call)."""
    for c in cost.calls:
        if c.label == label and c.samples == samples and c.steps == steps:
            return Calls(c.label, 1, c.samples, c.rows, c.steps, c.decode, c.gradients)
    raise TadaError(
        f"Step {step!r}: a planned sweep's chunk ({samples} samples, {steps} steps) is not among "
        f"its {label!r} calls: the method's planned_sweeps() must declare the sweeps its unit_cost() "
        f"counts under that label, with the same settings."
    )
