"""A metric plug-in as an installed package would ship it: the entry point
``tada_interp.metrics: tada-test-latent-mean = tests.experiments.metric_plugin:latent_mean``
names this decorated function (see test_metric_plugins.py)."""

from torch import Tensor

from interp.adapter import GenerationOutput
from interp.metrics import MetricContext, register_metric

#: Every (output, context) the metric was called with, for the test to inspect.
CALLS: list[tuple[GenerationOutput, MetricContext]] = []


@register_metric(
    "tada-test-latent-mean", description="Mean of the final latents (test plug-in).", needs_audio=False
)
def latent_mean(output: GenerationOutput, context: MetricContext) -> Tensor:
    """Mean of each sample's final latents (higher = "more of the concept")."""
    CALLS.append((output, context))
    return output.latents.flatten(1).double().mean(1)
