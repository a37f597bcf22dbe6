"""The built-in metrics, registered in :mod:`interp.metrics` (higher = closer to the
reference run or more of the concept)."""

from functools import cache
from typing import Any

from jaxtyping import Float
from torch import Tensor

from interp.adapter import GenerationOutput
from interp.errors import TadaError
from interp.metrics import ConceptContrast, MetricContext, register_metric


def _audio(output: GenerationOutput, name: str) -> Tensor:
    if output.audio is None:
        raise TadaError(f"Metric {name!r} needs audio, but the generation was not decoded.")
    return output.audio


def _negative_distance(x: Tensor, reference: Tensor, normalize: bool) -> Float[Tensor, " batch"]:
    x, reference = x.flatten(1).double(), reference.flatten(1).double()
    distance = (x - reference).norm(dim=1)
    if normalize:
        distance = distance / reference.norm(dim=1).clamp_min(1e-12)
    return 0.0 - distance  # not -distance: an identical run reads 0.0, not -0.0


@register_metric("rms", description="Root mean square of each sample's waveform.")
def rms(output: GenerationOutput, context: MetricContext) -> Float[Tensor, " batch"]:
    """RMS amplitude of each waveform."""
    return _audio(output, "rms").flatten(1).double().pow(2).mean(1).sqrt()


@register_metric("duration_s", description="Length of each waveform in seconds.")
def duration_s(output: GenerationOutput, context: MetricContext) -> list[float]:
    """Duration of each waveform."""
    audio = _audio(output, "duration_s")
    return [audio.shape[-1] / float(output.sample_rate)] * audio.shape[0]


@register_metric(
    "latent_distance",
    description="Minus the L2 distance of the final latents to the reference run's (the "
    "clean run when patching; the same prompts and seeds without the step's edits in "
    "generate); option normalize divides by the reference norm.",
    options={"normalize": bool},
    needs_audio=False,
    uses_reference=True,
)
def latent_distance(output: GenerationOutput, context: MetricContext) -> Float[Tensor, " batch"]:
    """``-||latents - reference latents||`` (0 = identical, more negative = further)."""
    return _negative_distance(
        output.latents, context.reference().latents, bool(context.options.get("normalize"))
    )


@register_metric(
    "audio_distance",
    description="Minus the L2 distance of the decoded audio to the reference run's; option "
    "normalize divides by the reference norm.",
    options={"normalize": bool},
    uses_reference=True,
)
def audio_distance(output: GenerationOutput, context: MetricContext) -> Float[Tensor, " batch"]:
    """``-||audio - reference audio||``."""
    reference = _audio(context.reference(), "audio_distance")
    return _negative_distance(
        _audio(output, "audio_distance"), reference, bool(context.options.get("normalize"))
    )


@register_metric(
    "concept",
    description="The model's own concept scorer: log-score of the clean value minus the "
    "corrupted value (patching), score of the target value (steering).",
    needs_audio=lambda adapter: _scorer_needs_audio(adapter),
    scorer=lambda options, adapter: _own_scorer_size(adapter),
)
def concept(output: GenerationOutput, context: MetricContext) -> Float[Tensor, " batch"]:
    """The model's concept scorer as a :class:`~interp.metrics.ConceptContrast`."""
    return ConceptContrast(model_scorer(context.adapter))(output, context)


@register_metric(
    "clap",
    description="LAION-CLAP text-audio similarity of the concept values (real models; "
    "option scorer_model: hub id or directory of the checkpoint).",
    options={"scorer_model": str},
    scorer=lambda options, adapter: _clap_size(options.get("scorer_model")),
)
def clap(output: GenerationOutput, context: MetricContext) -> Float[Tensor, " batch"]:
    """CLAP similarity contrast."""
    scorer = named_scorer("clap", context.options.get("scorer_model"))
    return ConceptContrast(scorer, name="clap")(output, context)


@register_metric(
    "tempo",
    description="librosa beat tracking: log BPM, positive for fast "
    "values, negative for slow ones (fast/slow pairs).",
)
def tempo(output: GenerationOutput, context: MetricContext) -> Float[Tensor, " batch"]:
    """Tempo contrast."""
    return ConceptContrast(named_scorer("tempo", None), name="tempo")(output, context)


def _scorer_needs_audio(adapter: Any) -> bool:
    """Whether the adapter's concept scorer reads audio (yes when there is none: the
    missing scorer is reported when the metric is called)."""
    scorer = adapter.concept_scorer() if adapter is not None else None
    return scorer is None or bool(getattr(scorer, "needs_audio", True))


def _own_scorer_size(adapter: Any) -> tuple[str, int] | None:
    """The adapter's concept scorer and its parameters (``None`` when it ships none)."""
    import torch

    scorer = adapter.concept_scorer() if adapter is not None else None
    if scorer is None:
        return None
    modules = [scorer] if isinstance(scorer, torch.nn.Module) else list(vars(scorer).values())
    parameters = {id(p): p.numel() for m in modules if isinstance(m, torch.nn.Module) for p in m.parameters()}
    return f"concept ({getattr(adapter, 'name', 'the model')})", sum(parameters.values())


def _clap_size(source: str | None) -> tuple[str, int] | None:
    """The CLAP checkpoint (default or ``scorer_model``) and its parameters."""
    from interp.scorers import scorer_parameters

    count = scorer_parameters("clap", **({"source": source} if source else {}))
    return None if count is None else (f"clap scorer {source}" if source else "clap scorer", count)


def model_scorer(adapter: Any) -> Any:
    """The adapter's own concept scorer; a clear error when it ships none."""
    scorer = adapter.concept_scorer() if adapter is not None else None
    if scorer is None:
        name = getattr(adapter, "name", None)
        raise TadaError(
            f"metric 'concept' needs a concept scorer, and {name!r} ships none. Use "
            f"metric: latent_distance, or a model with a scorer (synthmusic-dit)."
        )
    return scorer


@cache
def named_scorer(name: str, source: str | None) -> Any:
    """A scorer from :mod:`interp.scorers`, loaded once per (name, checkpoint)."""
    from interp.scorers import load_scorer

    return load_scorer(name, **({"source": source} if source else {}))
