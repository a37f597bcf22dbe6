"""Experiment methods for sparse autoencoders: ``sae-train`` and ``sae-steer``.

They live here, not in :mod:`interp`, because they need ``sae_lens``; the experiment
framework finds them through the ``tada_interp.methods`` entry point. Example::

    - name: saes
      method: sae-train
      sites: [cross.0.out]
      pairs: {source: synthmusic, per_concept: 16}
      training_steps: 2000
    - name: steer_sae
      method: sae-steer
      concept: tempo
      target: fast
      sae: {from: saes, key: saes}      # site -> directory, written by sae-train
      site: cross.0.out
      pairs: {source: synthmusic, per_concept: 24, seed: 1}
"""

from typing import Any, Literal

from pydantic import Field

from interp.errors import TadaError
from interp.experiments.context import StepContext
from interp.experiments.fields import BranchName, Refable, SiteStr
from interp.experiments.methods import MethodSpec, register_method
from interp.experiments.units import Row, Unit
from interp.spec_steps.common import PairsSpec
from interp.spec_steps.steering_steps import SteeringSettings


def _texts(pairs: PairsSpec | None, ctx: StepContext) -> list[str]:
    if pairs is not None:
        from interp.pairsources import pairs_from

        found = pairs_from(pairs.source, pairs.concepts, pairs.per_concept, pairs.seed)
        return [text for p in found for text in (p.clean, p.corrupted)]
    if not ctx.prompts:
        raise TadaError("sae-train needs prompts: give pairs: {source: ...} or a prompt set")
    return [p.text for p in ctx.prompts]


@register_method
class SAETrain(MethodSpec):
    """Cache activations at sites over a prompt set and train one SAE per site."""

    summary_line = "cache activations and train sparse autoencoders with sae-lens"
    exports = ("saes", "reports")
    needs_catalog = True

    method: Literal["sae-train"] = Field(description="Train SAEs on cached activations.")
    sites: list[SiteStr] = Field(min_length=1, description="Sites to train an SAE for each.")
    pairs: PairsSpec | None = Field(
        default=None,
        description="Prompts from a pair source (both sides of each pair); default: the step's prompts.",
    )
    branch: BranchName = Field(default="cond", description="CFG branch to cache.")
    architecture: Literal["batchtopk", "topk", "standard"] = Field(default="batchtopk")
    k: int = Field(default=24, ge=1, description="Active features per vector (TopK kinds).")
    expansion_factor: int = Field(default=4, ge=1, description="d_sae / d_in.")
    lr: float = Field(default=3e-4, gt=0, description="Learning rate.")
    training_steps: int = Field(default=2000, ge=1, description="Optimizer steps.")
    batch_size: int = Field(default=1024, ge=1, description="Vectors per step.")
    memory_budget_mb: int = Field(default=256, ge=1, description="RAM for cache shards.")

    def plan(self, ctx: StepContext) -> list[Unit]:
        return [Unit("train", {})]

    def _cache_work(self, ctx: StepContext) -> tuple[list[str], list[int], Any]:
        """The texts to cache, their seeds and the request."""
        texts = _texts(self.pairs, ctx)
        seeds = [ctx.generation.seeds[i % len(ctx.generation.seeds)] for i in range(len(texts))]
        return texts, seeds, ctx.request(texts, seeds)

    def unit_cost(self, unit: Unit, ctx: StepContext) -> Any:
        """The cached generations (training runs no denoiser)."""
        from saes.cache import cache_cost

        texts, seeds, request = self._cache_work(ctx)
        return cache_cost(request, len(texts), seeds=seeds)

    def run_unit(self, unit: Unit, ctx: StepContext) -> list[Row]:
        from saes.cache import cache_activations
        from saes.train import SAESettings, train_saes

        texts, seeds, request = self._cache_work(ctx)
        root = ctx.out_dir / "saes" / ctx.name
        cache = cache_activations(
            ctx.adapter,
            request,
            texts,
            self.sites,
            root / "cache",
            seeds=seeds,
            branch=self.branch,
            memory_budget_bytes=self.memory_budget_mb * 2**20,
            overwrite=True,
        )
        settings = SAESettings(
            architecture=self.architecture,
            k=self.k,
            expansion_factor=self.expansion_factor,
            lr=self.lr,
            training_steps=self.training_steps,
            batch_size=self.batch_size,
            branch=self.branch,
        )
        reports = train_saes(cache, settings, root / "models")
        rows = []
        for site, report in reports.items():
            values = report.as_dict()
            for metric in ("explained_variance", "l0", "dead_fraction"):
                if metric in values:
                    rows.append(
                        Row(
                            metric,
                            float(values[metric]),
                            site=site,
                            branch=self.branch,
                            labels={"path": str((root / "models" / site).relative_to(ctx.out_dir))},
                        )
                    )
        return rows

    def finalize(self, ctx: StepContext) -> dict[str, Any]:
        saes = {r.site: str(ctx.out_dir / r.labels["path"]) for r in ctx.rows}
        reports: dict[str | None, dict[str, float]] = {}
        for row in ctx.rows:
            reports.setdefault(row.site, {})[row.metric] = row.value
        return {"saes": saes, "reports": reports}


@register_method
class SAESteer(SteeringSettings, MethodSpec):
    """Steer a concept with the SAE features that separate it (TADA's SAE steering)."""

    summary_line = "steer with concept-selective SAE features (add decoder directions or clamp)"
    exports = ("auc",)

    method: Literal["sae-steer"] = Field(description="Steer with SAE features.")
    sae: Refable(str | dict[str, str]) = Field(  # pyright: ignore[reportInvalidTypeForm]  # Refable builds the pydantic type
        description="SAE directory, or {from: <sae-train step>, key: saes} (site -> directory)."
    )
    site: SiteStr | None = Field(default=None, description="Which SAE when `sae` maps sites.")
    k: int = Field(default=20, ge=1, description="Features selected per step.")
    score: Literal["tada", "diff", "cohen_d"] = Field(default="tada", description="Feature score.")
    mode: Literal["add", "clamp"] = Field(
        default="add",
        description="Add decoder directions, or clamp features inside the SAE (error term kept).",
    )

    def plan(self, ctx: StepContext) -> list[Unit]:
        return [Unit("steer", {})]

    def _settings(self) -> Any:
        from saes.workflow import SAESteeringSettings

        return SAESteeringSettings(
            k=self.k,
            score=self.score,
            mode=self.mode,
            steps=self.patch_steps,
            branch=self.branch,
            budget=self.budget,
            distance=self.distance,
        )

    def unit_cost(self, unit: Unit, ctx: StepContext) -> Any:
        """Feature selection over both prompt sets, then one generation per alpha."""
        from saes.workflow import sae_steering_cost

        positive, negative, request = self.steering_work(ctx)
        return sae_steering_cost(
            request, len(positive), len(negative), sorted(set(self.alphas)), self._settings()
        )

    def run_unit(self, unit: Unit, ctx: StepContext) -> list[Row]:
        from saes.workflow import run_sae_steering

        path = self.sae
        if isinstance(path, dict):
            if self.site is None or self.site not in path:
                raise TadaError(f"sae maps sites {sorted(path)}; choose one with site: <name>")
            path = path[self.site]
        positive, negative, request, scorer = self.steering_inputs(ctx)
        out_dir = ctx.out_dir / "steering" / ctx.name
        settings = self._settings()
        result = run_sae_steering(
            ctx.adapter,
            request,
            positive,
            negative,
            path,
            sorted(set(self.alphas)),
            scorer,
            self.concept,
            self.target,
            settings=settings,
            out_dir=out_dir,
        )
        ctx.record_folder(out_dir)
        summary = result.summary()
        rows = [
            Row(
                name,
                float(row[name]),
                concept=self.concept,
                seed=row.get("seed"),
                prompt=row.get("prompt"),
                labels={"alpha": row["alpha"]},
            )
            for row in result.rows
            for name in ("alignment", "distance")
        ]
        rows.append(
            Row(
                "auc",
                float(summary["auc"]),
                concept=self.concept,
                labels={"auc_negative": summary["auc_negative"]},
            )
        )
        return rows

    def finalize(self, ctx: StepContext) -> dict[str, Any]:
        auc = [r for r in ctx.rows if r.metric == "auc"]
        return {"auc": {"auc": auc[0].value, "auc_negative": auc[0].labels["auc_negative"]} if auc else {}}
