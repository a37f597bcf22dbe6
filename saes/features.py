"""Score SAE features for a concept, per denoising step, and select the top k.

For each step, a feature's activation is averaged over positions per generation; the
positive and negative prompt sets then give ``mean_pos``, ``mean_neg`` (and standard
deviations), and a score per feature:

* ``tada``: ``mean_pos * log(1 + 1 / (mean_neg + eps))`` (TADA's score: active on the
  concept, silent without it);
* ``diff``: ``mean_pos - mean_neg``;
* ``cohen_d``: ``(mean_pos - mean_neg) / pooled standard deviation``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import torch
from beartype import beartype
from jaxtyping import Float, Int, jaxtyped
from torch import Tensor, nn

from interp.adapter import GenerationRequest, ModelAdapter
from interp.batching import BatchSize, resolve_batch_size
from interp.cost import Cost, prompt_batches, prompt_sets_cost
from interp.edits import Read
from interp.errors import TadaError
from interp.progress import expect
from interp.runner import run
from interp.selection import Branch, Steps, StepsLike
from interp.sites import Site
from saes.layout import as_sae, site_width, to_vectors

ScoreMethod = Literal["tada", "diff", "cohen_d"]
SCORE_METHODS: tuple[str, ...] = ("tada", "diff", "cohen_d")


def sae_site(sae: nn.Module, site: Site | str | None = None) -> str:
    """The site an SAE belongs to: ``site`` if given, else its ``hook_name``."""
    hooked = getattr(getattr(as_sae(sae).cfg, "metadata", None), "hook_name", None)
    if site is None:
        if hooked is None:
            raise TadaError("The SAE has no hook_name in its metadata; pass site= explicitly.")
        return str(hooked)
    return str(site)


@jaxtyped(typechecker=beartype)
def feature_activations(
    adapter: ModelAdapter,
    request: GenerationRequest,
    prompts: Sequence[str],
    sae: nn.Module,
    site: Site | str | None = None,
    *,
    seeds: Sequence[int] | None = None,
    steps: StepsLike = None,
    branch: Branch | str = Branch.COND,
    batch_size: BatchSize = "auto",
) -> tuple[Float[Tensor, "step unit d_sae"], tuple[int, ...]]:
    """Mean activation over positions of every SAE feature, per step and generation.

    Args:
        adapter: The model.
        request: Generation settings; prompts and seeds are replaced.
        prompts: Prompts to run (each once per seed).
        sae: An sae-lens SAE trained at ``site``.
        site: Site to read (default: the SAE's ``hook_name``).
        seeds: Seeds per prompt (default: the request's first seed).
        steps: Denoising steps (default all).
        branch: CFG branch (default ``cond``; ``both`` counts each branch as a unit).
        batch_size: Generations per batched forward pass, or ``"auto"``
            (:mod:`interp.batching`).

    Returns:
        ``[step, unit, d_sae]`` and the step indices.
    """
    sae = as_sae(sae)
    name = adapter.catalog.validate(sae_site(sae, site)).name
    width = site_width(adapter, name)
    if int(sae.cfg.d_in) != width:
        raise TadaError(f"The SAE takes vectors of width {sae.cfg.d_in}, but {name} has width {width}.")
    seeds = (request.seeds[0],) if seeds is None else tuple(seeds)
    selection = Steps.parse(steps)
    units = [(p, s) for p in prompts for s in seeds]
    if not units:
        raise TadaError("feature_activations needs at least one prompt.")

    @torch.no_grad()
    def encode(x: Tensor) -> Tensor:
        vectors = to_vectors(x).to(device=sae.device, dtype=sae.dtype)
        return sae.encode(vectors).mean(dim=1).float().cpu()  # [rows, d_sae]

    parts = []
    expect(len(units))
    reads = [Read(name, steps=selection, branch=branch, reduce=encode)]
    size = resolve_batch_size(batch_size, adapter, request, len(units), reads=reads)
    for batch in prompt_batches(request, units, size, decode=False):  # only the reads are used
        parts.append(run(adapter, batch, reads=reads).reads[name])
    return torch.cat(parts, dim=1), selection.resolve(request.num_steps)


@jaxtyped(typechecker=beartype)
def score_features(
    positive: Float[Tensor, "step n_pos d_sae"],
    negative: Float[Tensor, "step n_neg d_sae"],
    method: str = "tada",
    eps: float = 1e-6,
) -> Float[Tensor, "step d_sae"]:
    """Per-step feature scores from positive and negative activations (module docstring)."""
    if method not in SCORE_METHODS:
        raise TadaError(f"Unknown feature score {method!r}; valid: {list(SCORE_METHODS)}.")
    pos, neg = positive.double(), negative.double()
    mean_pos, mean_neg = pos.mean(dim=1), neg.mean(dim=1)
    if method == "tada":
        score = mean_pos * torch.log1p(1.0 / (mean_neg + eps))
    elif method == "diff":
        score = mean_pos - mean_neg
    else:
        n_pos, n_neg = pos.shape[1], neg.shape[1]
        if n_pos + n_neg < 3:
            raise TadaError("Cohen's d needs at least 3 generations in total.")
        var = ((n_pos - 1) * pos.var(dim=1) + (n_neg - 1) * neg.var(dim=1)) / (n_pos + n_neg - 2)
        score = (mean_pos - mean_neg) / (var.sqrt() + eps)
    return score.float()


@dataclass(frozen=True)
class FeatureSelection:
    """The top-k features of a concept at one site, per denoising step.

    Attributes:
        site: Site of the SAE.
        method: Score used (``tada``, ``diff``, ``cohen_d``).
        steps: Denoising steps (rows of ``indices``).
        indices: ``[step, k]`` feature indices, best first.
        scores: ``[step, k]`` their scores.
        concept: Concept name, if known.
    """

    site: str
    method: str
    steps: tuple[int, ...]
    indices: Int[Tensor, "step k"]
    scores: Float[Tensor, "step k"]
    concept: str | None = None

    def at(self, step: int) -> list[int]:
        """Feature indices selected at ``step``."""
        if step not in self.steps:
            raise TadaError(f"No features selected for step {step}; steps: {list(self.steps)}.")
        return self.indices[self.steps.index(step)].tolist()

    def describe(self) -> dict[str, Any]:
        """JSON-ready: site, method, concept, and the features per step with scores."""
        return {
            "site": self.site,
            "method": self.method,
            "concept": self.concept,
            "features": {str(s): self.at(s) for s in self.steps},
            "scores": {str(s): self.scores[i].tolist() for i, s in enumerate(self.steps)},
        }


@jaxtyped(typechecker=beartype)
def select_features(
    scores: Float[Tensor, "step d_sae"],
    k: int,
    *,
    site: str,
    steps: Sequence[int],
    method: str = "tada",
    concept: str | None = None,
) -> FeatureSelection:
    """The ``k`` highest-scoring features per step."""
    if not 1 <= k <= scores.shape[1]:
        raise TadaError(f"k must be in 1..{scores.shape[1]} (the SAE's features), got {k}.")
    if len(steps) != scores.shape[0]:
        raise TadaError(f"{scores.shape[0]} score rows for {len(steps)} steps.")
    top = scores.topk(k, dim=1)
    return FeatureSelection(site, method, tuple(steps), top.indices, top.values, concept)


def concept_features_cost(
    request: GenerationRequest,
    n_positive: int,
    n_negative: int,
    *,
    seeds: Sequence[int] | None = None,
    batch_size: BatchSize = "auto",
) -> Cost:
    """What :func:`concept_features` runs: :func:`feature_activations` of both prompt sets."""
    sizes = (n_positive, n_negative)
    return prompt_sets_cost(
        request, sizes, seeds=seeds, batch_size=batch_size, label="features", decode=False
    )


class _RunSettings(TypedDict):
    """Keyword arguments :func:`concept_features` passes on to :func:`feature_activations`."""

    seeds: Sequence[int] | None
    steps: StepsLike
    branch: Branch | str
    batch_size: BatchSize


@beartype
def concept_features(
    adapter: ModelAdapter,
    request: GenerationRequest,
    positive: Sequence[str],
    negative: Sequence[str],
    sae: nn.Module,
    site: Site | str | None = None,
    *,
    k: int = 20,
    method: str = "tada",
    seeds: Sequence[int] | None = None,
    steps: StepsLike = None,
    branch: Branch | str = Branch.COND,
    batch_size: BatchSize = "auto",
    concept: str | None = None,
) -> FeatureSelection:
    """Score every feature per step from positive vs negative prompts; keep the top k."""
    kwargs = _RunSettings(seeds=seeds, steps=steps, branch=branch, batch_size=batch_size)
    pos, resolved = feature_activations(adapter, request, positive, sae, site, **kwargs)
    neg, _ = feature_activations(adapter, request, negative, sae, site, **kwargs)
    scores = score_features(pos, neg, method)
    name = adapter.catalog.validate(sae_site(sae, site)).name
    return select_features(scores, k, site=name, steps=resolved, method=method, concept=concept)
