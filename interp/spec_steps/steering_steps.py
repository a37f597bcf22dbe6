"""The ``caa`` experiment method: contrastive activation addition at located heads vs
every layer, evaluated over an alpha grid (alignment vs preservation, AUC, audio).

Example (after a ``locate`` step named ``locate``)::

    - name: steer_mood
      method: caa
      concept: mood
      target: happy
      sites: {from: locate, key: subsets}     # the heads located for 'mood'
      pairs: {source: synthmusic, per_concept: 24}
      alphas: [-8, -4, 0, 4, 8]
"""

from typing import Any, Literal

from pydantic import Field

from interp.errors import TadaError
from interp.experiments.context import StepContext
from interp.experiments.fields import BranchName, Refable, SiteStr, StepWindow, StrictModel
from interp.experiments.methods import MethodSpec, register_method
from interp.experiments.metric_specs import MetricSpec
from interp.experiments.units import Row, Unit
from interp.metrics import MetricScorer
from interp.spec_steps.common import PairsSpec, build_metric


def steering_prompts(
    pairs: PairsSpec, concept: str, target: str, eval_prompts: int
) -> tuple[list[str], list[str], list[str]]:
    """(positive, negative, evaluation) prompts for steering ``concept`` towards ``target``.

    Positive and negative prompts (for vectors or feature selection) come from the pair
    source with ``pairs.seed``; the evaluation prompts, which lack the target value, from
    ``pairs.seed + 1``, so they are disjoint draws.
    """
    from interp.pairsources import pairs_from

    positive, negative = _split(pairs_from(pairs.source, [concept], pairs.per_concept, pairs.seed), target)
    held = pairs_from(pairs.source, [concept], max(4 * eval_prompts, 8), pairs.seed + 1)
    _, evaluation = _split(held, target)
    if len(positive) < 2 or not evaluation:
        raise TadaError(
            f"the pair source {pairs.source!r} gave too few pairs with "
            f"{concept} = {target!r}; raise pairs.per_concept"
        )
    return positive, negative, evaluation[:eval_prompts]


def _split(pairs: list, target: str) -> tuple[list[str], list[str]]:
    """(positive, negative) prompts: the side of each pair that has ``target``."""
    positive, negative = [], []
    for pair in pairs:
        if pair.clean_value == target:
            positive.append(pair.clean)
            negative.append(pair.corrupted)
        elif pair.corrupted_value == target:
            positive.append(pair.corrupted)
            negative.append(pair.clean)
    return positive, negative


class SteeringSettings(StrictModel):
    """Fields and inputs every steering method shares (mixed into ``caa`` and ``sae-steer``)."""

    concept: str = Field(description="Concept to steer, as the pair source names it (e.g. mood).")
    target: str = Field(description="Value to steer towards (e.g. happy).")
    pairs: PairsSpec = Field(description="Pairs giving positive (target) and negative prompts.")
    eval_prompts: int = Field(
        default=4,
        ge=1,
        description="Prompts without the target value "
        "that are steered and scored (disjoint from the selection prompts).",
    )
    alphas: list[float] = Field(
        default=[-8.0, -4.0, 0.0, 4.0, 8.0],
        min_length=2,
        description="Steering strengths (0 is always included).",
    )
    metric: MetricSpec = Field(
        default=MetricSpec(name="concept"),
        description="Alignment score of the steered output (see locate; any registered metric).",
    )
    scorer_model: str | None = Field(default=None, description="Checkpoint of the 'clap' scorer.")
    patch_steps: StepWindow = Field(default="all", description="Denoising steps to steer.")
    branch: BranchName = Field(default="cond", description="CFG branch to steer.")
    budget: float = Field(
        default=0.5,
        gt=0,
        description="Preservation budget of the AUC (distance to the alpha = 0 output, relative).",
    )
    distance: Literal["audio", "latents"] = Field(
        default="audio",
        description="Preservation measured on decoded audio or on the final "
        "latents (for SynthMusic the latents are the spectrogram, free of Griffin-Lim phase).",
    )

    def check(self, ctx: Any) -> None:
        from interp.pairsources import sources

        if self.pairs.source not in sources():
            ctx.error("pairs.source", f"unknown pair source; valid: {sorted(sources())}", self.pairs.source)

    def steering_work(self, ctx: StepContext) -> tuple[list[str], list[str], Any]:
        """(positive prompts, negative prompts, the evaluation request): no model needed.

        The evaluation request holds the prompts to steer, one seed each (0, 1, ...).
        """
        positive, negative, evaluation = steering_prompts(
            self.pairs, self.concept, self.target, self.eval_prompts
        )
        return positive, negative, ctx.request(evaluation, list(range(len(evaluation))))

    def steering_inputs(self, ctx: StepContext) -> tuple[list[str], list[str], Any, Any]:
        """(positive prompts, negative prompts, the evaluation request, the concept scorer)."""
        positive, negative, request = self.steering_work(ctx)
        scorer = MetricScorer(build_metric(self.metric, ctx.adapter, self.scorer_model))
        return positive, negative, request, scorer


@register_method
class CAA(SteeringSettings, MethodSpec):
    """Steer one concept value with CAA vectors, at chosen sites and at every layer."""

    summary_line = "contrastive activation addition at located heads vs every layer"
    exports = ("auc", "sites")
    needs_catalog = True

    method: Literal["caa"] = Field(description="Contrastive activation addition.")
    sites: Refable(list[SiteStr] | dict[str, list[SiteStr]]) | None = Field(  # pyright: ignore[reportInvalidTypeForm]  # Refable() builds the pydantic type at runtime
        default=None,
        description="Where to steer (e.g. {from: locate, key: subsets}: the "
        "heads located for `concept`); default: only the all-layer baseline.",
    )
    all_layers: bool = Field(
        default=True,
        description="Also steer every cross-attention layer's output (the paper's 'everywhere' baseline).",
    )
    renormalize: bool = Field(default=False, description="Keep each activation's norm.")

    def check(self, ctx: Any) -> None:
        super().check(ctx)
        if self.sites is None and not self.all_layers:
            ctx.error("sites", "nothing to steer: give sites, or set all_layers: true")

    def plan(self, ctx: StepContext) -> list[Unit]:
        labels = (["localized"] if self.sites is not None else []) + (
            ["all_layers"] if self.all_layers else []
        )
        return [Unit(label, {"label": label}) for label in labels]

    def _sites(self, label: str, ctx: StepContext) -> list[str]:
        if label == "all_layers":
            return [s.name for s in ctx.adapter.catalog.where(attention="cross", component="out")]
        sites = self.sites
        assert sites is not None  # plan() makes a 'localized' unit only when sites are given
        if isinstance(sites, dict):
            if self.concept not in sites or not sites[self.concept]:
                raise TadaError(
                    f"no sites for concept {self.concept!r} in {sorted(sites)}; "
                    f"the referenced step located none"
                )
            sites = sites[self.concept]
        return list(sites)

    def _settings(self) -> Any:
        from interp.steering.workflow import CAASettings

        return CAASettings(
            steps=self.patch_steps,
            branch=self.branch,
            renormalize=self.renormalize,
            budget=self.budget,
            distance=self.distance,
        )

    def unit_cost(self, unit: Unit, ctx: StepContext) -> Any:
        """The vectors' prompt sets, then one generation per alpha (any number of sites)."""
        from interp.steering.workflow import run_caa_cost

        positive, negative, request = self.steering_work(ctx)
        return run_caa_cost(request, len(positive), len(negative), sorted(set(self.alphas)), self._settings())

    def run_unit(self, unit: Unit, ctx: StepContext) -> list[Row]:
        from interp.steering.workflow import run_caa

        label = unit.params["label"]
        adapter = ctx.adapter
        positive, negative, request, scorer = self.steering_inputs(ctx)
        settings = self._settings()
        out_dir = ctx.out_dir / "steering" / ctx.name / label
        sites = self._sites(label, ctx)
        result = run_caa(
            adapter,
            request,
            positive,
            negative,
            sites,
            sorted(set(self.alphas)),
            scorer,
            self.concept,
            self.target,
            settings=settings,
            label=f"caa-{label}",
            out_dir=out_dir,
        )
        ctx.record_folder(out_dir)
        rows = [
            Row(
                name,
                float(row[name]),
                concept=self.concept,
                prompt=row.get("prompt"),
                site="+".join(sites),
                steps=str(self.patch_steps),
                branch=self.branch,
                seed=row.get("seed"),
                labels={"alpha": row["alpha"], "label": label},
            )
            for row in result.rows
            for name in ("alignment", "distance")
        ]
        summary = result.summary()
        rows.append(
            Row(
                "auc",
                float(summary["auc"]),
                concept=self.concept,
                site="+".join(sites),
                labels={
                    "label": label,
                    "reached_budget": summary["auc_reached_budget"],
                    "auc_negative": summary["auc_negative"],
                },
            )
        )
        return rows

    def finalize(self, ctx: StepContext) -> dict[str, Any]:
        auc = {
            r.labels["label"]: {
                "auc": r.value,
                "auc_negative": r.labels["auc_negative"],
                "reached_budget": r.labels["reached_budget"],
            }
            for r in ctx.rows
            if r.metric == "auc"
        }
        sites = {
            r.labels["label"]: r.site.split("+") for r in ctx.rows if r.metric == "auc" and r.site is not None
        }
        return {"auc": auc, "sites": sites, "concept": self.concept, "target": self.target}
