"""Metrics: named functions that score a generation, one float per sample.

A metric is ``fn(output, context) -> sequence of floats`` (one per sample of the
batch), registered under a unique name. Specs list metrics by name, optionally with
options::

    metrics: [rms, {name: latent_distance, options: {normalize: true}}]

Register your own (e.g. a concept scorer)::

    from interp.experiments import register_metric

    @register_metric("loudness", description="Peak absolute amplitude.")
    def loudness(output, context):
        return output.audio.flatten(1).abs().amax(1).tolist()
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, model_validator
from torch import Tensor

from interp.adapter import GenerationOutput, GenerationRequest
from interp.errors import TadaError, did_you_mean
from interp.experiments.fields import StrictModel

MetricFn = Callable[[GenerationOutput, "MetricContext"], Sequence[float]]


@dataclass
class MetricContext:
    """What a metric may use besides the output it scores.

    Attributes:
        request: The :class:`~interp.adapter.GenerationRequest` that produced the output.
        prompts: The resolved prompts, one per sample.
        options: The metric's options from the spec.
        reference_fn: Computes the reference generation (same prompts and seeds,
            without the step's edits); see :meth:`reference`.
    """

    request: GenerationRequest
    prompts: Sequence[Any] = ()
    options: dict[str, Any] = field(default_factory=dict)
    reference_fn: Callable[[], GenerationOutput] | None = None
    _reference: GenerationOutput | None = None

    def reference(self) -> GenerationOutput:
        """The reference :class:`~interp.adapter.GenerationOutput`, computed once."""
        if self._reference is None:
            if self.reference_fn is None:
                raise TadaError(
                    "This metric needs a reference generation, but the method that ran it "
                    "provides none; use it with a method that edits the model (e.g. "
                    "'generate' with edits)."
                )
            self._reference = self.reference_fn()
        return self._reference


@dataclass(frozen=True)
class Metric:
    """A registered metric."""

    name: str
    fn: MetricFn
    description: str
    options: tuple[str, ...] = ()
    types: dict[str, type] = field(default_factory=dict)


_METRICS: dict[str, Metric] = {}


def register_metric(
    name: str, *, description: str, options: Sequence[str] | Mapping[str, type] = ()
) -> Callable[[MetricFn], MetricFn]:
    """Decorator registering ``fn(output, context) -> floats`` under ``name``.

    Args:
        name: Unique metric name used in specs and in the ``metric`` column.
        description: One line for docs and error messages.
        options: Names of the options the metric accepts (others are spec errors), or a
            mapping name -> type (``bool``, ``int``, ``float``, ``str``) whose values specs
            must match.

    Raises:
        TadaError: If the name is taken.
    """

    def decorate(fn: MetricFn) -> MetricFn:
        if name in _METRICS:
            raise TadaError(
                f"A metric named {name!r} is already registered "
                f"({_METRICS[name].fn.__module__}); metric names must be unique. "
                f"Registered: {sorted(_METRICS)}."
            )
        types = dict(options) if isinstance(options, Mapping) else {}
        _METRICS[name] = Metric(name, fn, description, tuple(options), types)
        return fn

    return decorate


def get_metric(name: str) -> Metric:
    """The metric registered as ``name``; the error lists the valid names."""
    try:
        return _METRICS[name]
    except KeyError:
        raise TadaError(
            f"Unknown metric {name!r}.{did_you_mean(name, list(_METRICS))} "
            f"Valid metrics: {sorted(_METRICS)}."
        ) from None


def metric_names() -> list[str]:
    """Names of all registered metrics."""
    return sorted(_METRICS)


def metrics() -> dict[str, Metric]:
    """All registered metrics by name."""
    return dict(_METRICS)


class MetricSpec(StrictModel):
    """A metric in a spec: a bare name, or ``{name, options, label}``."""

    name: str = Field(description="A registered metric name (see the list below).")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Options passed to the metric."
    )
    label: str | None = Field(
        default=None,
        description="Name in the results' metric column (default: the metric name).",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _known(self) -> "MetricSpec":
        metric = _METRICS.get(self.name)
        if metric is None:
            raise ValueError(
                f"unknown metric {self.name!r}.{did_you_mean(self.name, list(_METRICS))} "
                f"Valid metrics: {sorted(_METRICS)}"
            )
        unknown = sorted(set(self.options) - set(metric.options))
        if unknown:
            valid = sorted(metric.options) or "none"
            raise ValueError(
                f"metric {self.name!r} has no option(s) {unknown}; valid options: {valid}"
            )
        for key, value in self.options.items():
            kind = metric.types.get(key)
            if kind is not None and not _is_a(value, kind):
                raise ValueError(
                    f"option {key!r} of metric {self.name!r} must be a {kind.__name__}, got "
                    f"{value!r}"
                )
        return self

    @property
    def column(self) -> str:
        """The value of the ``metric`` column for this metric."""
        return self.label or self.name


def _is_a(value: Any, kind: type) -> bool:
    if isinstance(value, bool) and kind is not bool:
        return False
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)


def compute(
    specs: Sequence[MetricSpec], output: GenerationOutput, context: MetricContext
) -> dict[str, list[float]]:
    """Score ``output`` with each metric; checks one finite-or-NaN float per sample."""
    batch = int(output.latents.shape[0])
    scores: dict[str, list[float]] = {}
    for spec in specs:
        context.options = dict(spec.options)
        values = [float(v) for v in get_metric(spec.name).fn(output, context)]
        if len(values) != batch:
            raise TadaError(
                f"Metric {spec.name!r} returned {len(values)} values for a batch of {batch} "
                f"samples; a metric must return one float per sample."
            )
        scores[spec.column] = values
    return scores


@register_metric("rms", description="Root mean square of each sample's waveform.")
def rms(output: GenerationOutput, context: MetricContext) -> list[float]:
    """RMS amplitude of each waveform."""
    audio = _audio(output, "rms")
    return audio.flatten(1).double().pow(2).mean(1).sqrt().tolist()


@register_metric("duration_s", description="Length of each waveform in seconds.")
def duration_s(output: GenerationOutput, context: MetricContext) -> list[float]:
    """Duration of each waveform."""
    audio = _audio(output, "duration_s")
    return [audio.shape[-1] / float(output.sample_rate)] * audio.shape[0]


@register_metric(
    "latent_distance",
    description="L2 distance of the final latents to the reference run's (same prompts "
    "and seeds, without the step's edits); option normalize divides by the reference norm.",
    options={"normalize": bool},
)
def latent_distance(output: GenerationOutput, context: MetricContext) -> list[float]:
    """L2 distance between final latents and the reference generation's."""
    reference = context.reference().latents.flatten(1).double()
    latents = output.latents.flatten(1).double()
    distance = (latents - reference).norm(dim=1)
    if context.options.get("normalize"):
        distance = distance / reference.norm(dim=1).clamp_min(1e-12)
    return distance.tolist()


def _audio(output: GenerationOutput, name: str) -> Tensor:
    if output.audio is None:
        raise TadaError(f"Metric {name!r} needs audio, but the generation was not decoded.")
    return output.audio
