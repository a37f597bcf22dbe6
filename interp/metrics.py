"""Metrics: one protocol and one registry for every score of a generation.

A metric maps a batch of generations to one number per sample. **Sign convention: higher
always means closer to the reference run or more of the concept** (so distances are
reported negated: ``latent_distance`` is ``-||latents - reference||``). Patching,
attribution, ``locate``, steering evaluation and the ``metrics:`` of every step all call
metrics through this protocol and find them in this registry.

The :class:`MetricContext` says what the metric may compare against: the ``reference``
run (the clean run when patching; the same prompts and seeds without the step's edits in a
``generate`` step), the corrupted run and the prompt pair when patching, the wanted
concept value when steering, the model, and the metric's options from the spec.

Register your own with :func:`register_metric`; an installed package can declare it under
the entry-point group ``tada_interp.metrics`` (the entry point names the decorated
function, its name is the metric's)::

    from interp.metrics import register_metric

    @register_metric("loudness", description="Peak absolute amplitude.")
    def loudness(output, context):
        return output.audio.flatten(1).abs().amax(1)
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import torch
from jaxtyping import Float
from torch import Tensor

from interp.adapter import GenerationOutput, GenerationRequest
from interp.errors import TadaError, did_you_mean
from interp.plugins import load_entry_points
from interp.prompts import PromptPair

ENTRY_POINT_GROUP = "tada_interp.metrics"


@dataclass
class MetricContext:
    """What a metric may use besides the output it scores.

    Attributes:
        reference_fn: Computes the reference run (see :meth:`reference`), called once.
        corrupted: The corrupted run, when patching.
        pair: The prompt pair, when patching.
        target: ``(concept, value)`` steered towards, when steering.
        request: The request that produced the output, when known.
        prompts: The resolved prompts, one per sample, when known.
        options: The metric's options from the spec.
        adapter: The model, for metrics that use its concept scorer.
    """

    reference_fn: Callable[[], GenerationOutput] | None = None
    corrupted: GenerationOutput | None = None
    pair: PromptPair | None = None
    target: tuple[str, str] | None = None
    request: GenerationRequest | None = None
    prompts: Sequence[Any] = ()
    options: dict[str, Any] = field(default_factory=dict)
    adapter: Any = None
    _reference: GenerationOutput | None = None

    @classmethod
    def for_pair(
        cls, clean: GenerationOutput, corrupted: GenerationOutput, pair: PromptPair, adapter: Any = None
    ) -> "MetricContext":
        """The context of a patching unit: the clean run is the reference."""
        return cls(corrupted=corrupted, pair=pair, adapter=adapter, _reference=clean)

    def reference(self) -> GenerationOutput:
        """The reference :class:`~interp.adapter.GenerationOutput`, computed once."""
        if self._reference is None:
            if self.reference_fn is None:
                raise TadaError(
                    "This metric compares with a reference run, but the method that ran it "
                    "provides none; use it with a method that edits the model (e.g. "
                    "'generate' with edits, 'locate', 'patch')."
                )
            self._reference = self.reference_fn()
        return self._reference


@runtime_checkable
class Metric(Protocol):
    """One number per generated sample; higher = closer to the reference / more of the
    concept."""

    @property
    def name(self) -> str: ...  # read-only: a plain attribute or a frozen field satisfies it

    @property
    def needs_audio(self) -> bool: ...

    def __call__(self, output: GenerationOutput, context: MetricContext) -> Tensor: ...


@runtime_checkable
class ConceptScorer(Protocol):
    """Scores how present a concept value is in generated samples (e.g. a classifier,
    CLAP text-audio similarity)."""

    def score(self, output: GenerationOutput, concept: str, value: str) -> Tensor:
        """One score per sample for ``value`` of ``concept`` (e.g. a probability)."""
        ...


MetricFn = Callable[[GenerationOutput, MetricContext], "Tensor | Sequence[float]"]
#: ``(options, adapter) -> (scorer name, parameters)`` of a metric's scoring model.
ScorerSize = Callable[[dict[str, Any], Any], "tuple[str, int] | None"]


@dataclass(frozen=True)
class RegisteredMetric:
    """A metric in the registry, and a :class:`Metric` once called.

    :meth:`bind` gives the same metric with options, a column label and the model
    (metrics that use the model's concept scorer need it).
    """

    name: str
    fn: MetricFn
    description: str
    options: tuple[str, ...] = ()
    types: dict[str, type] = field(default_factory=dict)
    audio: bool | Callable[[Any], bool] = True
    bound: tuple[tuple[str, Any], ...] = ()
    adapter: Any = None
    reference: bool = False
    scorer: "ScorerSize | None" = None

    def __getstate__(self) -> dict[str, Any]:
        # A metric sent to another process (a Ray worker) leaves the driver's model behind:
        # the worker's own model reaches it through ``MetricContext.adapter``.
        return {**self.__dict__, "adapter": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)

    @property
    def needs_audio(self) -> bool:
        """Whether the metric reads decoded audio (patching skips the decoder if not)."""
        return bool(self.audio(self.adapter) if callable(self.audio) else self.audio)

    def scorer_parameters(self) -> tuple[str, int] | None:
        """The model this metric loads to score (a name for it) and its parameters,
        counted without loading it; ``None`` when it loads none (``tada plan``)."""
        return None if self.scorer is None else self.scorer(dict(self.bound), self.adapter)

    def bind(
        self, options: Mapping[str, Any] | None = None, *, label: str | None = None, adapter: Any = None
    ) -> "RegisteredMetric":
        """This metric with ``options`` (checked), named ``label``, on ``adapter``."""
        options = dict(options or {})
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise TadaError(
                f"metric {self.name!r} has no option(s) {unknown}; valid options: "
                f"{sorted(self.options) or 'none'}"
            )
        for key, value in options.items():
            kind = self.types.get(key)
            if kind is not None and not _is_a(value, kind):
                raise TadaError(
                    f"option {key!r} of metric {self.name!r} must be a {kind.__name__}, got {value!r}"
                )
        return replace(
            self,
            name=label or self.name,
            bound=tuple(sorted(options.items())),
            adapter=adapter if adapter is not None else self.adapter,
        )

    def __call__(self, output: GenerationOutput, context: MetricContext) -> Float[Tensor, " batch"]:
        context.options = dict(self.bound)
        if context.adapter is None:
            context.adapter = self.adapter
        values = self.fn(output, context)
        if not isinstance(values, Tensor):
            values = torch.tensor([float(v) for v in values], dtype=torch.float64)
        batch = int(output.latents.shape[0])
        if values.ndim != 1 or values.shape[0] != batch:
            raise TadaError(
                f"Metric {self.name!r} returned shape {tuple(values.shape)} for a batch of "
                f"{batch} samples; a metric must return one number per sample."
            )
        return values


_METRICS: dict[str, RegisteredMetric] = {}
_loaded = False


def register_metric(
    name: str,
    *,
    description: str,
    options: Sequence[str] | Mapping[str, type] = (),
    needs_audio: bool | Callable[[Any], bool] = True,
    uses_reference: bool = False,
    scorer: "ScorerSize | None" = None,
) -> Callable[[MetricFn], MetricFn]:
    """Decorator registering ``fn(output, context) -> one number per sample`` as ``name``.

    Args:
        name: Unique metric name used in specs and in the ``metric`` column.
        description: One line for docs and error messages.
        options: Names of the options the metric accepts (others are spec errors), or a
            mapping name -> type (``bool``, ``int``, ``float``, ``str``) whose values specs
            must match.
        needs_audio: Whether the metric reads decoded audio (``False`` lets patching and
            attribution skip the decoder), or a function of the model that says so.
        uses_reference: Whether the metric calls ``context.reference()`` (a ``generate``
            step with edits then runs the unedited generation too; ``tada plan`` counts it).
        scorer: For a metric that loads a model to score (CLAP, a concept classifier):
            ``scorer(options, adapter) -> (name, parameters)``, counted without loading it
            (``tada plan`` adds it to the run's resident memory).

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
        _METRICS[name] = RegisteredMetric(
            name, fn, description, tuple(options), types, needs_audio, reference=uses_reference, scorer=scorer
        )
        return fn

    return decorate


def unregister_metric(name: str) -> None:
    """Remove a metric (tests and interactive sessions)."""
    _METRICS.pop(name, None)


def _load() -> None:
    """Register the built-in metrics and those of installed plug-ins, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import interp.metric_library  # noqa: F401 - registers the built-ins

    for point, _ in load_entry_points(ENTRY_POINT_GROUP, "metric"):
        if point.name not in _METRICS:
            raise TadaError(
                f"The metric plug-in {point.name!r} ({point.value}) registered no metric named "
                f"{point.name!r}; decorate the function it names with "
                f"@register_metric({point.name!r}, ...)."
            )


def get_metric(
    name: str, options: Mapping[str, Any] | None = None, *, adapter: Any = None
) -> RegisteredMetric:
    """The metric registered as ``name``, bound to ``options`` and ``adapter``; the error
    lists the valid names."""
    _load()
    try:
        found = _METRICS[name]
    except KeyError:
        raise TadaError(
            f"Unknown metric {name!r}.{did_you_mean(name, list(_METRICS))} Valid metrics: {sorted(_METRICS)}."
        ) from None
    return found.bind(options, adapter=adapter) if options or adapter is not None else found


def metrics() -> dict[str, RegisteredMetric]:
    """All registered metrics by name, plug-ins included."""
    _load()
    return dict(_METRICS)


def metric_names() -> list[str]:
    """Names of all registered metrics, plug-ins included."""
    return sorted(metrics())


def needs_audio(metric: Metric) -> bool:
    """Whether a metric reads decoded audio (metrics that only read latents say so)."""
    return bool(getattr(metric, "needs_audio", True))


def as_tensor(values: Tensor | Sequence[float]) -> Tensor:
    """Metric values as a 1-D float tensor on CPU."""
    return torch.as_tensor(values, dtype=torch.float64).reshape(-1).cpu()


@dataclass(frozen=True)
class ConceptContrast:
    """A :class:`Metric` from a :class:`ConceptScorer`.

    With a steering target (``context.target``): the scorer's ``score`` of that value.
    Otherwise (patching) the score of the pair's clean value minus that of its corrupted
    value, on ``log_score`` when the scorer offers it (a logit difference that does not
    saturate when the classifier is confident).
    """

    scorer: ConceptScorer
    name: str = "concept"

    @property
    def needs_audio(self) -> bool:
        """Whether the scorer reads decoded audio (scorers say so; default yes)."""
        return bool(getattr(self.scorer, "needs_audio", True))

    def __call__(self, output: GenerationOutput, context: MetricContext) -> Float[Tensor, " batch"]:
        if context.target is not None:
            return self.scorer.score(output, *context.target).float()
        pair = context.pair
        if pair is None or pair.clean_value is None or pair.corrupted_value is None:
            raise TadaError(
                f"The {self.name!r} metric compares two concept values, but "
                f"{'this method gives no pair' if pair is None else f'the pair for {pair.concept!r} lacks them'}: "
                f"it needs prompt pairs with clean_value and corrupted_value, or a steering "
                f"target; use latent_distance instead."
            )
        score = getattr(self.scorer, "log_score", None) or self.scorer.score
        positive = score(output, pair.concept, pair.clean_value)
        negative = score(output, pair.concept, pair.corrupted_value)
        return (positive - negative).float()


class MetricScorer:
    """A :class:`ConceptScorer` from a metric: the score of ``value`` is the metric with
    the steering target as its context (how steering evaluation uses any metric)."""

    def __init__(self, metric: Metric, adapter: Any = None) -> None:
        self.metric = metric
        self.adapter = adapter
        self.needs_audio = needs_audio(metric)

    def score(self, output: GenerationOutput, concept: str, value: str) -> Tensor:
        """The metric of ``output``, steering towards ``value`` of ``concept``."""
        return self.metric(output, MetricContext(target=(concept, value), adapter=self.adapter))


def _is_a(value: Any, kind: type) -> bool:
    if isinstance(value, bool) and kind is not bool:
        return False
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)
