"""A model-agnostic fallback concept scorer for models without a trained one.

:class:`CentroidScorer` generates the positive and the negative prompts unsteered (same
seeds), takes the mean final latents (or audio) of each set, and scores a generation by
its projection on the line between the two centroids: 0 at the negative centroid, 1 at
the positive one. It needs nothing but the model, so it works on tiny random models; use
a real :class:`~interp.metrics.ConceptScorer` (a classifier, CLAP) when there is one.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import torch
from beartype import beartype
from jaxtyping import Float
from torch import Tensor

from interp.adapter import GenerationOutput, GenerationRequest, ModelAdapter
from interp.batching import BatchSize, chunks, resolve_batch_size
from interp.errors import TadaError
from interp.progress import expect
from interp.runner import run

Space = Literal["latents", "audio"]


def _flat(output: GenerationOutput, space: str) -> Tensor:
    tensor = output.latents if space == "latents" else output.audio
    if tensor is None:
        raise TadaError(f"CentroidScorer in space {space!r}: the generation has no {space}.")
    return tensor.reshape(tensor.shape[0], -1).double()


@dataclass(frozen=True, eq=False)
class CentroidScorer:
    """Projection on the negative-to-positive centroid line (a :class:`ConceptScorer`).

    Attributes:
        concept: Concept it scores, e.g. ``'mood'``.
        target: Value the positive prompts stand for (score 1 at their centroid).
        opposite: Value of the negative prompts (scored as ``1 - target score``), or
            ``None`` when the negatives only lack the concept.
        positive_centroid: Mean flattened output of the positive prompts.
        negative_centroid: Mean flattened output of the negative prompts.
        space: ``'latents'`` or ``'audio'``.
    """

    concept: str
    target: str
    opposite: str | None
    positive_centroid: Tensor
    negative_centroid: Tensor
    space: Space = "latents"

    def score(self, output: GenerationOutput, concept: str, value: str) -> Float[Tensor, " batch"]:
        """Per-sample score of ``value`` (``target`` or ``opposite``) of ``concept``."""
        if concept != self.concept:
            raise TadaError(f"This CentroidScorer was fit for concept {self.concept!r}, not {concept!r}.")
        valid = [self.target] + ([self.opposite] if self.opposite is not None else [])
        if value not in valid:
            raise TadaError(f"CentroidScorer for {self.concept!r} scores values {valid}, not {value!r}.")
        x = _flat(output, self.space)
        direction = self.positive_centroid - self.negative_centroid
        if x.shape[1] != direction.numel():
            raise TadaError(
                f"CentroidScorer: the generation has {x.shape[1]} {self.space} values per "
                f"sample, the centroids {direction.numel()}; use the same generation settings."
            )
        t = ((x - self.negative_centroid) @ direction) / (direction @ direction).clamp_min(1e-30)
        t = t.float()
        return t if value == self.target else 1.0 - t

    @classmethod
    @beartype
    def fit(
        cls,
        adapter: ModelAdapter,
        request: GenerationRequest,
        positive: Sequence[str],
        negative: Sequence[str],
        *,
        concept: str,
        target: str,
        opposite: str | None = None,
        seeds: Sequence[int] | None = None,
        space: Space = "latents",
        batch_size: BatchSize = "auto",
    ) -> "CentroidScorer":
        """Generate both prompt sets unsteered (each prompt x each seed) and fit."""
        seeds = tuple(request.seeds) if seeds is None else tuple(seeds)
        centroids = []
        for prompts in (positive, negative):
            if not prompts:
                raise TadaError("CentroidScorer.fit needs positive and negative prompts.")
            units = [(p, s) for p in prompts for s in seeds]
            total, count = None, 0
            expect(len(units))
            size = resolve_batch_size(batch_size, adapter, request, len(units))
            for chunk in chunks(units, size):
                batch = replace(request, prompts=tuple(p for p, _ in chunk), seeds=tuple(s for _, s in chunk))
                flat = _flat(run(adapter, batch).output, space)
                total = flat.sum(0) if total is None else total + flat.sum(0)
                count += flat.shape[0]
            assert total is not None  # prompts and seeds are non-empty
            centroids.append(total / count)
        if torch.equal(centroids[0], centroids[1]):
            raise TadaError(
                "CentroidScorer.fit: positive and negative prompts give identical mean "
                "outputs; the model ignores the difference (check the tokenizer vocabulary)."
            )
        return cls(concept, target, opposite, centroids[0], centroids[1], space)
