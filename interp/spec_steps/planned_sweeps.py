"""The sweeps of ``patch`` and ``locate`` units that other steps may share.

``tada plan`` counts a sweep chunk that two steps share once, as the run's work store
computes it (:mod:`interp.experiments.shared_work`). These declarations give, per unit,
the same arguments the step's ``run_unit`` passes to :func:`interp.patching.sweep`, and
the label its ``unit_cost`` counts the sweep under: a ``patch`` step's sites (``sites``),
and ``locate``'s layer impact over every layer's text input (``layers``). The ranking,
prefix and noising sweeps of ``locate`` depend on results, and are not declared.
"""

from collections.abc import Callable
from typing import Any

from interp.experiments.shared_work import PlannedSweep


def _options(step: Any) -> dict[str, Any]:
    return {"steps": step.patch_steps, "branch": step.branch, "batch_size": step.batch_size}


def patch_sweeps(step: Any, unit: Any, ctx: Any) -> list[PlannedSweep]:
    """A ``patch`` unit's one sweep: each of its sites alone (``Patch.run_unit``)."""
    from interp.spec_steps.localization_steps import _candidates

    structure, base, _, _, metric = step._planned(unit, ctx)
    _, pairs, seeds, _ = step._work(unit, ctx)
    sites = _candidates(step, ctx, step.component, structure.catalog)
    options = {"direction": step.direction, **_options(step)}
    return [PlannedSweep("sites", base, pairs, seeds, sites, metric, options)]


def locate_sweeps(step: Any, unit: Any, ctx: Any) -> list[PlannedSweep]:
    """A ``locate`` unit's layer impact: every layer's text input alone
    (:func:`interp.localization.locate` with ``layers``)."""
    if not step.layer_impact:
        return []
    structure, base, _, _, metric = step._planned(unit, ctx)
    _, pairs, seeds, _ = step._work(unit, ctx)
    texts = structure.catalog.where(attention="cross", component="text")
    return [PlannedSweep("layers", base, pairs, seeds, texts, metric, _options(step))]


#: Method -> the sweeps of a unit that other steps may share.
SWEEPS: dict[str, Callable[[Any, Any, Any], list[PlannedSweep]]] = {
    "patch": patch_sweeps,
    "locate": locate_sweeps,
}
