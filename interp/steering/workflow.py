"""One call from prompt sets to a finished CAA steering evaluation (for method plug-ins).

:func:`run_caa` computes the vectors at the given sites, sweeps alpha, scores and saves
everything; an experiment method wraps it as ``(adapter, request, prompt sets, sites,
settings) -> rows + artifacts``.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from beartype import beartype

from interp.adapter import GenerationRequest, ModelAdapter
from interp.batching import BatchSize
from interp.cost import Cost
from interp.metrics import ConceptScorer
from interp.selection import Steps, StepsLike
from interp.sites import Site
from interp.steering.caa import caa_cost, compute_caa
from interp.steering.evaluation import Distance, SteeringEvaluation, evaluate_steering, evaluate_steering_cost
from interp.steering.steer import CAASteerer
from interp.steering.vectors_io import save_vectors


@dataclass(frozen=True)
class CAASettings:
    """Settings of one CAA steering run.

    Attributes:
        steps: Denoising steps to compute vectors for and steer (default all).
        branch: CFG branch to read and steer (default ``cond``).
        normalize: L2-normalize the vectors.
        average_steps: One vector per site for every step.
        renormalize: Keep each steered activation's norm per position.
        seeds: Seeds of the vector prompts (default: the request's first seed).
        batch_size: Generations per forward pass when computing vectors.
        budget: Preservation budget of the AUC.
        distance: Preservation measured on ``'audio'`` or ``'latents'``.
    """

    steps: StepsLike = None
    branch: str = "cond"
    normalize: bool = True
    average_steps: bool = False
    renormalize: bool = False
    seeds: tuple[int, ...] | None = None
    batch_size: BatchSize = "auto"
    budget: float = 0.5
    distance: Distance = "audio"


def run_caa_cost(
    request: GenerationRequest,
    n_positive: int,
    n_negative: int,
    alphas: Sequence[float],
    settings: CAASettings = CAASettings(),
) -> Cost:
    """What :func:`run_caa` runs: the vectors' prompt sets, then one generation per alpha."""
    vectors = caa_cost(request, n_positive, n_negative, seeds=settings.seeds, batch_size=settings.batch_size)
    return vectors + evaluate_steering_cost(request, alphas)


@beartype
def run_caa(
    adapter: ModelAdapter,
    request: GenerationRequest,
    positive: Sequence[str],
    negative: Sequence[str],
    sites: Sequence[Site | str],
    alphas: Sequence[float],
    scorer: ConceptScorer,
    concept: str,
    value: str,
    *,
    settings: CAASettings = CAASettings(),
    label: str | None = None,
    out_dir: str | Path | None = None,
) -> SteeringEvaluation:
    """Compute CAA vectors at ``sites`` and evaluate steering the request's prompts.

    Args:
        adapter: The model.
        request: Prompts and seeds to steer (the evaluation set) and generation settings.
        positive: Prompts with the concept (for the vectors).
        negative: Prompts without it.
        sites: Where to steer (e.g. the located heads, or every layer's ``out``).
        alphas: Steering strengths (0 is added).
        scorer: Scores ``value`` of ``concept``.
        concept: Scorer concept, e.g. ``'mood'``.
        value: Target value, e.g. ``'happy'``.
        settings: See :class:`CAASettings`.
        label: Name of the run (default ``'caa'``).
        out_dir: Write vectors, tables, plots and audio here.

    Returns:
        The evaluation; ``rows`` are per (alpha, sample), ``artifacts`` name the files.
    """
    vectors = compute_caa(
        adapter,
        request,
        positive,
        negative,
        sites,
        seeds=settings.seeds,
        steps=Steps.parse(settings.steps),
        branch=settings.branch,
        normalize=settings.normalize,
        average_steps=settings.average_steps,
        batch_size=settings.batch_size,
        concept=concept,
    )
    steerer = CAASteerer(
        vectors, steps=Steps.parse(settings.steps), branch=settings.branch, renormalize=settings.renormalize
    )
    if out_dir is not None:
        tensors, meta = save_vectors(vectors, Path(out_dir) / "vectors")
    evaluation = evaluate_steering(
        adapter,
        request,
        steerer,
        alphas,
        scorer,
        concept,
        value,
        label=label or "caa",
        distance=settings.distance,
        budget=settings.budget,
        out_dir=out_dir,
        extra={"settings": {k: str(v) for k, v in asdict(settings).items()}},
    )
    if out_dir is not None:
        evaluation.artifacts.update({"vectors": str(tensors), "vectors_meta": str(meta)})
    return evaluation
