"""The sweeps of ``patch`` and ``locate`` units that other steps may share.

``tada plan`` counts a sweep chunk that two steps share once, as the run's work store
computes it (:mod:`interp.experiments.shared_work`). These declarations give, per unit,
the same arguments the step's ``run_unit`` passes to :func:`interp.patching.sweep`, and
the label its ``unit_cost`` counts the sweep under: a ``patch`` step's sites (``sites``),
and ``locate``'s ranking of each head (``heads``, with ``ranking: patching``) and layer
impact over every layer's text input (``layers``). ``locate``'s prefix and noising
sweeps depend on results, and are not declared; nor are the halves of ``stability``.
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
    """A ``locate`` unit's sweeps that depend on no result (:func:`interp.localization.locate`):
    the ranking of each candidate head alone (``ranking: patching``), and the layer impact,
    every layer's text input alone (``layer_impact``)."""
    from interp.spec_steps.localization_steps import _candidates

    structure, base, _, _, metric = step._planned(unit, ctx)
    _, pairs, seeds, _ = step._work(unit, ctx)
    sweeps = []
    if step.ranking == "patching":
        heads = _candidates(step, ctx, catalog=structure.catalog)
        sweeps.append(PlannedSweep("heads", base, pairs, seeds, heads, metric, _options(step)))
    if step.layer_impact:
        texts = structure.catalog.where(attention="cross", component="text")
        sweeps.append(PlannedSweep("layers", base, pairs, seeds, texts, metric, _options(step)))
    return sweeps


#: Method -> the sweeps of a unit that other steps may share.
SWEEPS: dict[str, Callable[[Any, Any, Any], list[PlannedSweep]]] = {
    "patch": patch_sweeps,
    "locate": locate_sweeps,
}
