"""The ``when`` spec step: time-resolved patching, over :mod:`interp.time_patching`.

Per concept it patches each site (the located heads one at a time and together, each
layer's text input, the whole prompt) over windows of denoising steps, and reports by
which step the concept is fixed. Example::

    - name: when
      method: when
      pairs: {source: synthmusic, concepts: [tempo, drums], per_concept: 4}
      sites: {from: locate, key: subsets}   # the heads an earlier locate step found
      window: 5                             # 5 windows of 5 steps out of 25
"""

import math
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from interp.experiments.context import StepContext
from interp.experiments.fields import Ref, Refable, SiteStr
from interp.experiments.methods import MethodSpec, register_method
from interp.experiments.units import Row, Unit
from interp.spec_steps.common import PairSettings, build_metric, by_concept, check_pairs, step_pairs

if TYPE_CHECKING:  # what the field holds once validated
    SiteChoice = Ref | list[str] | dict[str, list[str]]
else:  # sites, one list per concept, or a reference to an earlier step's result
    SiteChoice = Refable(list[SiteStr] | dict[str, list[SiteStr]])

#: Labels of the site sets patched together.
TOGETHER = "heads"
PROMPT = "prompt"


@register_method
class When(PairSettings, MethodSpec):
    """When in the denoising trajectory each concept is decided (time-resolved patching)."""

    summary_line = "time-resolved patching: step window x site effects, and by which step a concept is fixed"
    exports = ("decided", "lines", "fixed_by")

    method: Literal["when"] = Field(description="Patch sites over windows of denoising steps.")
    sites: SiteChoice | None = Field(
        default=None,
        description="Sites to time, each alone and all together (e.g. {from: locate, key: subsets}: "
        "the heads located per concept, or one list for every concept); default: none, only "
        "the layers' text inputs and the prompt.",
    )
    layers: list[int] | None = Field(
        default=None, description="Cross layers whose text input is timed (default all)."
    )
    layer_text: bool = Field(default=True, description="Time each chosen layer's text input (TADA's sites).")
    prompt: bool = Field(
        default=True,
        description="Time every layer's text input together: the whole prompt, whose full patch "
        "is the clean run on the patched branch.",
    )
    window: int = Field(
        default=5,
        ge=1,
        description="Fixed windows of this many denoising steps (the default is capped at the schedule's length).",
    )
    windows: list[str] | None = Field(
        default=None,
        description="Explicit fixed windows 'start:stop' (half-open: '0:5' is steps 0-4), instead of `window`.",
    )
    every: int | None = Field(
        default=None,
        ge=1,
        description="Boundaries k of the cumulative windows 'up to step k' (0:k) and 'from step k "
        "on' (k:N), every this many steps (default: `window`).",
    )
    fraction: float = Field(
        default=0.9, gt=0, le=1, description="Share of the full effect for 'fixed by step k' (docs/time.md)."
    )
    min_effect: float = Field(
        default=0.05,
        ge=0,
        description="A site whose full patch restores less than this (in size) has no step it is fixed by.",
    )

    def check(self, ctx: Any) -> None:
        check_pairs(self, ctx)
        n = ctx.generation.num_steps if ctx.generation is not None else None
        if n is not None and self.window > n and self.windows is None and "window" in self.model_fields_set:
            ctx.error(
                "window",
                f"a window of {self.window} steps is longer than the {n} denoising steps",
                self.window,
            )
        if n is not None and self.every is not None and self.every > n:
            ctx.error(
                "every",
                f"cumulative windows every {self.every} steps exceed the {n} denoising steps",
                self.every,
            )
        self._check_windows(ctx, n)
        if isinstance(self.sites, list) and not self.sites:
            ctx.error(
                "sites",
                "empty list of sites: give sites such as ['cross.0.head.1'], {from: locate, key: "
                "subsets}, or leave `sites` out to time the layers' text inputs only",
            )
        if isinstance(self.sites, dict) and not any(self.sites.values()):
            ctx.error("sites", "no concept has any site: give at least one, or leave `sites` out")
        if self.sites is None and not self.layer_text and not self.prompt:
            ctx.error(
                "sites", "nothing to time: give `sites`, or keep `layer_text` or `prompt` (both default true)"
            )

    def _check_windows(self, ctx: Any, n: int | None) -> None:
        from interp.errors import SelectionError
        from interp.windows import Window

        if self.windows is not None and not self.windows:
            ctx.error("windows", "empty list of windows: give windows like ['0:5', '5:25'], or leave it out")
        bad = False
        for i, text in enumerate(self.windows or []):
            try:
                window = Window.parse(text)
                if n is not None:
                    window.check(n)
            except SelectionError as error:
                bad = True
                ctx.error(f"windows[{i}]", str(error).rstrip("."), text)
        if n is None or bad or (self.windows is not None and not self.windows):
            return
        if self.every is not None and self.every < 1:
            return  # refused by its field's own check
        try:
            self._window_plan(n)  # more than interp.windows.MAX_WINDOWS distinct windows
        except SelectionError as error:
            ctx.error("windows" if self.windows is not None else "window", str(error).rstrip("."))

    def plan(self, ctx: StepContext) -> list[Unit]:
        groups = by_concept(step_pairs(self, ctx))
        return [Unit(f"c-{concept}", {"concept": concept}) for concept in groups]

    def _sites(self, concept: str) -> list[str]:
        sites = self.sites  # references are resolved before a step runs
        if isinstance(sites, dict):
            return list(sites.get(concept, []))
        return list(sites) if isinstance(sites, list) else []

    def _variants(self, concept: str, ctx: StepContext, catalog: Any = None) -> list[Any]:
        from interp.patch_variants import Variant

        catalog = ctx.adapter.catalog if catalog is None else catalog
        sites = [s.name for s in catalog.parse_many(self._sites(concept))]
        variants = [Variant.of([s]) for s in sites]
        if len(sites) > 1:
            variants.append(Variant.of(sites, label=TOGETHER))
        texts = catalog.where(attention="cross", component="text")
        if self.layer_text:
            chosen = [t for t in texts if self.layers is None or t.layer in self.layers]
            variants += [Variant.of([t]) for t in chosen if t.name not in sites]
        if self.prompt:
            variants.append(Variant.of(texts, label=PROMPT))
        return variants

    def _headline(self, concept: str) -> str:
        """The site whose decision is the concept's one-line summary."""
        sites = self._sites(concept)
        if len(sites) > 1:
            return TOGETHER
        if sites:
            return sites[0]
        return PROMPT if self.prompt else ""

    def _window_plan(self, n: int) -> Any:
        """The windows of a schedule of ``n`` steps (a run's and its count's)."""
        from interp.windows import WindowPlan, even_windows

        size = min(self.window, n)  # the default window (5) on a shorter schedule: one window
        fixed = self.windows if self.windows is not None else even_windows(n, size)
        every = self.every or size
        return WindowPlan(n, fixed, range(0, n + 1, every))

    def cost_note(self) -> str:
        if self.sites is None or isinstance(self.sites, (list, dict)):
            return ""
        return (
            "lower bound: the sites taken from an earlier step are known when it has run, and are not counted"
        )

    def unit_cost(self, unit: Unit, ctx: StepContext) -> Any:
        """The sweep of every site over every window (sites from an earlier step's result
        are unknown before it runs: counted without them, a lower bound)."""
        from interp.time_patching import time_resolved_patching_cost

        concept = unit.params["concept"]
        pairs = by_concept(step_pairs(self, ctx))[concept]
        structure = ctx.structure
        return time_resolved_patching_cost(
            structure,
            ctx.request(["-"], [0]),
            len(pairs),
            len(ctx.generation.seeds),
            len(self._variants(concept, ctx, structure.catalog)),
            build_metric(self.metric, structure, self.scorer_model),
            windows=self._window_plan(ctx.generation.num_steps),
            batch_size=self.batch_size,
        ).labelled("windows")

    def run_unit(self, unit: Unit, ctx: StepContext) -> list[Row]:
        from interp.plots import plot_time_map
        from interp.time_patching import time_resolved_patching

        concept = unit.params["concept"]
        pairs = by_concept(step_pairs(self, ctx))[concept]
        n = ctx.generation.num_steps
        plan = self._window_plan(n)
        result = time_resolved_patching(
            ctx.adapter,
            ctx.request(["-"], [0]),
            pairs,
            list(ctx.generation.seeds),
            self._variants(concept, ctx),
            build_metric(self.metric, ctx.adapter, self.scorer_model),
            windows=plan,
            branch=self.branch,
            batch_size=self.batch_size,
            progress=False,
        )
        ctx.save_json(f"when-{concept}", result.summary(self.fraction, self.min_effect))
        ctx.save_plot(plot_time_map(result, self.fraction, self.min_effect), f"when-{concept}")
        kinds = {w: "fixed" for w in plan.fixed}
        rows = [
            Row(
                "window_effect",
                e.mean,
                concept=concept,
                site=site,
                steps=window,
                branch=self.branch,
                labels={"ci_low": e.ci_low, "ci_high": e.ci_high, "n": e.n, **_kind(window, n, kinds)},
            )
            for (window, site), e in result.effects.items()
        ]
        headline = self._headline(concept) or result.sites[-1]
        for site in result.sites:
            decision = result.decided(site, self.fraction, self.min_effect)
            rows.append(
                Row(
                    "fixed_by",
                    math.nan if decision.step is None else float(decision.step),
                    concept=concept,
                    site=site,
                    branch=self.branch,
                    labels={
                        "fraction": self.fraction,
                        "num_steps": n,
                        "full_effect": decision.full,
                        "reached": decision.reached,
                        "late": decision.late,
                        "settable_from": decision.settable_from,
                        "settable": decision.settable,
                        "headline": site == headline,
                        "line": decision.line(concept),
                    },
                )
            )
        return rows

    def finalize(self, ctx: StepContext) -> dict[str, Any]:
        decided: dict[str, dict[str, Any]] = {}
        fixed_by: dict[str, dict[str, float | None]] = {}
        for row in ctx.rows:
            if row.metric != "fixed_by" or row.concept is None or row.site is None:
                continue
            step = None if math.isnan(row.value) else int(row.value)
            fixed_by.setdefault(row.concept, {})[row.site] = step
            if row.labels.get("headline"):
                labels = {k: v for k, v in row.labels.items() if k != "headline"}
                decided[row.concept] = {"site": row.site, "fixed_by": step, **labels}
        return {
            "decided": decided,
            "lines": {c: d["line"] for c, d in decided.items()},
            "fixed_by": fixed_by,
        }


def _kind(window: str, n: int, fixed: dict[Any, str]) -> dict[str, bool]:
    """Which families a window belongs to: fixed, up to step k, from step k on."""
    from interp.windows import Window

    w = Window.parse(window)
    return {"fixed": w in fixed, "up_to": w.start == 0, "from": w.stop == n}
