"""Metrics in a spec: a registered metric's name, with options and a column label::

    metrics: [rms, {name: latent_distance, options: {normalize: true}}]

The metrics themselves, their sign convention (higher = closer to the reference or more
of the concept) and their registry live in :mod:`interp.metrics`.
"""

from collections.abc import Sequence
from typing import Any

from pydantic import Field, model_validator

from interp.adapter import GenerationOutput
from interp.errors import TadaError
from interp.experiments.fields import StrictModel
from interp.metrics import MetricContext, RegisteredMetric, get_metric


class MetricSpec(StrictModel):
    """A metric in a spec: a bare name, or ``{name, options, label}``."""

    name: str = Field(description="A registered metric name (see the list below).")
    options: dict[str, Any] = Field(default_factory=dict, description="Options passed to the metric.")
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
        try:
            get_metric(self.name).bind(self.options)
        except TadaError as error:
            raise ValueError(str(error).removesuffix(".")) from None
        return self

    @property
    def column(self) -> str:
        """The value of the ``metric`` column for this metric."""
        return self.label or self.name

    def build(self, adapter: Any = None) -> RegisteredMetric:
        """The metric, with this spec's options and label, on ``adapter``."""
        return get_metric(self.name).bind(self.options, label=self.column, adapter=adapter)


def step_metric(spec: MetricSpec, adapter: Any = None, scorer_model: str | None = None) -> RegisteredMetric:
    """The registered metric of a step's ``metric`` field on ``adapter``, under its own
    name; ``scorer_model`` (the step's checkpoint of the scorer, e.g. CLAP's) fills the
    metric's ``scorer_model`` option when it has one and the spec's options do not."""
    options = dict(spec.options)
    if scorer_model and "scorer_model" in get_metric(spec.name).options:
        options.setdefault("scorer_model", scorer_model)
    return get_metric(spec.name).bind(options, adapter=adapter)


def compute(
    specs: Sequence[MetricSpec], output: GenerationOutput, context: MetricContext
) -> dict[str, list[float]]:
    """Score ``output`` with each metric: metric column -> one float per sample."""
    return {spec.column: spec.build()(output, context).tolist() for spec in specs}
