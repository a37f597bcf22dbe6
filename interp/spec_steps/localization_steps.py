"""Localization methods for experiment files: ``patch``, ``attribute`` and ``locate``.

Each runs one unit per concept (so an interrupted run resumes per concept,
:mod:`~interp.spec_steps.per_concept`) and writes a tidy row per measured effect, plots
and audio. ``patch`` and ``attribute`` live here; ``locate`` in
:mod:`~interp.spec_steps.locate_step` (imported here, so this module's entry point
registers all three). Example::

    - name: patch
      method: patch
      pairs: {source: synthmusic, concepts: [mood, tempo], per_concept: 6}
      direction: denoising
"""

from typing import Any, Literal

from pydantic import Field

from interp.experiments.context import StepContext
from interp.experiments.fields import SiteStr
from interp.experiments.methods import MethodSpec, register_method
from interp.experiments.shared_work import PlannedSweep
from interp.experiments.units import Row, Unit
from interp.spec_steps.common import build_metric
from interp.spec_steps.locate_step import Locate
from interp.spec_steps.per_concept import PerConcept, candidates, effect_rows

__all__ = ["Attribute", "Locate", "Patch"]


def _check_sample(ranked: list[str], check_heads: int) -> list[str]:
    """The heads an ``attribute`` step patches exactly: the top of the ranking plus an
    even spread over the rest."""
    half = check_heads // 2
    rest = ranked[half:]
    stride = max(1, len(rest) // max(1, check_heads - half))
    return ranked[:half] + rest[::stride][: check_heads - half]


@register_method
class Patch(PerConcept, MethodSpec):
    """Activation patching of each site (or layer) separately, per concept."""

    summary_line = "activation patching of sites, one at a time (denoising or noising)"
    exports = ("effects",)

    method: Literal["patch"] = Field(description="Patch sites one at a time.")
    sites: list[SiteStr] | None = Field(
        default=None, description="Sites to patch; default: every site of `component` in the chosen layers."
    )
    component: Literal["head", "heads", "out", "text"] = Field(
        default="head",
        description="Component swept when `sites` is not given ('text': TADA's per-layer text input).",
    )
    layers: list[int] | None = Field(default=None, description="Cross layers (default all).")
    direction: Literal["denoising", "noising", "ablation"] = Field(
        default="denoising", description="Clean into corrupted, corrupted into clean, or zero."
    )

    def unit_cost(self, unit: Unit, ctx: StepContext) -> Any:
        from interp.patching import sweep_cost

        structure, base, n_pairs, n_seeds, metric = self._planned(unit, ctx)
        n_sites = len(candidates(self, ctx, self.component, structure.catalog))
        return sweep_cost(
            structure,
            base,
            n_pairs,
            n_seeds,
            n_sites,
            metric,
            steps=self.patch_steps,
            batch_size=self.batch_size,
        ).labelled("sites")

    def planned_sweeps(self, unit: Unit, ctx: StepContext) -> list[PlannedSweep]:
        """The unit's one sweep, each of its sites alone, which other steps may share."""
        structure, base, _, _, metric = self._planned(unit, ctx)
        _, pairs, seeds, _ = self._work(unit, ctx)
        sites = candidates(self, ctx, self.component, structure.catalog)
        options = {"direction": self.direction, **self._sweep_options()}
        return [PlannedSweep("sites", base, pairs, seeds, sites, metric, options)]

    def run_unit(self, unit: Unit, ctx: StepContext) -> list[Row]:
        from interp.patch_variants import single_site_variants
        from interp.patching import sweep

        concept, pairs, adapter, seeds, base = self._inputs(unit, ctx)
        result = sweep(
            adapter,
            base,
            pairs,
            seeds,
            single_site_variants(candidates(self, ctx, self.component)),
            build_metric(self.metric, adapter, self.scorer_model),
            direction=self.direction,
            steps=self.patch_steps,
            branch=self.branch,
            batch_size=self.batch_size,
            progress=False,
        )
        return effect_rows(f"{self.direction}_effect", concept, result.effects(), self)

    def finalize(self, ctx: StepContext) -> dict[str, Any]:
        import matplotlib.pyplot as plt

        from interp.spec_steps.head_grid import write_silent_grids

        effects: dict[str, dict[str, float]] = {}
        for row in ctx.rows:
            assert row.concept is not None and row.site is not None  # every effect row names both
            effects.setdefault(row.concept, {})[row.site] = row.value
        write_silent_grids(ctx.rows, ctx, self.direction)
        for concept, values in effects.items():
            fig, ax = plt.subplots(figsize=(max(4, 0.25 * len(values)), 3))
            ax.bar(range(len(values)), list(values.values()))
            ax.set_xticks(range(len(values)), list(values), rotation=90, fontsize=6)
            ax.set_ylabel("normalized effect")
            ax.set_title(f"{concept}: {self.direction} patching")
            fig.tight_layout()
            ctx.save_plot(fig, f"effects-{concept}")
        return {"effects": effects}


@register_method
class Attribute(PerConcept, MethodSpec):
    """Attribution patching of every head at once, checked against exact patching."""

    summary_line = "attribution patching of all heads, with its rank agreement to exact patching"
    exports = ("scores", "spearman")

    method: Literal["attribute"] = Field(description="Gradient-based estimates for all heads.")
    layers: list[int] | None = Field(default=None, description="Cross layers (default all).")
    check_heads: int = Field(
        default=8,
        ge=0,
        description="Heads patched exactly to report the Spearman correlation of the estimates (0: skip).",
    )
    gradient: Literal["auto", "final", "local"] = Field(
        default="auto",
        description="Differentiate the metric of the final output through the "
        "whole sampler (`final`: SynthMusic), or a per-step distance of the denoiser output "
        "(`local`: any model); `auto` takes `final` where the model allows it.",
    )

    def unit_cost(self, unit: Unit, ctx: StepContext) -> Any:
        from interp.attribution import attribute_cost, gradient_metric
        from interp.patching import sweep_cost

        structure, base, n_pairs, n_seeds, metric = self._planned(unit, ctx)
        heads = candidates(self, ctx, catalog=structure.catalog)
        cost = attribute_cost(base, n_pairs, n_seeds, gradient_metric(structure, metric, self.gradient))
        if self.check_heads >= 3:
            checked = len(_check_sample([h.name for h in heads], self.check_heads))
            sizes = (n_pairs, n_seeds, checked)
            check = sweep_cost(
                structure, base, *sizes, metric, steps=self.patch_steps, batch_size=self.batch_size
            )
            cost = cost + check.labelled("exact check")
        return cost

    def run_unit(self, unit: Unit, ctx: StepContext) -> list[Row]:
        from interp.attribution import attribute, gradient_metric, rank_agreement
        from interp.patch_variants import single_site_variants
        from interp.patching import sweep

        concept, pairs, adapter, seeds, base = self._inputs(unit, ctx)
        heads = candidates(self, ctx)
        metric = build_metric(self.metric, adapter, self.scorer_model)
        estimates = attribute(
            adapter,
            base,
            pairs,
            seeds,
            heads,
            steps=self.patch_steps,
            progress=False,
            metric=gradient_metric(adapter, metric, self.gradient),
        )
        rows = [
            Row("attribution", v, concept=concept, site=k, steps=str(self.patch_steps), branch="cond")
            for k, v in estimates.scores.items()
        ]
        if self.check_heads >= 3:
            sample = _check_sample(estimates.ranking(), self.check_heads)
            exact = sweep(
                adapter,
                base,
                pairs,
                seeds,
                single_site_variants(sample),
                metric,
                steps=self.patch_steps,
                branch="cond",
                batch_size=self.batch_size,
                progress=False,
            ).effects()
            rho = rank_agreement(estimates.scores, {k: e.mean for k, e in exact.items()})
            rows.append(Row("spearman_vs_exact", rho, concept=concept, labels={"heads_checked": len(sample)}))
        return rows

    def finalize(self, ctx: StepContext) -> dict[str, Any]:
        scores: dict[str, dict[str, float]] = {}
        spearman: dict[str, float] = {}
        for row in ctx.rows:
            assert row.concept is not None  # every row of the step names its concept
            if row.metric == "attribution":
                assert row.site is not None  # and an attribution row its head
                scores.setdefault(row.concept, {})[row.site] = row.value
            else:
                spearman[row.concept] = row.value
        return {"scores": scores, "spearman": spearman}
