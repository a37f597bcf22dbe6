"""Time-resolved patching: *when* in the denoising trajectory is a concept decided?

For every site (a head, a layer's text input, or a set of them patched together) and
every window of denoising steps of a :class:`~interp.windows.WindowPlan`, patch the clean
run's activations into the corrupted run at the window's steps only, and measure the
normalized effect ``(m_patched - m_corrupted) / (m_clean - m_corrupted)``. The result is a
window x site effect map per concept (:class:`TimeMap`).

All windows and sites of a (pair, seed) unit share one baseline run (clean and corrupted
together); the patched rows of a window that starts at step ``k`` resume from the
corrupted run's latents before step ``k`` when the model can resume (the steps before the
window are identical to the corrupted run), and windows that start at the same step are
batched together (:func:`interp.patching.sweep`).

**"x% of the effect is fixed by step k"** (:meth:`TimeMap.decided`). Let ``F`` be the
effect of patching every step (the window ``0:N``) and ``U(k)`` the effect of patching
only the first ``k`` steps (the window ``0:k``). The concept is *x% fixed by step k* when
``k`` is the smallest window boundary such that ``U(k') >= x * F`` for every boundary
``k' >= k``: from step ``k`` on, the text the model sees no longer changes more than
``1 - x`` of the outcome that patching can change. ``U(N) = F`` by definition, so ``k``
always exists when ``F`` is not negligible (``|F| >= min_effect``); it is only resolved
at the plan's boundaries. The mirror question uses the windows "from step j on": the
effect is *still settable from step j* when ``j`` is the latest boundary such that the
window ``j':N`` alone restores ``x * F`` for every boundary ``j' <= j``.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from beartype import beartype

from interp.adapter import GenerationRequest, ModelAdapter
from interp.batching import BatchSize
from interp.cost import Cost
from interp.errors import SelectionError, TadaError
from interp.metrics import Metric
from interp.patching import Variant, sweep, sweep_cost
from interp.prompts import PromptPair
from interp.selection import Branch
from interp.sites import Site
from interp.statistics import Effect
from interp.windows import Window, WindowPlan


@dataclass(frozen=True)
class Decision:
    """When one site's effect is fixed (see the module docstring).

    Attributes:
        site: The site (variant label).
        fraction: The share ``x`` of the full effect asked for.
        step: The step ``k`` by which it is fixed; ``None`` when the full patch has no
            effect to fix (``|full| < min_effect``, or undefined).
        num_steps: The schedule's length ``N``.
        full: Effect ``F`` of patching every step.
        reached: ``U(k) / F``: the share the first ``k`` steps restore alone.
        late: ``R(k) / F``: the share the steps from ``k`` on restore alone (0 at ``k = N``).
        settable_from: The latest boundary ``j`` such that the steps from ``j'`` on, for
            every boundary ``j' <= j``, still set ``fraction`` of the effect alone
            (``R(j') >= fraction * F``): how late the text can still decide the concept.
        settable: ``R(j) / F`` at that boundary.
    """

    site: str
    fraction: float
    step: int | None
    num_steps: int
    full: float
    reached: float = math.nan
    late: float = math.nan
    settable_from: int | None = None
    settable: float = math.nan

    def line(self, concept: str) -> str:
        """One line for reports, e.g. ``tempo: 90% of the effect is fixed by step 6 of 25 ...``."""
        if self.step is None:
            return (
                f"{concept}: no effect to fix at {self.site} (patching every step restores "
                f"{self.full:.2f} of the gap)"
            )
        n = self.num_steps
        line = f"{concept}: {self.fraction:.0%} of the effect is fixed by step {self.step} of {n}"
        if self.step < n:
            line += f" (the first {self.step} steps alone restore {self.reached:.0%})"
        if self.settable_from:
            line += f", and steps {self.settable_from}-{n - 1} alone still set {self.settable:.0%} of it"
        return f"{line} [{self.site}, full patch {self.full:.2f}]"

    def as_dict(self) -> dict:
        return {
            "site": self.site,
            "fraction": self.fraction,
            "fixed_by": self.step,
            "num_steps": self.num_steps,
            "full_effect": self.full,
            "reached": self.reached,
            "late": self.late,
            "settable_from": self.settable_from,
            "settable": self.settable,
        }


@dataclass
class TimeMap:
    """Window x site effects of one concept.

    Attributes:
        concept: The concept.
        plan: The windows measured.
        sites: Site (variant) labels, in the order given.
        effects: ``(window label, site label)`` -> normalized effect with its bootstrap CI.
        direction: ``denoising`` (clean into corrupted) or ``noising``.
        rows: The sweep's rows (one per pair, seed, window and site), with ``window``
            and ``site`` keys.
    """

    concept: str
    plan: WindowPlan
    sites: list[str]
    effects: dict[tuple[str, str], Effect]
    direction: str = "denoising"
    rows: list[dict] = field(default_factory=list)

    def effect(self, window: Window | str, site: str) -> Effect:
        """The effect of patching ``site`` at ``window``'s steps."""
        key = (Window.parse(window).label, site)
        if key not in self.effects:
            raise TadaError(
                f"No effect for site {site!r} at window {key[0]}: measured sites "
                f"{self.sites}, windows {[w.label for w in self.plan.windows()]}."
            )
        return self.effects[key]

    def grid(self, windows: Sequence[Window]) -> np.ndarray:
        """Mean effects as a ``[window, site]`` array."""
        return np.array([[self.effect(w, s).mean for s in self.sites] for w in windows], dtype=float)

    def decided(self, site: str, fraction: float = 0.9, min_effect: float = 0.05) -> Decision:
        """By which step ``fraction`` of ``site``'s effect is fixed (module docstring)."""
        if not 0 < fraction <= 1:
            raise TadaError(f"fraction must be in (0, 1], got {fraction}; 0.9 reads '90% fixed by step k'.")
        n = self.plan.num_steps
        full = self.effect(self.plan.full, site).mean
        if not math.isfinite(full) or abs(full) < min_effect:
            return Decision(site, fraction, None, n, full)
        shares = {k: self.effect(Window(0, k), site).mean / full for k in self.plan.boundaries}
        step = n
        for k in sorted(shares, reverse=True):
            if not shares[k] >= fraction:  # NaN counts as not reached
                break
            step = k
        late = 0.0 if step == n else self.effect(Window(step, n), site).mean / full
        tails = {k: self.effect(Window(k, n), site).mean / full for k in self.plan.boundaries if k < n}
        settable_from = 0
        for k in sorted(tails):
            if not tails[k] >= fraction:
                break
            settable_from = k
        return Decision(
            site, fraction, step, n, full, shares[step], late, settable_from, tails[settable_from]
        )

    def summary(self, fraction: float = 0.9, min_effect: float = 0.05) -> dict:
        """A JSON-ready summary: the decision per site and the effect map."""
        return {
            "concept": self.concept,
            "direction": self.direction,
            "num_steps": self.plan.num_steps,
            "decisions": {s: self.decided(s, fraction, min_effect).as_dict() for s in self.sites},
            "effects": {
                w.label: {s: self.effect(w, s).as_dict() for s in self.sites} for w in self.plan.windows()
            },
        }


def _variants(sites: Sequence[Variant | Site | str]) -> list[Variant]:
    variants = [s if isinstance(s, Variant) else Variant.of([s]) for s in sites]
    if not variants:
        raise TadaError(
            "No sites to patch over time: give at least one site (e.g. 'cross.0.head.1', "
            "'cross.2.text') or Variant.of([...], label=...) for a set patched together."
        )
    for v in variants:
        if not v.sites:
            raise TadaError(f"Variant {v.label!r} has no sites; give each variant at least one site.")
        if v.steps is not None:
            raise TadaError(
                f"Variant {v.label!r} carries its own steps {list(v.steps)}; the windows set the "
                f"steps here, so give variants without steps."
            )
        if "@" in v.label:
            raise TadaError(f"Variant label {v.label!r} may not contain '@' (it joins site and window).")
    labels = [v.label for v in variants]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise TadaError(f"Site labels must be distinct; {repeated} appear more than once.")
    return variants


@beartype
def time_resolved_patching(
    adapter: ModelAdapter,
    base: GenerationRequest,
    pairs: Sequence[PromptPair],
    seeds: Sequence[int],
    sites: Sequence[Variant | Site | str],
    metric: Metric,
    *,
    windows: WindowPlan | None = None,
    direction: Literal["denoising", "noising"] = "denoising",
    branch: Branch | str = Branch.COND,
    batch_size: BatchSize = "auto",
    progress: bool = True,
    reuse_latents: bool = True,
) -> TimeMap:
    """Patch each site over each window of denoising steps, for one concept.

    Args:
        adapter: The model.
        base: Generation settings (prompts and seeds are replaced per unit).
        pairs: Counterfactual pairs of one concept.
        seeds: Seeds for every pair.
        sites: Sites, each patched alone, or :class:`~interp.patching.Variant` sets
            patched together (e.g. ``Variant.of(heads, label="heads")``).
        metric: Higher = closer to the clean run.
        windows: The windows (default: ``WindowPlan.even(num_steps, num_steps // 5)``,
            five windows and the cumulative windows at their edges).
        direction: ``denoising`` (clean into the corrupted run) or ``noising``
            (corrupted into the clean run).
        branch: CFG branch to patch.
        batch_size: Patched rows per batched forward pass.
        progress: Show progress on stderr.
        reuse_latents: Start a window's rows at its first step from the target run's
            latents when the model can resume.

    Returns:
        The window x site effect map.
    """
    concepts = {p.concept for p in pairs}
    if len(concepts) != 1:
        raise TadaError(f"time_resolved_patching() takes pairs of one concept, got {sorted(concepts)}.")
    plan = windows or WindowPlan.even(base.num_steps, max(1, base.num_steps // 5))
    if plan.num_steps != base.num_steps:
        raise SelectionError(
            f"The windows are planned for {plan.num_steps} steps but the generation has "
            f"{base.num_steps}; build the WindowPlan with num_steps={base.num_steps}."
        )
    variants = _variants(sites)
    cells = {
        f"{v.label}@{w.label}": (w.label, v.label) for w in plan.windows() for v in variants
    }  # variant label -> (window, site)
    grid = [Variant(f"{v.label}@{w.label}", v.sites, steps=w.steps) for w in plan.windows() for v in variants]
    result = sweep(
        adapter,
        base,
        pairs,
        seeds,
        grid,
        metric,
        direction=direction,
        branch=branch,
        batch_size=batch_size,
        progress=progress,
        reuse_latents=reuse_latents,
    )
    rows = [
        {**row, "window": cells[row["variant"]][0], "site": cells[row["variant"]][1]} for row in result.rows
    ]
    effects = {cells[label]: effect for label, effect in result.effects().items()}
    return TimeMap(concepts.pop(), plan, [v.label for v in variants], effects, direction, rows)


def time_resolved_patching_cost(
    adapter: ModelAdapter,
    base: GenerationRequest,
    n_pairs: int,
    n_seeds: int,
    n_sites: int,
    metric: Metric,
    *,
    windows: WindowPlan | None = None,
    batch_size: BatchSize = "auto",
    reuse_latents: bool = True,
) -> Cost:
    """What :func:`time_resolved_patching` runs for these sizes: the sweep of every site
    over every window, counted by :func:`~interp.patching.sweep_cost` with the same
    window grid (``adapter`` may be a structure-only build)."""
    plan = windows or WindowPlan.even(base.num_steps, max(1, base.num_steps // 5))
    grid = [w.steps for w in plan.windows() for _ in range(n_sites)]
    return sweep_cost(
        adapter, base, n_pairs, n_seeds, len(grid), metric,
        batch_size=batch_size, reuse_latents=reuse_latents, variant_steps=grid,
    )  # fmt: skip
