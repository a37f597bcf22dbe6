"""What a run holds in memory besides activations, counted without weights.

A run loads the model's whole pipeline (denoiser, text encoders, projection and language
models, VAE or vocoder) at the spec's dtype, and every scorer its steps' metrics load
(CLAP, a model's own concept classifier), which stay loaded for the rest of the process
in float32 on the CPU. :func:`resident` counts both: the pipeline's components from the
model family (:func:`interp.registry.component_parameters`: structures built on the
``meta`` device from the configs that would be loaded), each scorer from its metric
(:meth:`interp.metrics.RegisteredMetric.scorer_parameters`).
"""

from dataclasses import dataclass, field
from typing import Any

from interp.errors import TadaError

#: Scorers are loaded in float32 (``interp.metric_library.named_scorer``, the models' own).
SCORER_ITEMSIZE = 4


@dataclass(frozen=True)
class Resident:
    """The parameters a run holds.

    Attributes:
        components: Pipeline component -> parameters (the denoiser alone when the family
            cannot count its pipeline, see ``complete``).
        denoiser: Parameters of the denoiser.
        itemsize: Bytes per parameter at the spec's dtype.
        scorers: Scorer -> parameters, of every step's metric that loads one.
        complete: Whether ``components`` is the whole pipeline.
        note: Why it is not (empty when it is).
    """

    components: dict[str, int]
    denoiser: int
    itemsize: int
    scorers: dict[str, int] = field(default_factory=dict)
    complete: bool = True
    note: str = ""

    @property
    def pipeline(self) -> int:
        """Parameters of the pipeline's components."""
        return sum(self.components.values())

    @property
    def pipeline_bytes(self) -> int:
        """The pipeline's parameters at the spec's dtype."""
        return self.pipeline * self.itemsize

    @property
    def denoiser_bytes(self) -> int:
        """The denoiser's parameters at the spec's dtype."""
        return self.denoiser * self.itemsize

    @property
    def scorer_bytes(self) -> int:
        """Every scorer's parameters (float32)."""
        return sum(self.scorers.values()) * SCORER_ITEMSIZE

    def device_bytes(self, device: str) -> int:
        """What stays on ``device``: the pipeline, and on the CPU the scorers as well."""
        on_cpu = not device.startswith(("cuda", "mps"))
        return self.pipeline_bytes + (self.scorer_bytes if on_cpu else 0)


def itemsize_of(dtype: str | None) -> int:
    """Bytes per parameter at ``dtype`` (``None``: float32, a checkpoint's usual dtype)."""
    import torch

    return torch.empty(0, dtype=getattr(torch, dtype or "float32")).element_size()


def resident(model: str, structure: Any, dtype: str | None, scorers: dict[str, int]) -> Resident:
    """The parameters a run of ``model`` holds: its pipeline's components (from the model
    family), the denoiser of ``structure`` (the structure-only build), and ``scorers``."""
    from interp.registry import component_parameters

    denoiser = sum(p.numel() for p in structure.denoiser.parameters())
    itemsize = itemsize_of(dtype)
    try:
        components = component_parameters(model)
    except TadaError as error:
        components, why = None, str(error).rstrip(".")
    else:
        why = "its model family cannot count its components"
    if not components:
        return Resident({"denoiser": denoiser}, denoiser, itemsize, scorers, complete=False, note=why)
    return Resident(components, denoiser, itemsize, scorers)


def step_scorers(step: Any, ctx: Any, structure: Any) -> dict[str, int]:
    """Scorer -> parameters that ``step``'s metrics load: its own ``metric`` field, and
    the experiment's ``metrics`` when it scores with them."""
    from interp.experiments.metric_specs import MetricSpec, step_metric

    specs = [step.metric] if isinstance(getattr(step, "metric", None), MetricSpec) else []
    if getattr(step, "scores_with_metrics", False):
        specs += list(ctx.metrics)
    found: dict[str, int] = {}
    for spec in specs:
        size = step_metric(spec, structure, getattr(step, "scorer_model", None)).scorer_parameters()
        if size is not None:
            found[size[0]] = size[1]
    return found
