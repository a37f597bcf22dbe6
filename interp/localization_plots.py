"""Figures of localization results: head x layer heatmaps, layer impact, overlaps.

Each function returns a matplotlib figure; :func:`save_figure` writes one as PNG.
"""

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt  # headless machines fall back to Agg by themselves
import numpy as np

from interp.localization import Localization
from interp.sites import Site


def head_grid(effects: dict[str, float]) -> tuple[np.ndarray, list[int]]:
    """Effects of ``head`` sites arranged as a [layer, head] grid (NaN where absent)."""
    sites = [Site.parse(k) for k in effects]
    layers = sorted({s.layer for s in sites})
    n_heads = max(s.head for s in sites) + 1
    grid = np.full((len(layers), n_heads), np.nan)
    for key, site in zip(effects, sites):
        grid[layers.index(site.layer), site.head] = effects[key]
    return grid, layers


def plot_head_heatmap(result: Localization):  # a matplotlib Figure
    """Heatmap of single-head patching effects with the located subset outlined."""
    effects = {k: e.mean for k, e in result.head_effects.items()}
    grid, layers = head_grid(effects)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.5 + 0.45 * grid.shape[1]),
                                    max(2.8, 1.4 + 0.35 * grid.shape[0])))
    bound = np.nanmax(np.abs(grid)) or 1.0
    image = ax.imshow(grid, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    for name in result.subset:
        site = Site.parse(name)
        ax.add_patch(plt.Rectangle((site.head - 0.5, layers.index(site.layer) - 0.5), 1, 1,
                                   fill=False, edgecolor="black", linewidth=2))
    for name in result.significant:
        site = Site.parse(name)
        ax.text(site.head, layers.index(site.layer), "*", ha="center", va="center",
                fontsize=14, fontweight="bold", color="black")
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
        ax.bar(np.arange(len(layers)) + i * width, [r.layer_impact.get(l, 0) for l in layers],
               width, label=r.concept)
    mean = [np.mean([r.layer_impact.get(l, 0) for r in results]) for l in layers]
    ax.plot(np.arange(len(layers)) + 0.4 - width / 2, mean, "k.-", label="mean")
    ax.set_xticks(np.arange(len(layers)) + 0.4 - width / 2, [str(l) for l in layers])
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
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center",
                    color="white" if matrix[i, j] < 0.5 else "black", fontsize=8)
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


def save_figure(fig, path: str | Path) -> Path:
    """Write a figure as PNG and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
