"""The contract between the model-agnostic core and one model family.

An adapter owns a loaded pipeline (or a full-size skeleton on the ``meta`` device) and
answers three questions for the core:

* where the attention modules are (:attr:`ModelAdapter.catalog`),
* how to run one full generation from a :class:`GenerationRequest`
  (:meth:`ModelAdapter.generate`), calling the denoiser once per denoising step with
  the classifier-free-guidance batch laid out as ``[uncond rows, cond rows]``,
* which torch module is the denoiser (:attr:`ModelAdapter.denoiser`).

Everything else (reads, writes, patching, steering) is generic and lives in the core.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from interp.catalog import AttentionModule, SiteCatalog
from interp.context_tokens import ContextToken
from interp.errors import TadaError, UnsupportedModelError
from interp.request_checks import check_request_values
from interp.types import Audio, Latents


@dataclass(frozen=True)
class GenerationRequest:
    """Everything that determines one batched generation.

    Attributes:
        prompts: One text prompt per sample.
        seeds: One seed per sample; sample ``i``'s initial noise (and any sampler
            noise) comes from a generator seeded with ``seeds[i]`` alone, so a row's
            output never depends on what else is in the batch.
        num_steps: Number of denoising steps.
        guidance_scale: Classifier-free guidance scale; ``<= 1`` disables guidance.
        negative_prompt: Prompt of the unconditional branch (``None``: the model's
            default, usually empty).
        duration_s: Length of the audio in seconds, for models that take it.
        options: Extra keyword arguments passed to the pipeline.
        decode: Decode the final latents to audio. Methods whose metric reads only
            latents turn it off to save the decoder's time; adapters may ignore it.
        start_step: Begin the generation at this denoising step from ``start_latents``
            (the sampler's latents before that step, one row per sample), skipping the
            earlier steps. Only adapters with :attr:`ModelAdapter.can_resume` accept it.
        start_latents: The latents to resume from when ``start_step > 0``.
        keep_latents_at: Steps before which the sampler's latents are returned in
            :attr:`GenerationOutput.step_latents` (for a later resume).
        keep_graph: Run with gradients and return latents that carry the autograd graph
            from the noise (for attribution against a metric of the final output). Only
            adapters with :attr:`ModelAdapter.differentiable` accept it.
    """

    prompts: tuple[str, ...]
    seeds: tuple[int, ...]
    num_steps: int = 25
    guidance_scale: float = 4.0
    negative_prompt: str | None = None
    duration_s: float | None = None
    options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    decode: bool = True
    start_step: int = 0
    start_latents: torch.Tensor | None = field(default=None, compare=False, repr=False)
    keep_latents_at: tuple[int, ...] = ()
    keep_graph: bool = False

    def __post_init__(self) -> None:
        check_request_values(self)
        object.__setattr__(self, "prompts", tuple(self.prompts))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if not self.prompts:
            raise TadaError("A generation needs at least one prompt.")
        if len(self.prompts) != len(self.seeds):
            raise TadaError(
                f"Got {len(self.prompts)} prompts but {len(self.seeds)} seeds: give one seed per prompt."
            )
        if self.num_steps < 1:
            raise TadaError(f"num_steps must be >= 1, got {self.num_steps}.")
        object.__setattr__(self, "keep_latents_at", tuple(int(s) for s in self.keep_latents_at))
        if not 0 <= self.start_step < self.num_steps:
            raise TadaError(f"start_step must be in [0, {self.num_steps}), got {self.start_step}.")
        if (self.start_step > 0) != (self.start_latents is not None):
            raise TadaError(
                "Resuming needs both start_step > 0 and start_latents (the latents before that step)."
            )
        if self.start_latents is not None and self.start_latents.shape[0] != len(self.prompts):
            raise TadaError(
                f"start_latents has {self.start_latents.shape[0]} rows for {len(self.prompts)} prompts."
            )
        bad = [s for s in self.keep_latents_at if not self.start_step <= s < self.num_steps]
        if bad:
            raise TadaError(
                f"keep_latents_at {bad} outside the steps run ({self.start_step}..{self.num_steps - 1})."
            )

    @property
    def batch_size(self) -> int:
        """Number of samples (prompts)."""
        return len(self.prompts)

    @property
    def guided(self) -> bool:
        """Whether the denoiser sees an unconditional branch."""
        return self.guidance_scale > 1.0

    def generators(self, device: torch.device | str = "cpu") -> list[torch.Generator]:
        """One freshly seeded generator per sample."""
        return [torch.Generator(device).manual_seed(s) for s in self.seeds]


@dataclass
class GenerationOutput:
    """The result of one generation.

    Attributes:
        latents: Final latents, batch first.
        audio: Waveforms ``[batch, samples]`` or ``[batch, channels, samples]``, or
            ``None`` if decoding was skipped.
        sample_rate: Sample rate of ``audio`` in Hz.
        step_latents: Step -> the sampler's latents before that step, for the steps the
            request asked for in ``keep_latents_at``.
    """

    latents: Latents
    audio: Audio | None
    sample_rate: int
    step_latents: dict[int, torch.Tensor] = field(default_factory=dict)


class GenerationRoot(nn.Module):
    """A module whose forward runs a full generation; the tracing backend wraps it.

    The denoiser is registered as the child ``denoiser``, so activations inside it are
    addressed as ``denoiser.<path>``.
    """

    _adapter: "ModelAdapter"

    def __init__(self, adapter: "ModelAdapter"):
        super().__init__()
        self.denoiser = adapter.denoiser
        object.__setattr__(self, "_adapter", adapter)  # not a registered child

    def forward(self, request: GenerationRequest) -> dict[str, Any]:
        out = self._adapter.generate(request)
        return {
            "latents": out.latents,
            "audio": out.audio,
            "sample_rate": out.sample_rate,
            "step_latents": out.step_latents,
        }


class ModelAdapter(ABC):
    """Base class of model adapters. Subclasses live in ``models/``.

    Attributes:
        family: Short name of the model family, e.g. ``'stable-audio'``.
        name: Name or path the model was loaded from.
        pipeline: The underlying pipeline object (diffusers or the project's own).
    """

    family: str = "abstract"
    can_resume: bool = False
    """Whether :meth:`generate` honours ``start_step`` / ``keep_latents_at``. Only for
    deterministic samplers: resuming a stochastic one would change its later noise."""
    differentiable: bool = False
    """Whether :meth:`generate` honours ``keep_graph`` (the autograd graph of the whole
    sampling trajectory). Pipelines otherwise run without gradients."""

    def __init__(self, name: str, pipeline: Any, catalog: SiteCatalog):
        self.name = name
        self.pipeline = pipeline
        self.catalog = catalog
        self._root: GenerationRoot | None = None
        self.traced: Any = None  # the backend's wrapper, created lazily by interp.runner

    @property
    @abstractmethod
    def denoiser(self) -> nn.Module:
        """The module called once per denoising step."""

    @abstractmethod
    def generate(self, request: GenerationRequest) -> GenerationOutput:
        """Run one full generation with plain torch (no tracing)."""

    @property
    def root(self) -> GenerationRoot:
        """The module the tracing backend wraps."""
        if self._root is None:
            self._root = GenerationRoot(self)
        return self._root

    @property
    def has_weights(self) -> bool:
        """False for a structure-only model on the ``meta`` device."""
        return not any(p.is_meta for p in self.denoiser.parameters())

    @property
    def max_duration_s(self) -> float | None:
        """Longest audio, in seconds, one generation can produce (``None``: no limit known)."""
        return None

    @property
    def min_duration_s(self) -> float | None:
        """Shortest audio, in seconds, that is not empty (``None``: no limit known)."""
        return None

    @property
    def device(self) -> torch.device:
        """Device of the denoiser's parameters."""
        return next(self.denoiser.parameters()).device

    def require_weights(self, action: str) -> None:
        """Raise a clear error if the model was built without weights."""
        if not self.has_weights:
            raise TadaError(
                f"Cannot {action}: {self.name!r} was built on the meta device without "
                f"weights (structure only). Load it with weights to run generations."
            )

    def check_request(self, request: GenerationRequest) -> None:
        """Raise a clear error for request features this adapter cannot honour."""
        if (request.start_step or request.keep_latents_at) and not self.can_resume:
            raise TadaError(
                f"{type(self).__name__} cannot resume a generation mid-way (start_step / "
                f"keep_latents_at); run it from step 0."
            )
        if request.keep_graph and not self.differentiable:
            raise TadaError(
                f"{type(self).__name__} cannot differentiate through its sampler (its pipeline "
                f"runs without gradients); use attribution with the local metric (metric=None)."
            )

    def concept_scorer(self) -> Any:
        """A :class:`interp.metrics.ConceptScorer` for this model's outputs, if the model
        ships one (SynthMusic does); ``None`` otherwise."""
        return None

    def context_tokens(self, module: AttentionModule, prompt: str) -> tuple[ContextToken, ...]:
        """What each context position of a cross-attention module encodes for ``prompt``
        (on the conditional branch): the tokenizer's piece and the prompt word, one
        :class:`~interp.context_tokens.ContextToken` per position of the ``ctx`` axis.

        Raises:
            UnsupportedModelError: If this adapter cannot map positions to words.
        """
        raise UnsupportedModelError(
            f"{type(self).__name__} does not map the context positions of {module.path} back to "
            f"prompt words; attention patterns by position still work (interp.attention_patterns)."
        )

    def attention_scores(self, module: AttentionModule, queries: Tensor, keys: Tensor) -> Tensor:
        """The pre-softmax attention scores of one cross-attention call, without the mask:
        what the module's attention processor computes from its projections (query and
        key norms, grouped-query repetition, scale).

        Args:
            module: The attention module.
            queries: Output of its query projection ``[batch, seq, head, d_head]``.
            keys: Output of its key projection ``[batch, ctx, kv_head, d_head]``.

        Returns:
            ``[batch, head, seq, ctx]``.

        Raises:
            UnsupportedModelError: If this adapter does not know its attention's math.
        """
        raise UnsupportedModelError(
            f"{type(self).__name__} does not say how {module.path} turns queries and keys into "
            f"attention scores, so its attention patterns cannot be read."
        )

    def default_request(self, prompts: list[str], seeds: list[int]) -> GenerationRequest:
        """A request with this model's usual generation settings."""
        return GenerationRequest(prompts=tuple(prompts), seeds=tuple(seeds))

    def __repr__(self) -> str:
        summary = self.catalog.summary()
        return (
            f"{type(self).__name__}(name={self.name!r}, self_layers={summary['self']['layers']}, "
            f"cross_layers={summary['cross']['layers']}, weights={self.has_weights})"
        )
