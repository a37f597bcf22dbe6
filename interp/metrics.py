"""Metrics of a generation, and the normalized effect of an intervention.

A metric maps a batch of generations to one number per sample, higher meaning "more
like the clean run" (or "more of the concept"). The normalized effect of a patch is
``(m_patched - m_corrupted) / (m_clean - m_corrupted)``: 1 restores the clean run, 0 does
nothing. It is computed as a ratio of means over (prompt pair, seed) units, with a
bootstrap confidence interval over those units.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from interp.adapter import GenerationOutput
from interp.errors import TadaError
from interp.prompts import PromptPair


@dataclass
class Reference:
    """What a metric may compare against: the unpatched clean and corrupted runs."""

    clean: GenerationOutput
    corrupted: GenerationOutput
    pair: PromptPair


@runtime_checkable
class Metric(Protocol):
    """One number per generated sample; higher = closer to the clean run's concept."""

    name: str

    def __call__(self, output: GenerationOutput, reference: Reference) -> Tensor: ...


@runtime_checkable
class ConceptScorer(Protocol):
    """Scores how present a concept value is in generated samples (e.g. a classifier,
    CLAP text-audio similarity)."""

    def score(self, output: GenerationOutput, concept: str, value: str) -> Tensor:
        """One score per sample for ``value`` of ``concept`` (e.g. a probability)."""
        ...


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1).float()


@dataclass(frozen=True)
class LatentSimilarity:
    """Negative L2 distance of the final latents to the clean run's (model-agnostic)."""

    name: str = "latent_distance"
    needs_audio: bool = False

    def __call__(self, output: GenerationOutput, reference: Reference) -> Float[Tensor, " batch"]:
        return -(_flat(output.latents) - _flat(reference.clean.latents)).norm(dim=1)


@dataclass(frozen=True)
class AudioSimilarity:
    """Negative L2 distance of the decoded audio to the clean run's."""

    name: str = "audio_distance"
    needs_audio: bool = True

    def __call__(self, output: GenerationOutput, reference: Reference) -> Float[Tensor, " batch"]:
        if output.audio is None or reference.clean.audio is None:
            raise TadaError("audio_distance needs decoded audio; the model returned none.")
        return -(_flat(output.audio) - _flat(reference.clean.audio)).norm(dim=1)


@dataclass(frozen=True)
class ConceptContrast:
    """Scorer's score of the clean value minus that of the corrupted value.

    Scorers that offer ``log_score`` (log-probabilities) are compared on that scale, a
    logit difference that does not saturate when the classifier is confident.
    """

    scorer: ConceptScorer
    name: str = "concept"

    @property
    def needs_audio(self) -> bool:
        """Whether the scorer reads decoded audio (scorers say so; default yes)."""
        return bool(getattr(self.scorer, "needs_audio", True))

    def __call__(self, output: GenerationOutput, reference: Reference) -> Float[Tensor, " batch"]:
        pair = reference.pair
        if pair.clean_value is None or pair.corrupted_value is None:
            raise TadaError(
                f"The concept metric needs clean_value and corrupted_value on prompt pairs "
                f"(pair for {pair.concept!r} has none); use latent_distance instead."
            )
        score = getattr(self.scorer, "log_score", None) or self.scorer.score
        positive = score(output, pair.concept, pair.clean_value)
        negative = score(output, pair.concept, pair.corrupted_value)
        return (positive - negative).float()


@dataclass(frozen=True)
class Effect:
    """A normalized effect with its bootstrap 95% confidence interval."""

    mean: float
    ci_low: float
    ci_high: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"effect": self.mean, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}


def normalized_effect(
    patched: Sequence[float] | np.ndarray,
    clean: Sequence[float] | np.ndarray,
    corrupted: Sequence[float] | np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    removal: bool = False,
) -> Effect:
    """Ratio-of-means normalized effect over units, with a percentile bootstrap CI.

    Args:
        patched: Metric of the intervened run, one per (pair, seed) unit.
        clean: Metric of the clean run for the same units.
        corrupted: Metric of the corrupted run for the same units.
        n_boot: Bootstrap resamples (deterministic given ``seed``).
        removal: Measure how much of the gap the intervention *removes* from the clean
            run, ``(clean - patched) / (clean - corrupted)`` (noising, ablation),
            instead of how much it restores, ``(patched - corrupted) / (clean -
            corrupted)`` (denoising).
    """
    p, c, k = (np.asarray(v, dtype=np.float64) for v in (patched, clean, corrupted))
    if not (p.shape == c.shape == k.shape) or p.ndim != 1 or p.size == 0:
        raise TadaError("normalized_effect needs three equal-length, non-empty 1-D sequences.")

    def ratio(idx: np.ndarray) -> float:
        gap = (c[idx] - k[idx]).mean()
        moved = (c[idx] - p[idx]) if removal else (p[idx] - k[idx])
        return float(moved.mean() / gap) if abs(gap) > 1e-12 else float("nan")

    mean = ratio(np.arange(p.size))
    if p.size == 1:
        return Effect(mean, mean, mean, 1)
    rng = np.random.default_rng(seed)
    boots = np.array([ratio(rng.integers(0, p.size, p.size)) for _ in range(n_boot)])
    boots = boots[np.isfinite(boots)]
    low, high = (np.percentile(boots, [2.5, 97.5]) if boots.size else (np.nan, np.nan))
    return Effect(mean, float(low), float(high), int(p.size))


def as_tensor(values: Tensor | Sequence[float]) -> Tensor:
    """Metric values as a 1-D float tensor on CPU."""
    return torch.as_tensor(values, dtype=torch.float64).reshape(-1).cpu()


def needs_audio(metric: Metric) -> bool:
    """Whether a metric reads decoded audio (metrics that only read latents say so)."""
    return bool(getattr(metric, "needs_audio", True))
