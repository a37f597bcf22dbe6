"""Tiny pipelines as loadable models: ``load_model("tiny-stable-audio")``.

Registered under the entry-point group ``tada_interp.models`` so specs and the CLI can
name them like any other model. They build offline from constructor arguments with a
fixed seed, in well under a second, so there is no structure-only variant: with
``weights=False`` the (randomly initialised) tiny model is returned as well.
"""

from collections.abc import Callable
from typing import Any

from interp.adapter import ModelAdapter


def _stable_audio() -> ModelAdapter:
    from models.stable_audio import StableAudioAdapter
    from models.tiny.stable_audio import tiny_stable_audio

    return StableAudioAdapter("tiny-stable-audio", tiny_stable_audio())


class TinyFamily:
    """Plugin entry for :mod:`interp.registry`: tiny test models by name."""

    family = "tiny"
    builders: dict[str, Callable[[], ModelAdapter]] = {"tiny-stable-audio": _stable_audio}
    aliases = {name: name for name in builders}
    pipeline_classes: tuple[str, ...] = ()

    def load(self, source: str, weights: bool, device: str, dtype: Any) -> ModelAdapter:
        """Build the tiny model ``source`` on ``device`` in ``dtype``."""
        adapter = self.builders[source]()
        if device != "cpu" or dtype is not None:
            adapter.pipeline.to(device=device, dtype=dtype)
        return adapter

    def component_parameters(self, source: str) -> dict[str, int]:
        """Parameters of every component of the tiny pipeline (built: it has no meta build)."""
        from torch import nn

        from models.sizes import module_parameters

        components = self.builders[source]().pipeline.components
        return {k: module_parameters(v) for k, v in components.items() if isinstance(v, nn.Module)}


FAMILY = TinyFamily()
