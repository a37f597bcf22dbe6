"""Evaluate a steering run: concept alignment against preservation over an alpha grid.

For every alpha, one generation of the request's prompts and seeds is steered; each
sample gets

* ``alignment``: the scorer's score of the target value (higher = more of the concept);
* ``distance``: relative L2 distance of its audio (or latents) to the alpha = 0 output of
  the same prompt and seed, ``|x_alpha - x_0| / |x_0|`` (0 = perfectly preserved).

The trade-off is summarised as the area under the alignment-gain curve up to a
preservation budget (TADA's AUC): for one side of the grid (alpha > 0 steers towards the
target, alpha < 0 away from it), take the points in order of increasing ``|alpha|``,
x = distance so far (running maximum of the mean distance), y = mean alignment gain over
alpha = 0 in the intended direction; integrate y dx from 0 to ``budget`` (trapezoids,
the last segment cut at the budget). A sweep that never reaches the budget is integrated
as far as it goes and flagged ``reached = False``.
"""

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from beartype import beartype
from torch import Tensor

from interp.adapter import GenerationOutput, GenerationRequest, ModelAdapter
from interp.cost import Cost
from interp.distributed.executor import run_tasks
from interp.distributed.tasks import GenerationTask
from interp.errors import TadaError
from interp.metrics import ConceptScorer
from interp.progress import expect
from interp.statistics import wilson
from interp.steering.steer import Steerer

Distance = Literal["audio", "latents"]


def relative_distance(output: GenerationOutput, reference: GenerationOutput, space: Distance) -> Tensor:
    """Per-sample ``|x - x_ref| / |x_ref|`` of audio or latents."""
    x = output.audio if space == "audio" else output.latents
    ref = reference.audio if space == "audio" else reference.latents
    if x is None or ref is None:
        raise TadaError(
            f"Distance in {space!r} needs decoded audio; the model returned none. Use distance='latents'."
        )
    x = x.reshape(x.shape[0], -1).double()
    ref = ref.reshape(ref.shape[0], -1).double()
    return ((x - ref).norm(dim=1) / ref.norm(dim=1).clamp_min(1e-12)).float()


def _mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    mean = float(values.mean())
    if values.size < 2:
        return mean, mean, mean
    half = 1.96 * float(values.std(ddof=1)) / math.sqrt(values.size)
    return mean, mean - half, mean + half


def alignment_auc(
    alphas: Sequence[float],
    alignment: Sequence[float],
    distance: Sequence[float],
    budget: float,
    side: int = 1,
) -> tuple[float, bool]:
    """Area under the alignment-gain curve up to ``budget`` (see the module docstring).

    Args:
        alphas: The grid (must contain 0).
        alignment: Mean alignment per alpha.
        distance: Mean distance to the alpha = 0 output per alpha.
        budget: Largest distance counted.
        side: ``+1`` for alpha > 0 (towards the target), ``-1`` for alpha < 0.

    Returns:
        The area and whether the sweep reached the budget.
    """
    a = np.asarray(alphas, dtype=float)
    if not np.any(a == 0):
        raise TadaError("alignment_auc needs alpha = 0 in the grid (the reference).")
    if budget <= 0:
        raise TadaError(f"The preservation budget must be > 0, got {budget}.")
    y0 = float(np.asarray(alignment)[a == 0][0])
    chosen = sorted((abs(x), i) for i, x in enumerate(a) if np.sign(x) == side)
    xs, ys = [0.0], [0.0]
    for _, i in chosen:
        xs.append(max(xs[-1], float(distance[i])))
        ys.append(side * (float(alignment[i]) - y0))
    area = 0.0
    for (x0, y_0), (x1, y_1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x0 >= budget:
            break
        if x1 > budget:
            y_1 = y_0 + (y_1 - y_0) * (budget - x0) / (x1 - x0)
            x1 = budget
        area += 0.5 * (y_0 + y_1) * (x1 - x0)
    return area, xs[-1] >= budget


@dataclass
class SteeringEvaluation:
    """Per-sample results of one steering sweep, with curves, AUC and artifacts.

    Attributes:
        label: Name of the run in tables and plots (e.g. ``'caa-localized'``).
        concept: Scorer concept, e.g. ``'mood'``.
        value: Target value, e.g. ``'happy'``.
        method: The steerer's description.
        budget: Preservation budget of the AUC.
        distance: ``'audio'`` or ``'latents'``.
        rows: One dict per (alpha, sample): label, alpha, sample, prompt, seed,
            alignment, distance, gain (alignment minus the sample's alpha = 0 alignment).
        artifacts: Name -> path of files written by :meth:`save`.
    """

    label: str
    concept: str
    value: str
    method: dict[str, Any]
    budget: float
    distance: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)

    @property
    def alphas(self) -> list[float]:
        """The grid, sorted."""
        return sorted({r["alpha"] for r in self.rows})

    def curve(self) -> list[dict[str, Any]]:
        """Per alpha: mean alignment and distance with 95% intervals, and the fraction of
        samples moved in the intended direction (Wilson interval)."""
        out = []
        for alpha in self.alphas:
            rows = [r for r in self.rows if r["alpha"] == alpha]
            align = _mean_ci(np.array([r["alignment"] for r in rows]))
            dist = _mean_ci(np.array([r["distance"] for r in rows]))
            side = int(np.sign(alpha))
            moved = sum(1 for r in rows if side != 0 and side * r["gain"] > 0)
            low, high = wilson(moved, len(rows)) if side else (math.nan, math.nan)
            out.append(
                {
                    "label": self.label,
                    "alpha": alpha,
                    "n": len(rows),
                    "alignment": align[0],
                    "alignment_low": align[1],
                    "alignment_high": align[2],
                    "distance": dist[0],
                    "distance_low": dist[1],
                    "distance_high": dist[2],
                    "moved": moved / len(rows) if side else math.nan,
                    "moved_low": low,
                    "moved_high": high,
                }
            )
        return out

    def auc(self, side: int = 1, budget: float | None = None) -> tuple[float, bool]:
        """AUC of one side of the grid (see :func:`alignment_auc`)."""
        curve = self.curve()
        return alignment_auc(
            [c["alpha"] for c in curve],
            [c["alignment"] for c in curve],
            [c["distance"] for c in curve],
            self.budget if budget is None else budget,
            side,
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: AUC per side, budget, grid and the method."""
        up, up_reached = self.auc(1)
        down, down_reached = self.auc(-1)
        return {
            "label": self.label,
            "concept": self.concept,
            "value": self.value,
            "budget": self.budget,
            "distance": self.distance,
            "auc": up,
            "auc_reached_budget": up_reached,
            "auc_negative": down,
            "auc_negative_reached_budget": down_reached,
            "alphas": self.alphas,
            "samples": len(self.rows) // max(1, len(self.alphas)),
            "method": self.method,
        }

    def save(self, out_dir: str | Path) -> dict[str, str]:
        """Write rows.csv, curve.csv, summary.json and curves.png under ``out_dir``."""
        from interp.plots import plot_curves

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        _write_csv(out / "rows.csv", self.rows)
        _write_csv(out / "curve.csv", self.curve())
        (out / "summary.json").write_text(json.dumps(self.summary(), indent=2, default=str))
        plot_curves([self], out / "curves.png")
        for name in ("rows.csv", "curve.csv", "summary.json", "curves.png"):
            self.artifacts[name] = str(out / name)
        return dict(self.artifacts)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        path.write_text("")
        return
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def steering_grid(alphas: Sequence[float]) -> list[float]:
    """The alphas a steering evaluation runs: 0 first (the reference), then the rest."""
    return sorted({0.0, *(float(a) for a in alphas)}, key=lambda a: (a != 0.0, a))


def evaluate_steering_cost(request: GenerationRequest, alphas: Sequence[float]) -> Cost:
    """What :func:`evaluate_steering` runs: one generation of the request per alpha."""
    return Cost.of(request, count=len(steering_grid(alphas)), label="steered")


@beartype
def evaluate_steering(
    adapter: ModelAdapter,
    request: GenerationRequest,
    steerer: Steerer,
    alphas: Sequence[float],
    scorer: ConceptScorer,
    concept: str,
    value: str,
    *,
    label: str | None = None,
    distance: Distance = "audio",
    budget: float = 0.5,
    out_dir: str | Path | None = None,
    save_audio: bool = True,
    extra: dict[str, Any] | None = None,
) -> SteeringEvaluation:
    """Steer the request's prompts at every alpha and measure alignment and distance.

    Alpha 0 is always run (added if missing): it is the reference for distances and
    gains, and runs through the same edits (adding zero), so it is the unsteered
    generation bit for bit.

    Args:
        adapter: The model.
        request: Prompts, seeds and generation settings (one generation per alpha).
        steerer: Makes the edits for each alpha (:class:`~interp.steering.CAASteerer`,
            :class:`saes.SAEFeatureSteerer`, ...).
        alphas: Steering strengths.
        scorer: Scores ``value`` of ``concept`` per sample.
        concept: Scorer concept, e.g. ``'mood'``.
        value: Target value, e.g. ``'happy'``.
        label: Name of the run (default: the steerer's method).
        distance: Measure preservation on ``'audio'`` or ``'latents'``.
        budget: Preservation budget of the AUC (a relative distance).
        out_dir: If given, write tables, plots and (``save_audio``) one WAV per alpha
            and sample under it.
        save_audio: Write WAVs when ``out_dir`` is given and the model decodes audio.
        extra: JSON-ready fields added to the method description (settings, ...).

    Returns:
        The evaluation (rows, curves, AUC; ``artifacts`` when saved).
    """
    from interp.steering.artifacts import write_wav

    grid = steering_grid(alphas)
    method = {**steerer.describe(), **(extra or {})}
    evaluation = SteeringEvaluation(
        label or str(method.get("method", "steering")), concept, value, method, budget, distance
    )
    reference: GenerationOutput | None = None
    base_alignment: Tensor | None = None
    expect(len(grid) * request.batch_size)
    runs = run_tasks(adapter, [GenerationTask(request, tuple(steerer.edits(alpha))) for alpha in grid])
    for alpha, result in zip(grid, runs, strict=True):
        output = result.output
        alignment = scorer.score(output, concept, value).detach().float().cpu().reshape(-1)
        if reference is None:
            reference, base_alignment = output, alignment
        assert reference is not None and base_alignment is not None
        dist = relative_distance(output, reference, distance)
        for i, (prompt, seed) in enumerate(zip(request.prompts, request.seeds)):
            evaluation.rows.append(
                {
                    "label": evaluation.label,
                    "alpha": alpha,
                    "sample": i,
                    "prompt": prompt,
                    "seed": seed,
                    "alignment": float(alignment[i]),
                    "distance": float(dist[i]),
                    "gain": float(alignment[i] - base_alignment[i]),
                }
            )
        if out_dir is not None and save_audio and output.audio is not None:
            for i in range(request.batch_size):
                path = Path(out_dir) / "audio" / f"alpha_{alpha:+.3f}_sample_{i}.wav"
                write_wav(path, output.audio[i], output.sample_rate)
                evaluation.artifacts[path.stem] = str(path)
    if out_dir is not None:
        evaluation.save(out_dir)
    return evaluation


def compare(evaluations: Sequence[SteeringEvaluation], budget: float | None = None) -> list[dict[str, Any]]:
    """One row per evaluation: label, AUC per side at a common budget (e.g. localized
    vs all-layer steering at equal preservation)."""
    rows = []
    for ev in evaluations:
        up, up_ok = ev.auc(1, budget)
        down, down_ok = ev.auc(-1, budget)
        rows.append(
            {
                "label": ev.label,
                "concept": ev.concept,
                "value": ev.value,
                "budget": ev.budget if budget is None else budget,
                "auc": up,
                "reached": up_ok,
                "auc_negative": down,
                "reached_negative": down_ok,
            }
        )
    return rows
