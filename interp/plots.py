"""The core's figures: localization heatmaps, layer impact, overlaps and prefix curves,
time-resolved (step window x site) maps, steering curves, and bar plots of step metrics.

Each ``plot_*`` function returns a matplotlib figure (:func:`plot_curves` writes its PNG);
:func:`save_figure` writes one as PNG. Models draw their own in their package.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt  # headless machines fall back to Agg by themselves
import numpy as np
from matplotlib.patches import Rectangle

from interp.errors import TadaError
from interp.localization import Localization
from interp.sites import Site
from interp.time_patching import TimeMap

if TYPE_CHECKING:  # pragma: no cover
    from interp.steering.evaluation import SteeringEvaluation


def head_grid(effects: dict[str, float]) -> tuple[np.ndarray, list[int]]:
    """Effects of ``head`` sites arranged as a [layer, head] grid (NaN where absent)."""
    sites = [Site.parse(k) for k in effects]
    layers = sorted({s.layer for s in sites})
    n_heads = max(_head(s) for s in sites) + 1
    grid = np.full((len(layers), n_heads), np.nan)
    for key, site in zip(effects, sites):
        grid[layers.index(site.layer), _head(site)] = effects[key]
    return grid, layers


def _head(site: Site) -> int:
    if site.head is None:
        raise TadaError(
            f"{site.name!r} is not a single-head site; a head grid needs sites like 'cross.3.head.5'."
        )
    return site.head


def plot_head_heatmap(result: Localization):  # a matplotlib Figure
    """Heatmap of single-head patching effects with the located subset outlined."""
    effects = {k: e.mean for k, e in result.head_effects.items()}
    grid, layers = head_grid(effects)
    fig, ax = plt.subplots(
        figsize=(max(5.0, 1.5 + 0.45 * grid.shape[1]), max(2.8, 1.4 + 0.35 * grid.shape[0]))
    )
    bound = np.nanmax(np.abs(grid)) or 1.0
    image = ax.imshow(grid, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    for name in result.subset:
        site = Site.parse(name)
        ax.add_patch(
            Rectangle(
                (_head(site) - 0.5, layers.index(site.layer) - 0.5),
                1,
                1,
                fill=False,
                edgecolor="black",
                linewidth=2,
            )
        )
    for name in result.significant:
        site = Site.parse(name)
        ax.text(
            _head(site),
            layers.index(site.layer),
            "*",
            ha="center",
            va="center",
            fontsize=14,
            fontweight="bold",
            color="black",
        )
    ax.set_xticks(range(grid.shape[1]))
    ax.set_yticks(range(len(layers)), [f"cross {layer}" for layer in layers])
    ax.set_xlabel("head")
    note = "boxed: located subset"
    if result.significance is not None:
        note += f"; *: significant, q <= {result.significance.alpha:g}"
    ax.set_title(f"{result.concept}: patching effect per head\n({note})", fontsize=10)
    fig.colorbar(image, ax=ax, label="normalized effect")
    fig.tight_layout()
    return fig


def plot_layer_impact(results: Sequence[Localization]):
    """TADA's layer impact I(l) per concept, and its mean over concepts."""
    layers = sorted({layer for r in results for layer in r.layer_impact})
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(layers) + 2), 3))
    width = 0.8 / max(1, len(results))
    for i, r in enumerate(results):
        ax.bar(
            np.arange(len(layers)) + i * width,
            [r.layer_impact.get(layer, 0) for layer in layers],
            width,
            label=r.concept,
        )
    mean = [np.mean([r.layer_impact.get(layer, 0) for r in results]) for layer in layers]
    ax.plot(np.arange(len(layers)) + 0.4 - width / 2, mean, "k.-", label="mean")
    ax.set_xticks(np.arange(len(layers)) + 0.4 - width / 2, [str(layer) for layer in layers])
    ax.set_xlabel("cross-attention layer (text input patched)")
    ax.set_ylabel("impact I(l)")
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    return fig


def plot_overlap(names: list[str], matrix: np.ndarray):
    """Jaccard overlap of located head subsets between concepts."""
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * len(names), 1.2 + 0.6 * len(names)))
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j,
                i,
                f"{matrix[i, j]:.2f}",
                ha="center",
                va="center",
                color="white" if matrix[i, j] < 0.5 else "black",
                fontsize=8,
            )
    ax.set_title("overlap of located heads (Jaccard)")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig


def plot_prefix_curve(result: Localization, fraction: float = 0.8):
    """Effect of patching the top-k heads together, with the target fraction."""
    ks = np.arange(1, len(result.prefix_effects) + 1)
    means = [e.mean for e in result.prefix_effects]
    low = [e.ci_low for e in result.prefix_effects]
    high = [e.ci_high for e in result.prefix_effects]
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.fill_between(ks, low, high, alpha=0.3)
    ax.plot(ks, means, "o-")
    ax.axhline(fraction, color="gray", linestyle="--", label=f"target {fraction:.0%}")
    ax.axvline(len(result.subset), color="black", linewidth=1, label="located subset")
    ax.set_xlabel("top-k heads patched together")
    ax.set_ylabel("normalized effect")
    ax.set_title(result.concept)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_time_map(result: TimeMap, fraction: float = 0.9, min_effect: float = 0.05):  # a Figure
    """Step window x site heatmaps of one concept: the fixed windows, the windows "up to
    step k" and "from step k on"; a box marks, per site, the step by which ``fraction`` of
    its effect is fixed (:meth:`~interp.time_patching.TimeMap.decided`)."""
    plan = result.plan
    panels = [("windows", plan.fixed), ("up to step k", plan.up_to()), ("from step k on", plan.from_())]
    panels = [(title, windows) for title, windows in panels if windows]
    grids = [result.grid(windows) for _, windows in panels]
    bound = max(float(np.nanmax(np.abs(g))) if np.isfinite(g).any() else 0.0 for g in grids) or 1.0
    n_sites = len(result.sites)
    width = 1.6 + len(panels) * max(2.2, 0.42 * n_sites + 0.9)
    height = 1.6 + 0.3 * max(len(w) for _, w in panels) + 0.07 * max(len(s) for s in result.sites)
    fig, axes = plt.subplots(1, len(panels), figsize=(width, height), squeeze=False, layout="constrained")
    image = None
    for ax, (title, windows), grid in zip(axes[0], panels, grids, strict=True):
        image = ax.imshow(grid, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
        ax.set_xticks(range(n_sites), result.sites, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(windows)), [f"{w.label}" for w in windows], fontsize=7)
        ax.set_title(title, fontsize=9)
        if grid.size <= 240:
            for (i, j), value in np.ndenumerate(grid):
                if np.isfinite(value):
                    dark = abs(value) > 0.6 * bound
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if dark else "black")  # fmt: skip
        for j, site in enumerate(result.sites):
            decision = result.decided(site, fraction, min_effect)
            if title == "up to step k" and decision.step is not None:
                i = [w.stop for w in windows].index(decision.step)
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", lw=2))
            if title == "from step k on" and decision.settable_from:  # 0: only the full patch
                i = [w.start for w in windows].index(decision.settable_from)
                ax.add_patch(
                    Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", lw=2, linestyle="--")
                )
    axes[0][0].set_ylabel("denoising steps (start:stop)")
    fig.suptitle(
        f"{result.concept}: {result.direction} effect per step window "
        f"(boxed: {fraction:.0%} fixed by step k; dashed: still settable from step k)",
        fontsize=10,
    )
    if image is not None:
        fig.colorbar(image, ax=list(axes[0]), label="normalized effect", shrink=0.8)
    return fig


def save_figure(fig, path: str | Path) -> Path:
    """Write a figure as PNG and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_layer_impact_table(impact: Mapping[str, Mapping[str, float]]):
    """:func:`plot_layer_impact` from ``{concept: {layer site: impact}}`` (result rows)."""
    results = [
        Localization(concept=c, layer_impact={Site.parse(k).layer: v for k, v in values.items()})
        for c, values in impact.items()
    ]
    return plot_layer_impact(results)


def figure(width: float = 6.0, height: float = 3.5) -> Any:
    """A new figure and axes (headless machines fall back to the Agg backend)."""
    fig, ax = plt.subplots(figsize=(width, height))
    return fig, ax


def bar_plot(groups: Mapping[str, Sequence[float]], ylabel: str, title: str = "") -> Any:
    """The mean of each group's values, with min-max bars."""
    fig, ax = figure(max(4.0, 0.5 * len(groups) + 2), 3.5)
    names = list(groups)
    means = [sum(v) / len(v) for v in groups.values()]
    low = [m - min(v) for m, v in zip(means, groups.values(), strict=True)]
    high = [max(v) - m for m, v in zip(means, groups.values(), strict=True)]
    ax.bar(range(len(names)), means, yerr=[low, high], capsize=3, color="#4c72b0")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n if len(n) <= 24 else n[:22] + "…" for n in names], rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_curves(evaluations: "Sequence[SteeringEvaluation]", path: str | Path) -> Path:
    """Three panels: alignment vs alpha, distance vs alpha, alignment vs distance.

    Several evaluations (e.g. localized and all-layer steering of one concept) share
    the axes; the budget of the first is drawn as a vertical line on the trade-off panel.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(13, 3.8))
    FigureCanvasAgg(fig)  # the Agg canvas, without touching pyplot's global backend
    axes = fig.subplots(1, 3)
    for ev in evaluations:
        curve = ev.curve()
        alpha = [c["alpha"] for c in curve]
        align = np.array([c["alignment"] for c in curve])
        dist = np.array([c["distance"] for c in curve])
        line = axes[0].plot(alpha, align, marker="o", ms=3, label=ev.label)[0]
        axes[0].fill_between(
            alpha,
            [c["alignment_low"] for c in curve],
            [c["alignment_high"] for c in curve],
            color=line.get_color(),
            alpha=0.2,
        )
        axes[1].plot(alpha, dist, marker="o", ms=3, color=line.get_color(), label=ev.label)
        axes[1].fill_between(
            alpha,
            [c["distance_low"] for c in curve],
            [c["distance_high"] for c in curve],
            color=line.get_color(),
            alpha=0.2,
        )
        positive = [i for i, a in enumerate(alpha) if a >= 0]
        axes[2].plot(
            dist[positive],
            align[positive],
            marker="o",
            ms=3,
            color=line.get_color(),
            label=f"{ev.label} (AUC {ev.auc(1)[0]:.3g})",
        )
    if evaluations:
        first = evaluations[0]
        axes[2].axvline(first.budget, color="grey", ls="--", lw=1, label="budget")
        axes[0].set_ylabel(f"alignment: {first.concept} = {first.value}")
        axes[1].set_ylabel(f"distance to alpha = 0 ({first.distance})")
        axes[2].set_ylabel("alignment (alpha >= 0)")
    axes[0].set_xlabel("alpha")
    axes[1].set_xlabel("alpha")
    axes[2].set_xlabel("distance to alpha = 0")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_word_heatmap(values: Mapping[str, Mapping[str, float]], title: str, label: str) -> Any:
    """Heads (rows) x prompt words (columns), e.g. each word's token-patching effect or
    attention share for the located heads; words in the order of the first head's."""
    heads = list(values)
    words = list(dict.fromkeys(w for h in heads for w in values[h]))
    grid = np.array([[values[h].get(w, np.nan) for w in words] for h in heads], dtype=float)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.8 + 0.45 * len(words)), max(2.2, 1.2 + 0.4 * len(heads))))
    bound = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0
    negative = bool(np.nanmin(grid) < 0) if np.isfinite(grid).any() else False
    image = ax.imshow(
        grid,
        cmap="RdBu_r" if negative else "viridis",
        vmin=-bound if negative else 0,
        vmax=bound or 1.0,
        aspect="auto",
    )
    ax.set_xticks(range(len(words)), words, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(heads)), heads, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label=label)
    fig.tight_layout()
    return fig


def plot_word_roles(roles: Mapping[str, Mapping[str, float]], title: str) -> Any:
    """Grouped bars per head: token-patching effect of the concept word(s), the strongest
    other word, the mean other word, the positions of no word and every position."""
    heads = list(roles)
    keys = ["concept", "strongest_other_word", "other_words", "no_word", "all"]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.5 + 1.2 * len(heads)), 3.2))
    width = 0.8 / len(keys)
    for i, key in enumerate(keys):
        xs = np.arange(len(heads)) + (i - (len(keys) - 1) / 2) * width
        ax.bar(xs, [roles[h].get(key, np.nan) for h in heads], width, label=key.replace("_", " "))
    ax.set_xticks(range(len(heads)), heads, fontsize=8)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_ylabel("normalized effect")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
