"""Small, deterministic plots shared by methods (matplotlib)."""

from collections.abc import Sequence
from typing import Any

from interp.experiments.units import Row


def figure(width: float = 6.0, height: float = 3.5) -> Any:
    """A new figure and axes (headless machines fall back to the Agg backend)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    return fig, ax


def bar_plot(rows: Sequence[Row], metric: str, title: str = "") -> Any:
    """Mean of ``metric`` per concept (or per prompt when unlabelled), with min-max bars."""
    groups: dict[str, list[float]] = {}
    for row in rows:
        if row.metric == metric:
            key = row.concept or row.prompt or row.unit or "?"
            groups.setdefault(key, []).append(row.value)
    fig, ax = figure(max(4.0, 0.5 * len(groups) + 2), 3.5)
    names = list(groups)
    means = [sum(v) / len(v) for v in groups.values()]
    low = [m - min(v) for m, v in zip(means, groups.values(), strict=True)]
    high = [max(v) - m for m, v in zip(means, groups.values(), strict=True)]
    ax.bar(range(len(names)), means, yerr=[low, high], capsize=3, color="#4c72b0")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n if len(n) <= 24 else n[:22] + "…" for n in names], rotation=30, ha="right")
    ax.set_ylabel(metric)
    ax.set_title(title)
    fig.tight_layout()
    return fig
