"""One call from prompt sets and a trained SAE to a finished steering evaluation.

:func:`run_sae_steering` selects the concept's features per step, steers with their
decoder directions (``mode='add'``) or clamps them inside the SAE (``mode='clamp'``),
sweeps alpha and evaluates like :func:`interp.steering.run_caa`.
"""

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from beartype import beartype
from torch import nn

from interp.adapter import GenerationRequest, ModelAdapter
from interp.batching import BatchSize
from interp.cost import Cost
from interp.errors import TadaError
from interp.metrics import ConceptScorer
from interp.selection import Steps, StepsLike
from interp.steering.evaluation import Distance, SteeringEvaluation, evaluate_steering, evaluate_steering_cost
from saes.features import concept_features, concept_features_cost
from saes.layout import site_shape
from saes.steer import SAEClampSteerer, SAEFeatureSteerer
from saes.train import load_sae


@dataclass(frozen=True)
class SAESteeringSettings:
    """Settings of one SAE steering run.

    Attributes:
        k: Features selected per step (TADA: 20).
        score: Feature score: ``'tada'``, ``'diff'`` or ``'cohen_d'``.
        mode: ``'add'`` (decoder directions) or ``'clamp'`` (inside the SAE).
        clamp_target: Activation the features are clamped to at alpha = 1 (``clamp``).
        steps: Denoising steps to select features for and steer (default all).
        branch: CFG branch (default ``cond``).
        renormalize: Keep each steered activation's norm per position (``add``).
        seeds: Seeds of the selection prompts (default: the request's first seed).
        batch_size: Generations per forward pass during selection.
        budget: Preservation budget of the AUC.
        distance: Preservation measured on ``'audio'`` or ``'latents'``.
    """

    k: int = 20
    score: str = "tada"
    mode: Literal["add", "clamp"] = "add"
    clamp_target: float = 1.0
    steps: StepsLike = None
    branch: str = "cond"
    renormalize: bool = False
    seeds: tuple[int, ...] | None = None
    batch_size: BatchSize = "auto"
    budget: float = 0.5
    distance: Distance = "audio"


def sae_steering_cost(
    request: GenerationRequest,
    n_positive: int,
    n_negative: int,
    alphas: Sequence[float],
    settings: SAESteeringSettings = SAESteeringSettings(),
) -> Cost:
    """What :func:`run_sae_steering` runs: feature selection, then one generation per alpha."""
    select = concept_features_cost(
        request, n_positive, n_negative, seeds=settings.seeds, batch_size=settings.batch_size
    )
    return select + evaluate_steering_cost(request, alphas)


@beartype
def run_sae_steering(
    adapter: ModelAdapter,
    request: GenerationRequest,
    positive: Sequence[str],
    negative: Sequence[str],
    sae: nn.Module | str | Path,
    alphas: Sequence[float],
    scorer: ConceptScorer,
    concept: str,
    value: str,
    *,
    settings: SAESteeringSettings = SAESteeringSettings(),
    label: str | None = None,
    out_dir: str | Path | None = None,
) -> SteeringEvaluation:
    """Select the concept's SAE features and evaluate steering the request's prompts.

    Args:
        adapter: The model.
        request: Prompts and seeds to steer, and generation settings.
        positive: Prompts with the concept (for feature selection).
        negative: Prompts without it.
        sae: A loaded sae-lens SAE, or the directory it was saved to; its
            ``hook_name`` is the site.
        alphas: Steering strengths (0 is added).
        scorer: Scores ``value`` of ``concept``.
        concept: Scorer concept.
        value: Target value.
        settings: See :class:`SAESteeringSettings`.
        label: Name of the run (default ``'sae'`` / ``'sae-clamp'``).
        out_dir: Write the selection, tables, plots and audio here.
    """
    if settings.mode not in ("add", "clamp"):
        raise TadaError(f"Unknown SAE steering mode {settings.mode!r}; valid: ['add', 'clamp'].")
    if not isinstance(sae, nn.Module):
        sae = load_sae(sae)
    steps = Steps.parse(settings.steps)
    selection = concept_features(
        adapter,
        request,
        positive,
        negative,
        sae,
        k=settings.k,
        method=settings.score,
        seeds=settings.seeds,
        steps=steps,
        branch=settings.branch,
        batch_size=settings.batch_size,
        concept=concept,
    )
    shape = site_shape(adapter, selection.site)
    if settings.mode == "add":
        steerer = SAEFeatureSteerer(
            sae, selection, branch=settings.branch, renormalize=settings.renormalize, shape=shape
        )
    else:
        steerer = SAEClampSteerer.from_selection(
            sae, selection, target=settings.clamp_target, branch=settings.branch, shape=shape
        )
    extra = {
        "settings": {k: str(v) for k, v in asdict(settings).items()},
        "features": selection.describe()["features"],
    }
    evaluation = evaluate_steering(
        adapter,
        request,
        steerer,
        alphas,
        scorer,
        concept,
        value,
        label=label or ("sae" if settings.mode == "add" else "sae-clamp"),
        distance=settings.distance,
        budget=settings.budget,
        out_dir=out_dir,
        extra=extra,
    )
    if out_dir is not None:
        path = Path(out_dir) / "features.json"
        path.write_text(json.dumps(selection.describe(), indent=2))
        evaluation.artifacts["features"] = str(path)
    return evaluation
