"""The ``locate`` step: per concept, the smallest head subset that restores the concept
(:func:`interp.localization.locate`), with its necessity, TADA's layer impact I(l), the
significant heads, the report's head grid and, optionally, split-half stability.
Example::

    - name: locate
      method: locate
      pairs: {source: synthmusic, concepts: [mood, tempo], per_concept: 6}
      fraction: 0.8
"""

import json
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from pydantic import Field

from interp.batching import BatchSize
from interp.experiments.context import StepContext
from interp.experiments.methods import MethodSpec, register_method
from interp.experiments.shared_work import PlannedSweep
from interp.experiments.units import Row, Unit
from interp.spec_steps.common import build_metric
from interp.spec_steps.per_concept import PerConcept, candidates, effect_rows
from interp.spec_steps.significance_rows import significance_rows

if TYPE_CHECKING:
    from interp.localization import Selection
    from interp.selection import StepsLike


class _LocateSettings(TypedDict):
    """The keyword arguments of ``locate`` (and ``split_stability``) a ``locate`` step sets."""

    candidates: list[Any]
    ranking: Literal["patching", "attribution"]
    fraction: float
    max_heads: int
    steps: "StepsLike"
    branch: str
    batch_size: BatchSize
    progress: bool
    selection: "Selection"
    alpha: float
    min_effect: float


class _CostSettings(TypedDict):
    """The keyword arguments of ``locate_cost`` (and ``split_stability_cost``) a step sets."""

    n_candidates: int
    ranking: Literal["patching", "attribution"]
    max_heads: int
    steps: "StepsLike"
    batch_size: BatchSize
    selection: "Selection"


@register_method
class Locate(PerConcept, MethodSpec):
    """Locate, per concept, the smallest head subset that restores the concept."""

    summary_line = "locate minimal concept-carrying head subsets (patching, necessity, I(l))"
    exports = ("subsets", "heads", "layer_impact", "significant")

    method: Literal["locate"] = Field(description="Locate concept heads.")
    layers: list[int] | None = Field(default=None, description="Cross layers (default all).")
    ranking: Literal["patching", "attribution"] = Field(
        default="patching", description="How heads are ranked before the greedy search."
    )
    fraction: float = Field(
        default=0.8, gt=0, le=1, description="Share of the clean-corrupted gap the subset must restore."
    )
    max_heads: int = Field(default=16, ge=1, description="Largest subset tried.")
    layer_impact: bool = Field(
        default=True, description="Also patch each layer's text input (TADA's sites) and report I(l)."
    )
    audio: bool = Field(
        default=True,
        description="Save the first pair's clean, corrupted and subset-patched audio, and "
        "each grid head's patched audio for the report (first seed).",
    )
    audio_heads: int = Field(
        default=24,
        ge=0,
        description="Heads of the report's grid that get a patched clip to listen to (the "
        "largest |effect| first; one generation each); the other cells are drawn silent.",
    )
    stability: bool = Field(
        default=False,
        description="Also locate on the even- and odd-"
        "numbered pairs separately and report the overlap of the two "
        "subsets (Jaccard); doubles the cost.",
    )
    selection: Literal["greedy", "significant", "both"] = Field(
        default="greedy",
        description="The located subset: `greedy` (smallest ranking prefix "
        "restoring `fraction`), `significant` (heads with a non-zero effect at false discovery "
        "rate `alpha`, by a sign-flip test over pairs, then checked for sufficiency and "
        "necessity) or `both` (greedy subset, significant set reported alongside).",
    )
    alpha: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="False discovery rate of the significant heads (Benjamini-Hochberg).",
    )
    min_effect: float = Field(
        default=0.0,
        ge=0,
        description="Smallest normalized effect of "
        "interest: heads are tested for |effect| > min_effect instead "
        "of effect != 0 (with a near-noiseless scorer, tiny effects are "
        "significant too).",
    )
    power_effect: float = Field(
        default=0.1,
        gt=0,
        description="Normalized effect for the "
        "power estimate: the `pairs_needed` row says how many pairs "
        "find a head of this effect at q < alpha with 90% power, from "
        "this run's per-pair variance.",
    )

    def check(self, ctx: Any) -> None:
        super().check(ctx)
        if self.selection != "greedy" and self.ranking != "patching":
            ctx.error(
                "selection",
                f"selection {self.selection!r} tests every head's patching "
                f"effect, which needs `ranking: patching` (got {self.ranking!r})",
                self.selection,
            )

    def cost_note(self) -> str:
        if self.selection == "greedy":
            return ""
        return "upper bound: the significant heads' check runs only if some head is significant"

    def unit_cost(self, unit: Unit, ctx: StepContext) -> Any:
        """Counted exactly for ``selection: greedy``; the significant heads' check and the
        audio of a ``significant`` subset run only when some head is significant, and are
        counted as if one were (an upper bound)."""
        from interp.listening import patched_generations_cost
        from interp.localization import locate_cost, split_stability_cost

        structure, base, n_pairs, n_seeds, metric = self._planned(unit, ctx)
        n_candidates = len(candidates(self, ctx, catalog=structure.catalog))
        sizes = (structure, base, n_pairs, n_seeds, metric)
        settings = _CostSettings(
            n_candidates=n_candidates, ranking=self.ranking, max_heads=self.max_heads,
            steps=self.patch_steps, batch_size=self.batch_size, selection=self.selection,
        )  # fmt: skip
        cost = locate_cost(*sizes, layers=self.layer_impact, **settings)
        if self.audio:  # the located subset, then the heads of largest |effect|, one row each
            shown = min(self.audio_heads, n_candidates) + 1
            cost = cost + patched_generations_cost(base, shown, self.batch_size)
        if self.stability:
            cost = cost + split_stability_cost(*sizes, **settings)
        return cost

    def planned_sweeps(self, unit: Unit, ctx: StepContext) -> list[PlannedSweep]:
        """The sweeps that depend on no result (:func:`interp.localization.locate`), which
        other steps may share: each candidate head alone (``ranking: patching``), and the
        layer impact, every layer's text input alone. The prefix and noising sweeps depend
        on results, and the halves of ``stability`` are not declared."""
        structure, base, _, _, metric = self._planned(unit, ctx)
        _, pairs, seeds, _ = self._work(unit, ctx)
        sweeps = []
        if self.ranking == "patching":
            heads = candidates(self, ctx, catalog=structure.catalog)
            sweeps.append(PlannedSweep("heads", base, pairs, seeds, heads, metric, self._sweep_options()))
        if self.layer_impact:
            texts = structure.catalog.where(attention="cross", component="text")
            sweeps.append(PlannedSweep("layers", base, pairs, seeds, texts, metric, self._sweep_options()))
        return sweeps

    def run_unit(self, unit: Unit, ctx: StepContext) -> list[Row]:
        from interp.localization import locate
        from interp.plots import plot_head_heatmap, plot_prefix_curve
        from interp.spec_steps.head_grid import write_head_grid

        concept, pairs, adapter, seeds, base = self._inputs(unit, ctx)
        metric = build_metric(self.metric, adapter, self.scorer_model)
        settings = _LocateSettings(
            candidates=candidates(self, ctx), ranking=self.ranking, fraction=self.fraction,
            max_heads=self.max_heads, steps=self.patch_steps, branch=self.branch,
            batch_size=self.batch_size, progress=False, selection=self.selection,
            alpha=self.alpha, min_effect=self.min_effect,
        )  # fmt: skip
        result = locate(adapter, base, pairs, seeds, metric, layers=self.layer_impact, **settings)
        ctx.save_json(f"localization-{concept}", result.summary())
        ctx.save_plot(plot_head_heatmap(result), f"heads-{concept}")
        if result.prefix_effects:
            ctx.save_plot(plot_prefix_curve(result, self.fraction), f"prefix-{concept}")
        write_head_grid(
            result, pairs[0], seeds[0], base, ctx, audio_heads=self.audio_heads if self.audio else None,
            steps=self.patch_steps, branch=self.branch, batch_size=self.batch_size,
        )  # fmt: skip
        rows = effect_rows("head_effect", concept, result.head_effects, self)
        for row in rows:
            row.labels["in_subset"] = row.site in result.subset
        rows += significance_rows(result, rows, self.power_effect)
        rows += [
            Row(
                "prefix_effect",
                e.mean,
                concept=concept,
                labels={"k": k + 1, "ci_low": e.ci_low, "ci_high": e.ci_high},
            )
            for k, e in enumerate(result.prefix_effects)
        ]
        for row_metric, effect in (("restored", result.restored), ("necessity", result.necessity)):
            if effect is None:  # nothing selected (no head significant)
                continue
            rows.append(
                Row(
                    row_metric,
                    effect.mean,
                    concept=concept,
                    site="+".join(result.subset),
                    labels={
                        "ci_low": effect.ci_low,
                        "ci_high": effect.ci_high,
                        "reached": result.reached,
                        "size": len(result.subset),
                    },
                )
            )
        rows += [
            Row("layer_impact", v, concept=concept, site=f"cross.{layer}.text")
            for layer, v in result.layer_impact.items()
        ]
        if self.stability:
            from interp.localization import split_stability

            halves = split_stability(adapter, base, pairs, seeds, metric, **settings)
            ctx.save_json(f"localization-{concept}-even", halves.first.summary())
            ctx.save_json(f"localization-{concept}-odd", halves.second.summary())
            rows.append(
                Row(
                    "stability_jaccard",
                    halves.jaccard,
                    concept=concept,
                    labels={"first": "+".join(halves.first.subset), "second": "+".join(halves.second.subset)},
                )
            )
            rows.append(
                Row(
                    "stability_spearman",
                    halves.rank_correlation,
                    concept=concept,
                    labels={
                        "first_top": halves.first.ranking[0],
                        "second_top": halves.second.ranking[0],
                        "same_top_head": halves.same_top_head,
                    },
                )
            )
            if self.selection != "greedy":
                rows.append(
                    Row(
                        "stability_jaccard_significant",
                        halves.significant_jaccard,
                        concept=concept,
                        labels={
                            "first": "+".join(halves.first.significant),
                            "second": "+".join(halves.second.significant),
                        },
                    )
                )
        return rows

    def finalize(self, ctx: StepContext) -> dict[str, Any]:
        from interp.localization import overlap_matrix, shared_and_specific
        from interp.plots import plot_layer_impact_table, plot_overlap

        subsets: dict[str, list[str]] = {}
        impact: dict[str, dict[str, float]] = {}
        for row in ctx.rows:
            assert row.concept is not None  # every row of the step names its concept
            if row.metric == "head_effect" and row.labels.get("in_subset"):
                assert row.site is not None  # a head_effect row names its head
                subsets.setdefault(row.concept, []).append(row.site)
            if row.metric == "layer_impact":
                assert row.site is not None  # a layer_impact row names its layer's site
                impact.setdefault(row.concept, {})[row.site] = row.value
        concepts = list(dict.fromkeys(r.concept for r in ctx.rows if r.concept is not None))
        subsets = {c: sorted(subsets.get(c, [])) for c in concepts}
        names, matrix = overlap_matrix(subsets)
        if len(names) > 1:
            ctx.save_plot(plot_overlap(names, matrix), "overlap")
        if impact:
            ctx.save_plot(plot_layer_impact_table(impact), "layer-impact")
        stability = {r.concept: r.value for r in ctx.rows if r.metric == "stability_jaccard"}
        significant = {r.concept: r.value for r in ctx.rows if r.metric == "stability_jaccard_significant"}
        spearman = {r.concept: r.value for r in ctx.rows if r.metric == "stability_spearman"}
        return {
            "stability_jaccard": stability,
            "stability_spearman": spearman,
            "stability_jaccard_significant": significant,
            "significant": {
                c: sorted(
                    r.site
                    for r in ctx.rows
                    if r.concept == c
                    and r.metric == "head_effect"
                    and r.labels.get("significant")
                    and r.site is not None
                )
                for c in concepts
            },
            "subsets": subsets,
            "heads": sorted({h for hs in subsets.values() for h in hs}),
            "overlap": {"concepts": names, "jaccard": json.loads(json.dumps(matrix.tolist()))},
            "shared_and_specific": shared_and_specific(subsets),
            "layer_impact": impact,
        }
