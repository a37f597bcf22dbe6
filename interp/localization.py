"""Locate the attention heads that carry a concept.

For one concept (a set of counterfactual prompt pairs):

1. rank candidate heads by the size of their single-head denoising patching effect (exact patching,
   or attribution patching when there are too many heads to patch one by one);
2. patch growing prefixes of that ranking together and keep the smallest prefix that
   restores ``fraction`` (default 80%) of the clean-corrupted gap: the *located subset*,
   verified by actually patching it;
3. check that the subset is necessary: patching corrupted activations into the clean
   run at those heads (noising) should remove the concept;
4. for comparison with the paper, patch each cross-attention layer's text input and
   report TADA's normalized layer impact I(l).

With ``selection="significant"`` (or ``"both"``), step 2 is replaced (or joined) by the
heads whose single-head effect is significantly non-zero at a controlled false discovery
rate (:mod:`interp.significance`), checked for sufficiency and necessity in the same way.

Across concepts, :func:`overlap_matrix` compares the located subsets.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypedDict

import numpy as np

from interp.adapter import GenerationRequest, ModelAdapter
from interp.attribution import attribute, attribute_cost, gradient_metric
from interp.batching import BatchSize
from interp.cost import Cost, total
from interp.errors import TadaError
from interp.metrics import Metric
from interp.patch_variants import Variant, single_site_variants
from interp.patching import sweep, sweep_cost
from interp.prompts import PromptPair
from interp.selection import Branch, StepsLike
from interp.significance import Significance, head_significance
from interp.sites import Site, as_site
from interp.statistics import Effect

Selection = Literal["greedy", "significant", "both"]


class _SweepOptions(TypedDict):
    """The settings every sweep of one :func:`locate` call shares."""

    steps: StepsLike
    branch: Branch | str
    batch_size: BatchSize
    progress: bool


@dataclass
class Localization:
    """Where one concept lives.

    Attributes:
        concept: The concept's name.
        head_effects: Head site name -> normalized denoising effect (ranking score).
        ranking: Head site names by decreasing effect.
        prefix_effects: Effect of patching the top-k heads together, for k = 1..K.
        subset: The located heads (smallest prefix reaching ``fraction``).
        reached: Whether ``fraction`` was reached within the prefixes tried.
        restored: Effect of patching the subset (denoising).
        necessity: Effect of noising the subset in the clean run (1: concept removed).
        layer_effects: Cross layer -> effect of patching its text input.
        layer_impact: TADA's normalized impact I(l) (non-negative, sums to 1).
        selection: How ``subset`` was chosen: ``greedy`` (smallest prefix of the
            ranking reaching ``fraction``), ``significant`` (the FDR-controlled heads) or
            ``both`` (``subset`` greedy, the significant set in ``significant``).
        significance: Per-head sign-flip p-values and BH q-values (patching ranking only).
        significant: Heads with ``q <= alpha``, by increasing p.
        significant_restored: Effect of patching the significant heads together.
        significant_necessity: Effect of noising them in the clean run.
    """

    concept: str
    head_effects: dict[str, Effect] = field(default_factory=dict)
    ranking: list[str] = field(default_factory=list)
    prefix_effects: list[Effect] = field(default_factory=list)
    subset: list[str] = field(default_factory=list)
    reached: bool = False
    restored: Effect | None = None
    necessity: Effect | None = None
    layer_effects: dict[int, Effect] = field(default_factory=dict)
    layer_impact: dict[int, float] = field(default_factory=dict)
    selection: str = "greedy"
    significance: Significance | None = None
    significant: list[str] = field(default_factory=list)
    significant_restored: Effect | None = None
    significant_necessity: Effect | None = None

    def summary(self) -> dict:
        """A JSON-ready summary."""
        return {
            "concept": self.concept,
            "subset": self.subset,
            "reached": self.reached,
            "restored": None if self.restored is None else self.restored.as_dict(),
            "necessity": None if self.necessity is None else self.necessity.as_dict(),
            "top_heads": [{"site": s, **self.head_effects[s].as_dict()} for s in self.ranking[:10]],
            "layer_impact": {str(k): v for k, v in self.layer_impact.items()},
            **significance_summary(self),
        }


def layer_impact(effects: dict[int, float]) -> dict[int, float]:
    """TADA's normalized impact: positive effects scaled to sum to one."""
    positive = {k: max(v, 0.0) for k, v in effects.items()}
    total = sum(positive.values())
    return {k: (v / total if total > 0 else 0.0) for k, v in positive.items()}


def locate(
    adapter: ModelAdapter,
    base: GenerationRequest,
    pairs: Sequence[PromptPair],
    seeds: Sequence[int],
    metric: Metric,
    *,
    candidates: Sequence[Site | str] | None = None,
    ranking: Literal["patching", "attribution"] = "patching",
    fraction: float = 0.8,
    max_heads: int = 16,
    steps: StepsLike = None,
    branch: Branch | str = Branch.COND,
    layers: bool = True,
    batch_size: BatchSize = "auto",
    progress: bool = True,
    selection: Selection = "greedy",
    alpha: float = 0.05,
    min_effect: float = 0.0,
) -> Localization:
    """Locate the smallest head subset that restores ``fraction`` of a concept.

    Args:
        adapter: The model.
        base: Generation settings.
        pairs: Counterfactual pairs of one concept.
        seeds: Seeds for every pair.
        metric: Higher = closer to the clean run (e.g. a concept scorer contrast).
        candidates: Head sites to consider (default: every cross-attention head).
        ranking: ``patching`` (exact, one variant per head) or ``attribution``.
        fraction: Share of the clean-corrupted gap the subset must restore.
        max_heads: Largest subset size tried.
        steps: Denoising steps to patch (default all).
        branch: CFG branch to patch (default conditional).
        layers: Also measure the per-layer text-input impact (TADA's sites).
        batch_size: Variants per batched forward, or ``"auto"`` (:mod:`interp.batching`).
        selection: ``greedy`` (the smallest ranking prefix that restores ``fraction``),
            ``significant`` (the heads whose single-head effect is non-zero at a false
            discovery rate ``alpha``, then checked for sufficiency and necessity like the
            greedy subset) or ``both`` (greedy ``subset``, significant set alongside).
        alpha: False discovery rate of the significant set.
        min_effect: Smallest normalized effect of interest: a head is significant when its
            effect is larger in size than this (0: when it is non-zero at all).
    """
    if not 0 < fraction <= 1:
        raise TadaError(f"fraction must be in (0, 1], got {fraction}.")
    if selection not in ("greedy", "significant", "both"):
        raise TadaError(f"selection must be 'greedy', 'significant' or 'both', got {selection!r}.")
    if not 0 < alpha < 1:
        raise TadaError(f"alpha (the false discovery rate) must be in (0, 1), got {alpha}; 0.05 is usual.")
    if selection != "greedy" and ranking != "patching":
        raise TadaError(
            f"selection {selection!r} tests each head's patching effect over the pairs, which "
            f"needs ranking: patching (got {ranking!r}); use selection: greedy with attribution."
        )
    concepts = {p.concept for p in pairs}
    if len(concepts) != 1:
        raise TadaError(f"locate() takes pairs of one concept, got {sorted(concepts)}.")
    heads = [as_site(s) for s in (candidates or adapter.catalog.where(attention="cross"))]
    if any(s.component != "head" for s in heads):
        raise TadaError("locate() candidates must be head sites such as 'cross.3.head.1'.")
    common = _SweepOptions(steps=steps, branch=branch, batch_size=batch_size, progress=progress)
    result = Localization(concept=concepts.pop(), selection=selection)

    if ranking == "patching":
        single = sweep(adapter, base, pairs, seeds, single_site_variants(heads), metric, **common)
        result.head_effects = single.effects()
        try:
            result.significance = head_significance(single.rows, alpha=alpha, min_effect=min_effect)
        except TadaError:
            if selection != "greedy":
                raise
        result.significant = [] if result.significance is None else result.significance.significant
        scores = {k: e.mean for k, e in result.head_effects.items()}
    else:
        estimates = attribute(
            adapter,
            base,
            pairs,
            seeds,
            heads,
            steps=steps,
            progress=progress,
            metric=gradient_metric(adapter, metric),
        )
        scores = estimates.scores
        result.head_effects = {k: Effect(v, float("nan"), float("nan"), 0) for k, v in scores.items()}
    # importance = size of the effect, whatever its sign (a head that pushes away from
    # the clean run matters too); ties keep execution order
    result.ranking = sorted(scores, key=lambda k: (-abs(np.nan_to_num(scores[k], nan=0.0)), k))

    if selection != "greedy":
        _check_significant(adapter, base, pairs, seeds, metric, result, fraction, common)
    if selection == "significant":
        result.subset = list(result.significant)
        result.restored, result.necessity = result.significant_restored, result.significant_necessity
        result.reached = result.restored is not None and result.restored.mean >= fraction
    else:
        _greedy(adapter, base, pairs, seeds, metric, result, fraction, max_heads, common)

    if layers:
        texts = adapter.catalog.where(attention="cross", component="text")
        layer_sweep = sweep(adapter, base, pairs, seeds, single_site_variants(texts), metric, **common)
        effects = layer_sweep.effects()
        result.layer_effects = {s.layer: effects[s.name] for s in texts}
        result.layer_impact = layer_impact({k: e.mean for k, e in result.layer_effects.items()})
    return result


def locate_cost(
    adapter: ModelAdapter,
    base: GenerationRequest,
    n_pairs: int,
    n_seeds: int,
    metric: Metric,
    *,
    n_candidates: int,
    ranking: Literal["patching", "attribution"] = "patching",
    max_heads: int = 16,
    steps: StepsLike = None,
    layers: bool = True,
    batch_size: BatchSize = "auto",
    selection: Selection = "greedy",
) -> Cost:
    """What :func:`locate` runs for these sizes, from the sweeps' own counting.

    Everything is fixed by the sizes except the check of the significant heads
    (``selection`` other than ``greedy``), which runs only when some head is
    significant: it is counted, as an upper bound, under the label ``significant``.
    """
    sizes = (n_pairs, n_seeds)
    if ranking == "patching":
        cost = sweep_cost(
            adapter, base, *sizes, n_candidates, metric, steps=steps, batch_size=batch_size
        ).labelled("heads")
    else:
        cost = attribute_cost(base, *sizes, gradient_metric(adapter, metric)).labelled("attribution")
    if selection != "greedy":
        check = sweep_cost(adapter, base, *sizes, 1, metric, steps=steps, batch_size=batch_size) * 2
        cost = cost + check.labelled("significant")
    if selection != "significant":
        prefixes = max(1, min(max_heads, n_candidates))
        cost = cost + sweep_cost(
            adapter, base, *sizes, prefixes, metric, steps=steps, batch_size=batch_size
        ).labelled("prefixes")
        cost = cost + sweep_cost(
            adapter, base, *sizes, 1, metric, steps=steps, batch_size=batch_size
        ).labelled("necessity")
    if layers:
        texts = len(adapter.catalog.where(attention="cross", component="text"))
        cost = cost + sweep_cost(
            adapter, base, *sizes, texts, metric, steps=steps, batch_size=batch_size
        ).labelled("layers")
    return cost.merged()


def _greedy(
    adapter: ModelAdapter,
    base: GenerationRequest,
    pairs: Sequence[PromptPair],
    seeds: Sequence[int],
    metric: Metric,
    result: Localization,
    fraction: float,
    max_heads: int,
    common: _SweepOptions,
) -> None:
    """The smallest prefix of the ranking that restores ``fraction``, and its necessity."""
    top = result.ranking[: max(1, min(max_heads, len(result.ranking)))]
    prefixes = [Variant.of(top[: k + 1], label=f"top{k + 1}") for k in range(len(top))]
    prefix_sweep = sweep(adapter, base, pairs, seeds, prefixes, metric, **common)
    prefix_effects = prefix_sweep.effects()
    result.prefix_effects = [prefix_effects[v.label] for v in prefixes]
    chosen = next((k for k, e in enumerate(result.prefix_effects) if e.mean >= fraction), None)
    result.reached = chosen is not None
    if chosen is None:
        chosen = int(np.nanargmax([e.mean for e in result.prefix_effects]))
    result.subset = top[: chosen + 1]
    result.restored = result.prefix_effects[chosen]

    subset = [Variant.of(result.subset, label="subset")]
    noising = sweep(adapter, base, pairs, seeds, subset, metric, direction="noising", **common)
    result.necessity = noising.effects()["subset"]


def _check_significant(
    adapter: ModelAdapter,
    base: GenerationRequest,
    pairs: Sequence[PromptPair],
    seeds: Sequence[int],
    metric: Metric,
    result: Localization,
    fraction: float,
    common: _SweepOptions,
) -> None:
    """Sufficiency (restores) and necessity (noising) of the significant heads together."""
    if not result.significant:
        return
    variant = [Variant.of(result.significant, label="significant")]
    result.significant_restored = sweep(adapter, base, pairs, seeds, variant, metric, **common).effects()[
        "significant"
    ]
    result.significant_necessity = sweep(
        adapter, base, pairs, seeds, variant, metric, direction="noising", **common
    ).effects()["significant"]


def significance_summary(result: Localization) -> dict:
    """The significance part of :meth:`Localization.summary` (empty without a test)."""
    if result.significance is None:
        return {}
    test = result.significance

    def effect(e: Effect | None) -> dict | None:
        return None if e is None else e.as_dict()

    return {
        "selection": result.selection,
        "alpha": test.alpha,
        "min_effect": test.min_effect,
        "pairs": test.n,
        "significant": result.significant,
        "significant_restored": effect(result.significant_restored),
        "significant_necessity": effect(result.significant_necessity),
        "p": test.p,
        "q": test.q,
        "differences": test.differences,
    }


def overlap_matrix(subsets: Mapping[str, Sequence[str]]) -> tuple[list[str], np.ndarray]:
    """Jaccard overlap of located head subsets between concepts.

    Returns the concept order and a square matrix (1 on the diagonal).
    """
    names = list(subsets)
    sets = [set(subsets[n]) for n in names]
    matrix = np.zeros((len(names), len(names)))
    for i, a in enumerate(sets):
        for j, b in enumerate(sets):
            union = a | b
            matrix[i, j] = len(a & b) / len(union) if union else 0.0
    return names, matrix


def shared_and_specific(subsets: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Heads located for more than one concept (``shared``) and, per concept, heads
    located for it alone."""
    counts: dict[str, int] = {}
    for heads in subsets.values():
        for h in set(heads):
            counts[h] = counts.get(h, 0) + 1
    out = {"shared": sorted(h for h, c in counts.items() if c > 1)}
    for concept, heads in subsets.items():
        out[concept] = sorted(h for h in set(heads) if counts[h] == 1)
    return out


@dataclass
class Stability:
    """Located subsets from two disjoint halves of the pairs, and their overlap."""

    first: Localization
    second: Localization

    @property
    def jaccard(self) -> float:
        """Jaccard overlap of the two located subsets (1: identical)."""
        a, b = set(self.first.subset), set(self.second.subset)
        return len(a & b) / len(a | b) if a | b else 1.0

    @property
    def significant_jaccard(self) -> float:
        """Jaccard overlap of the two halves' significant (FDR-controlled) head sets (NaN
        when neither half found a significant head: nothing to agree on)."""
        a, b = set(self.first.significant), set(self.second.significant)
        return len(a & b) / len(a | b) if a | b else float("nan")

    @property
    def rank_correlation(self) -> float:
        """Spearman correlation of the two halves' single-head effects (1: same ranking).

        Less brittle than :attr:`jaccard` when neither half reaches the target fraction
        and the subsets are best prefixes of similar rankings."""
        from scipy.stats import spearmanr

        common = sorted(set(self.first.head_effects) & set(self.second.head_effects))
        if len(common) < 3:
            return float("nan")
        x = [self.first.head_effects[k].mean for k in common]
        y = [self.second.head_effects[k].mean for k in common]
        return float(spearmanr(x, y).statistic)  # pyright: ignore[reportAttributeAccessIssue]  # scipy's inferred result type lacks the fields

    @property
    def same_top_head(self) -> bool:
        """Whether both halves rank the same head first."""
        return bool(
            self.first.ranking and self.second.ranking and self.first.ranking[0] == self.second.ranking[0]
        )


def split_stability(
    adapter: ModelAdapter,
    base: GenerationRequest,
    pairs: Sequence[PromptPair],
    seeds: Sequence[int],
    metric: Metric,
    **settings,  # the keyword arguments of locate()
) -> Stability:
    """Locate a concept twice, on the even- and odd-numbered pairs, and compare.

    Raises:
        TadaError: With fewer than two pairs.
    """
    if len(pairs) < 2:
        raise TadaError("A stability check needs at least two prompt pairs (two disjoint halves).")
    settings = {**settings, "layers": False}
    first = locate(adapter, base, list(pairs[0::2]), seeds, metric, **settings)
    second = locate(adapter, base, list(pairs[1::2]), seeds, metric, **settings)
    return Stability(first, second)


def split_stability_cost(
    adapter: ModelAdapter, base: GenerationRequest, n_pairs: int, n_seeds: int, metric: Metric, **settings
) -> Cost:
    """What :func:`split_stability` runs: :func:`locate_cost` on each half, without layers."""
    settings = {**settings, "layers": False}
    halves = (n_pairs - n_pairs // 2, n_pairs // 2)  # pairs[0::2], pairs[1::2]
    cost = total(locate_cost(adapter, base, n, n_seeds, metric, **settings) for n in halves)
    return cost.labelled("stability").merged()
