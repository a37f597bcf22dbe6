"""Named concept scorers, for metrics that measure whether a concept is present.

A scorer factory takes keyword options and returns a
:class:`~interp.metrics.ConceptScorer`. The core ships ``tempo`` (librosa beat
tracking); model packages add others under the entry-point group
``tada_interp.scorers`` (``clap``: LAION-CLAP text-audio similarity).
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from interp.adapter import GenerationOutput
from interp.errors import TadaError, did_you_mean
from interp.plugins import load_entry_points

ENTRY_POINT_GROUP = "tada_interp.scorers"

FAST_WORDS = {"fast", "upbeat", "quick", "energetic"}
SLOW_WORDS = {"slow", "calm", "downtempo", "relaxed"}


class TempoScorer:
    """Tempo by librosa beat tracking: ``log(bpm)`` for fast values, ``-log(bpm)`` for
    slow ones (so a higher score always means "more of the value")."""

    def score(self, output: GenerationOutput, concept: str, value: str) -> torch.Tensor:
        import librosa

        if output.audio is None:
            raise TadaError("The tempo scorer needs decoded audio; the model returned none.")
        sign = 1.0 if value in FAST_WORDS else -1.0 if value in SLOW_WORDS else None
        if sign is None:
            raise TadaError(
                f"The tempo scorer scores fast/slow values, not {value!r}; fast words: "
                f"{sorted(FAST_WORDS)}, slow words: {sorted(SLOW_WORDS)}."
            )
        audio = output.audio.detach().float().cpu().numpy()
        mono = audio.mean(axis=1) if audio.ndim == 3 else audio
        scores = []
        for clip in mono:
            tempo, _ = librosa.beat.beat_track(y=np.asarray(clip, dtype=np.float32), sr=output.sample_rate)
            bpm = float(np.atleast_1d(tempo)[0]) or 1.0
            scores.append(sign * np.log(bpm))
        return torch.tensor(scores, dtype=torch.float64)


_BUILTIN: dict[str, Callable[..., Any]] = {"tempo": lambda **options: TempoScorer()}


def scorer_factories() -> dict[str, Callable[..., Any]]:
    """Every named scorer factory, plug-ins included."""
    found = dict(_BUILTIN)
    for point, factory in load_entry_points(ENTRY_POINT_GROUP, "scorer"):
        if point.name in found:
            raise TadaError(f"Two scorers are named {point.name!r}; names must be unique.")
        found[point.name] = factory
    return found


def load_scorer(name: str, **options: Any) -> Any:
    """Build the named scorer (e.g. ``'clap'``, ``'tempo'``)."""
    factories = scorer_factories()
    if name not in factories:
        raise TadaError(
            f"Unknown scorer {name!r}.{did_you_mean(name, list(factories))} "
            f"Valid scorers: {sorted(factories)}."
        )
    return factories[name](**options)


def scorer_parameters(name: str, **options: Any) -> int | None:
    """Parameters of the named scorer's model, counted without loading it (``None`` when
    its factory cannot count them, 0 for a scorer without a model such as ``tempo``)."""
    if name in _BUILTIN:
        return 0
    factories = scorer_factories()
    if name not in factories:
        raise TadaError(f"Unknown scorer {name!r}. Valid scorers: {sorted(factories)}.")
    count = getattr(factories[name], "parameters", None)
    return None if count is None else int(count(**options))
