"""The ``generate`` method: audio for every prompt and seed, scored by the metrics.

The reference plug-in: one unit per prompt (all seeds batched), optional edits applied
during generation (zero or scale a site on chosen steps and branch), a WAV per sample,
one row per sample and metric, and a bar plot per metric in ``finalize``.

Example step::

    - name: no_head_2
      method: generate
      edits:
        - {site: cross.1.head.2, op: zero, steps: "0:2", branch: cond}
"""

from typing import Any, Literal

from pydantic import Field, model_validator

from interp.experiments.context import StepContext
from interp.experiments.fields import BranchName, SiteStr, StepWindow, StrictModel
from interp.experiments.methods import MethodSpec, register_method
from interp.experiments.units import Row, Unit
from interp.plots import bar_plot


def _slug(text: str, limit: int = 40) -> str:
    words = "".join(c if c.isalnum() else " " for c in text.lower()).split()
    return "_".join(words)[:limit].rstrip("_") or "prompt"


class EditSpec(StrictModel):
    """A simple edit applied while generating."""

    site: SiteStr = Field(description="Site to edit, e.g. 'cross.7.head.3'.")
    op: Literal["zero", "scale"] = Field(description="'zero' the activation or 'scale' it.")
    factor: float | None = Field(default=None, description="Scale factor (op 'scale' only).")
    steps: StepWindow = Field(default="all", description="Denoising steps the edit applies to.")
    branch: BranchName = Field(default="both", description="CFG branch the edit applies to.")

    @model_validator(mode="after")
    def _factor_matches_op(self) -> "EditSpec":
        if self.op == "scale" and self.factor is None:
            raise ValueError("op 'scale' needs a factor, e.g. factor: 0.5")
        if self.op == "zero" and self.factor is not None:
            raise ValueError("op 'zero' takes no factor; use op 'scale' to scale")
        return self

    def build(self) -> Any:
        """The core :class:`~interp.edits.Edit`."""
        from interp.edits import Edit, Scale, Zero

        op = Zero() if self.op == "zero" else Scale(float(self.factor or 0.0))
        return Edit(self.site, op, steps=self.steps, branch=self.branch)


@register_method
class Generate(MethodSpec):
    """Generate audio for the step's prompts and seeds, optionally with edits."""

    summary_line = "generate audio for a prompt set (optionally with edits) and score it"
    exports = ("audio", "metrics", "units")
    scores_with_metrics = True

    method: Literal["generate"] = Field(description="Generate audio and score it.")
    edits: list[EditSpec] = Field(default_factory=list, description="Edits applied during every generation.")
    save_audio: bool = Field(default=True, description="Write a WAV file per sample.")

    def check(self, ctx: Any) -> None:
        """A generate step needs prompts."""
        if ctx.prompts == []:
            ctx.error(
                "prompts",
                "a generate step needs prompts, and the spec has no prompt "
                'set; add e.g. `prompts: ["a sad piano piece"]` at the top level',
            )

    def plan(self, ctx: StepContext) -> list[Unit]:
        """One unit per prompt; its samples are the step's seeds."""
        return [Unit(f"p{index:04d}", {"prompt": index}) for index in range(len(ctx.prompts))]

    def _request(self, unit: Unit, ctx: StepContext) -> Any:
        prompt = ctx.prompts[unit.params["prompt"]]
        seeds = list(ctx.generation.seeds)
        return ctx.request([prompt.text] * len(seeds), seeds)

    def unit_cost(self, unit: Unit, ctx: StepContext) -> Any:
        """The generation, and the unedited reference when edits meet a metric that uses one."""
        from interp.cost import Cost
        from interp.metrics import get_metric

        request = self._request(unit, ctx)
        cost = Cost.of(request, label="generate")
        if self.edits and any(get_metric(m.name).reference for m in ctx.metrics):
            cost = cost + Cost.of(request, label="reference")
        return cost

    def run_unit(self, unit: Unit, ctx: StepContext) -> list[Row]:
        """Generate one prompt for every seed, save WAVs, score."""
        prompt = ctx.prompts[unit.params["prompt"]]
        seeds = list(ctx.generation.seeds)
        request = self._request(unit, ctx)
        edits = [e.build() for e in self.edits]
        output = ctx.generate(request, edits).output
        reference = (lambda: ctx.generate(request).output) if edits else (lambda: output)
        scores = ctx.score(output, request, [prompt] * len(seeds), reference)
        if self.save_audio and output.audio is not None:
            for i, seed in enumerate(seeds):
                ctx.save_audio(f"{unit.id}-{_slug(prompt.text)}-s{seed}", output.audio[i], output.sample_rate)
        site = "+".join(e.site for e in self.edits) or None
        steps = "+".join(str(e.steps) for e in self.edits) or None
        branch = "+".join(e.branch for e in self.edits) or None
        return [
            Row(metric, value, concept=prompt.concept, prompt=prompt.text, site=site,
                steps=steps, branch=branch, seed=seed)
            for metric, values in scores.items()
            for seed, value in zip(seeds, values, strict=True)
        ]  # fmt: skip

    def finalize(self, ctx: StepContext) -> dict[str, Any]:
        """Per-metric statistics, a bar plot per metric, the list of audio files."""
        rows = ctx.rows
        stats: dict[str, dict[str, float]] = {}
        for metric in dict.fromkeys(r.metric for r in rows):
            values = [r.value for r in rows if r.metric == metric]
            stats[metric] = {
                "mean": sum(values) / len(values),
                "min": min(values),
                "max": max(values),
                "n": len(values),
            }
            ctx.save_plot(bar_plot(_groups(rows, metric), metric, title=f"{ctx.name}: {metric}"), metric)
        audio = [a for result in ctx.results for a in result.artifacts if a.endswith(".wav")]
        return {"units": len(ctx.results), "metrics": stats, "audio": audio}


def _groups(rows: list[Row], metric: str) -> dict[str, list[float]]:
    """Values of ``metric`` per concept (or per prompt when unlabelled)."""
    groups: dict[str, list[float]] = {}
    for row in rows:
        if row.metric == metric:
            groups.setdefault(row.concept or row.prompt or row.unit or "?", []).append(row.value)
    return groups
