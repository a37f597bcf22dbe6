"""What the localization steps (``patch``, ``attribute``, ``locate``) share: one unit per
concept of the step's pairs (so an interrupted run resumes per concept), the candidate
sites, and the tidy rows of per-site effects."""

from typing import Any

from interp.experiments.context import StepContext
from interp.experiments.units import Row, Unit
from interp.spec_steps.common import PatchingSettings, build_metric, by_concept, check_pairs, step_pairs


def _units(settings: Any, ctx: StepContext) -> list[Unit]:
    groups = by_concept(step_pairs(settings, ctx))
    return [Unit(f"c-{concept}", {"concept": concept}) for concept in groups]


class PerConcept(PatchingSettings):
    """One unit per concept of the step's pairs; pairs and layers checked up front."""

    def check(self, ctx: Any) -> None:
        check_pairs(self, ctx)

    def plan(self, ctx: StepContext) -> list[Unit]:
        return _units(self, ctx)

    def _work(self, unit: Unit, ctx: StepContext) -> tuple[str, list, list[int], Any]:
        """The unit's concept, its pairs, the seeds and the base request."""
        concept = unit.params["concept"]
        pairs = by_concept(step_pairs(self, ctx))[concept]
        return concept, pairs, list(ctx.generation.seeds), ctx.request(["-"], [0])

    def _inputs(self, unit: Unit, ctx: StepContext) -> tuple[str, list, Any, list[int], Any]:
        """The unit's concept, its pairs, the model, the seeds and the base request."""
        concept, pairs, seeds, base = self._work(unit, ctx)
        return concept, pairs, ctx.adapter, seeds, base

    def _sweep_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`interp.patching.sweep` every declared sweep shares."""
        return {"steps": self.patch_steps, "branch": self.branch, "batch_size": self.batch_size}

    def _planned(self, unit: Unit, ctx: StepContext) -> tuple[Any, Any, int, int, Any]:
        """For :meth:`unit_cost`: the model without weights, the base request, the numbers
        of pairs and seeds, and the metric."""
        _, pairs, seeds, base = self._work(unit, ctx)
        structure = ctx.structure
        return (
            structure,
            base,
            len(pairs),
            len(seeds),
            build_metric(self.metric, structure, self.scorer_model),
        )


def candidates(settings: Any, ctx: StepContext, component: str = "head", catalog: Any = None) -> list[Any]:
    """The step's ``sites``, or every cross-attention site of ``component`` in its layers."""
    catalog = catalog if catalog is not None else ctx.adapter.catalog
    if getattr(settings, "sites", None):
        return catalog.parse_many(settings.sites)
    return catalog.where(attention="cross", layer=settings.layers, component=component)


def effect_rows(metric: str, concept: str, effects: dict, settings: Any, **labels: Any) -> list[Row]:
    """One row per site's effect, with its interval and number of units."""
    return [
        Row(
            metric,
            e.mean,
            concept=concept,
            site=site,
            steps=str(settings.patch_steps),
            branch=settings.branch,
            labels={"ci_low": e.ci_low, "ci_high": e.ci_high, "n": e.n, **labels},
        )
        for site, e in effects.items()
    ]
