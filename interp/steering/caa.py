"""Contrastive activation addition (CAA): steering vectors from two prompt sets.

For each site and denoising step, the vector is the mean activation over the positive
prompts minus the mean over the negative prompts, both averaged over the batch and all
positions (sequence frames, or text tokens for ``text`` sites), on the chosen CFG branch
(conditional by default, as in TADA). It is L2-normalized unless ``normalize=False``;
for a ``heads`` site the whole ``[head, d_head]`` block is normalized as one vector (use
``head`` sites for one vector per head).

Example (needs a model and a request, so it is not run as a doctest)::

    vectors = compute_caa(model, request, concept.positive, concept.negative,
                          ["cross.1.out", "cross.0.head.2"])
    vectors.at("cross.1.out", step=3).shape  # torch.Size([32]) on the tiny Stable Audio
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict

import torch
from beartype import beartype
from torch import Tensor

from interp.adapter import GenerationRequest, ModelAdapter
from interp.batching import BatchSize, resolve_batch_size
from interp.cost import Cost, prompt_batches, prompt_sets_cost
from interp.distributed.executor import run_tasks
from interp.distributed.tasks import GenerationTask
from interp.edits import Read
from interp.errors import TadaError
from interp.progress import expect
from interp.selection import Branch, Steps, StepsLike
from interp.sites import Site
from interp.types import SiteVector, StepNorms, StepVectors


@dataclass
class SteeringVectors:
    """Steering vectors for a set of sites, one per denoising step (or one averaged).

    Attributes:
        vectors: Site name -> tensor ``[step, *site dims]`` as applied (unit norm per
            step when ``normalized``); ``[1, *site dims]`` when ``averaged``.
        norms: Site name -> ``[step]`` L2 norm of the raw mean difference.
        steps: The denoising steps of axis 0 (for ``averaged``: the steps averaged over).
        normalized: Whether each vector was L2-normalized.
        averaged: One vector for every step (the mean over ``steps``).
        branch: CFG branch the activations were collected on.
        metadata: Model, concept, prompts, seeds and generation settings.
    """

    vectors: dict[str, StepVectors]
    norms: dict[str, StepNorms]
    steps: tuple[int, ...]
    normalized: bool
    averaged: bool = False
    branch: str = "cond"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rows = 1 if self.averaged else len(self.steps)
        if set(self.vectors) != set(self.norms):
            raise TadaError("SteeringVectors: vectors and norms must cover the same sites.")
        for name, tensor in self.vectors.items():
            if tensor.shape[0] != rows or self.norms[name].shape != (rows,):
                raise TadaError(
                    f"SteeringVectors: site {name!r} has {tensor.shape[0]} vectors and "
                    f"{tuple(self.norms[name].shape)} norms; expected {rows} of each "
                    f"({'averaged' if self.averaged else f'steps {list(self.steps)}'})."
                )

    @property
    def sites(self) -> list[str]:
        """Site names, in insertion order."""
        return list(self.vectors)

    def _check_site(self, site: str) -> None:
        if site not in self.vectors:
            raise TadaError(f"No steering vector for site {site!r}; available: {self.sites}.")

    def at(self, site: Site | str, step: int) -> SiteVector:
        """The vector applied at ``site`` on denoising step ``step``."""
        name = str(site)
        self._check_site(name)
        if self.averaged:
            return self.vectors[name][0]
        if step not in self.steps:
            raise TadaError(
                f"No vector for step {step} at {name!r}: vectors exist for steps "
                f"{list(self.steps)}. Restrict the steering steps or average over steps."
            )
        return self.vectors[name][self.steps.index(step)]

    def raw(self, site: Site | str) -> StepVectors:
        """The unnormalized mean differences ``[step, *dims]`` at ``site``."""
        name = str(site)
        self._check_site(name)
        vectors = self.vectors[name]
        if not self.normalized:
            return vectors
        return vectors * self.norms[name].view(-1, *([1] * (vectors.dim() - 1)))

    def average_steps(self) -> "SteeringVectors":
        """One vector per site: the mean raw difference over the steps, then normalized."""
        if self.averaged:
            return self
        vectors, norms = {}, {}
        for name in self.vectors:
            mean = self.raw(name).mean(dim=0, keepdim=True)
            vectors[name], norms[name] = _normalize(mean, self.normalized)
        return replace(self, vectors=vectors, norms=norms, averaged=True)

    def subset(self, sites: Sequence[Site | str]) -> "SteeringVectors":
        """The vectors of some sites only."""
        names = [str(s) for s in sites]
        for name in names:
            self._check_site(name)
        return replace(
            self,
            vectors={n: self.vectors[n] for n in names},
            norms={n: self.norms[n] for n in names},
        )


def _normalize(raw: Tensor, normalize: bool) -> tuple[Tensor, Tensor]:
    """Per-step L2 norms of ``raw [step, *dims]`` and the (optionally) unit vectors."""
    norms = raw.flatten(1).norm(dim=1)
    if not normalize:
        return raw, norms
    scale = torch.where(norms > 0, 1.0 / norms.clamp_min(1e-30), torch.zeros_like(norms))
    return raw * scale.view(-1, *([1] * (raw.dim() - 1))), norms


def _position_mean_sum(x: Tensor) -> Tensor:
    """``[rows, seq, *dims] -> [*dims]``: mean over positions, summed over rows."""
    return x.double().mean(dim=1).sum(dim=0)


@beartype
def activation_means(
    adapter: ModelAdapter,
    request: GenerationRequest,
    prompts: Sequence[str],
    sites: Sequence[Site | str],
    *,
    seeds: Sequence[int] | None = None,
    steps: StepsLike = None,
    branch: Branch | str = Branch.COND,
    batch_size: BatchSize = "auto",
) -> tuple[dict[str, Tensor], tuple[int, ...]]:
    """Mean activation per site and step over prompts x seeds, batch and positions.

    Args:
        adapter: The model.
        request: Generation settings; its prompts and seeds are replaced.
        prompts: Prompts to average over.
        sites: Sites to read (any component).
        seeds: Each prompt runs once per seed (default: the request's first seed).
        steps: Denoising steps to read (default all).
        branch: CFG branch whose rows are averaged (default conditional).
        batch_size: Generations per batched forward pass, or ``"auto"``
            (:mod:`interp.batching`).

    Returns:
        Site name -> ``[step, *site dims]`` (float32) and the step indices.
    """
    if not prompts:
        raise TadaError("activation_means needs at least one prompt.")
    names = [s.name for s in adapter.catalog.parse_many(sites)]
    seeds = (request.seeds[0],) if seeds is None else tuple(seeds)
    selection = Steps.parse(steps)
    resolved = selection.resolve(request.num_steps)
    units = [(p, s) for p in prompts for s in seeds]
    per_sample = 2 if (Branch.parse(branch) is Branch.BOTH and request.guided) else 1
    sums: dict[str, Tensor] = {}
    expect(len(units))
    reads = tuple(Read(n, steps=selection, branch=branch, reduce=_position_mean_sum) for n in names)
    size = resolve_batch_size(batch_size, adapter, request, len(units), reads=reads)
    batches = prompt_batches(request, units, size, decode=False)  # only the reads are used
    tasks = [GenerationTask(batch, reads=reads) for batch in batches]
    for result in run_tasks(adapter, tasks):  # batches in order: the same sums on any executor
        for name in names:
            total = result.reads[name]
            sums[name] = total if name not in sums else sums[name] + total
    count = len(units) * per_sample
    return {n: (sums[n] / count).float() for n in names}, resolved


def caa_cost(
    request: GenerationRequest,
    n_positive: int,
    n_negative: int,
    *,
    seeds: Sequence[int] | None = None,
    batch_size: BatchSize = "auto",
) -> Cost:
    """What :func:`compute_caa` runs: :func:`activation_means` of both prompt sets."""
    return prompt_sets_cost(
        request, (n_positive, n_negative), seeds=seeds, batch_size=batch_size,
        label="vectors", decode=False,
    )  # fmt: skip


class _RunSettings(TypedDict):
    """Keyword arguments :func:`compute_caa` passes on to :func:`activation_means`."""

    seeds: Sequence[int] | None
    steps: StepsLike
    branch: Branch | str
    batch_size: BatchSize


@beartype
def compute_caa(
    adapter: ModelAdapter,
    request: GenerationRequest,
    positive: Sequence[str],
    negative: Sequence[str],
    sites: Sequence[Site | str],
    *,
    seeds: Sequence[int] | None = None,
    steps: StepsLike = None,
    branch: Branch | str = Branch.COND,
    normalize: bool = True,
    average_steps: bool = False,
    batch_size: BatchSize = "auto",
    concept: str | None = None,
) -> SteeringVectors:
    """CAA steering vectors: mean(positive) - mean(negative) per site and step.

    Args:
        adapter: The model.
        request: Generation settings (steps, guidance, duration); prompts and seeds are
            replaced by ``positive`` / ``negative`` x ``seeds``.
        positive: Prompts with the concept.
        negative: Prompts without it (or with the opposite value).
        sites: Where to compute vectors: ``out`` sites of layers, ``head`` sites of a
            head subset, ``heads`` or ``text`` sites.
        seeds: Seeds each prompt runs with (default: the request's first seed).
        steps: Denoising steps to compute vectors for (default all).
        branch: CFG branch to average (default ``cond``, as in TADA).
        normalize: L2-normalize each vector.
        average_steps: Return one vector per site, averaged over the steps.
        batch_size: Generations per batched forward pass, or ``"auto"``.
        concept: Concept name recorded in the metadata.

    Returns:
        The vectors, with metadata naming model, sites, steps, prompts and settings.
    """
    if not positive or not negative:
        raise TadaError(
            f"CAA needs positive and negative prompts; got {len(positive)} positive and "
            f"{len(negative)} negative."
        )
    branch = Branch.parse(branch)
    kwargs = _RunSettings(seeds=seeds, steps=steps, branch=branch, batch_size=batch_size)
    pos_means, resolved = activation_means(adapter, request, positive, sites, **kwargs)
    neg_means, _ = activation_means(adapter, request, negative, sites, **kwargs)
    vectors, norms = {}, {}
    for name in pos_means:
        vectors[name], norms[name] = _normalize(pos_means[name] - neg_means[name], normalize)
    used_seeds = [request.seeds[0]] if seeds is None else [int(s) for s in seeds]
    metadata = {
        "method": "caa",
        "model": adapter.name,
        "family": adapter.family,
        "concept": concept,
        "sites": list(vectors),
        "steps": list(resolved),
        "branch": branch.value,
        "normalized": normalize,
        "positive": list(positive),
        "negative": list(negative),
        "seeds": used_seeds,
        "generation": {
            "num_steps": request.num_steps,
            "guidance_scale": request.guidance_scale,
            "duration_s": request.duration_s,
            "negative_prompt": request.negative_prompt,
        },
    }
    result = SteeringVectors(vectors, norms, resolved, normalize, False, branch.value, metadata)
    return result.average_steps() if average_steps else result
