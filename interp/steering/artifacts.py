"""Files of a steering evaluation: the curves as a PNG, the audio as WAV.

Plots are drawn on an Agg canvas (no display, pyplot's backend untouched); soundfile writes 32-bit float
WAV so no sample is clipped.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from interp.steering.evaluation import SteeringEvaluation


def write_wav(path: str | Path, audio: Tensor, sample_rate: int) -> Path:
    """Write one waveform ``[samples]`` or ``[channels, samples]`` as float WAV."""
    import soundfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = audio.detach().float().cpu().numpy()
    if data.ndim == 2:
        data = data.T  # soundfile wants [frames, channels]
    elif data.ndim != 1:
        raise ValueError(
            f"write_wav expects audio [samples] or [channels, samples], got shape {data.shape}."
        )
    soundfile.write(str(path), np.ascontiguousarray(data), int(sample_rate), subtype="FLOAT")
    return path


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
        axes[0].fill_between(alpha, [c["alignment_low"] for c in curve],
                             [c["alignment_high"] for c in curve], color=line.get_color(), alpha=0.2)
        axes[1].plot(alpha, dist, marker="o", ms=3, color=line.get_color(), label=ev.label)
        axes[1].fill_between(alpha, [c["distance_low"] for c in curve],
                             [c["distance_high"] for c in curve], color=line.get_color(), alpha=0.2)
        positive = [i for i, a in enumerate(alpha) if a >= 0]
        axes[2].plot(dist[positive], align[positive], marker="o", ms=3, color=line.get_color(),
                     label=f"{ev.label} (AUC {ev.auc(1)[0]:.3g})")
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
