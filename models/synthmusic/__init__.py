"""SynthMusic: procedural music with known concepts and tiny trained text-to-audio models.

Public API (see ``docs/synthmusic.md``):

* :data:`CONCEPTS`, :class:`ConceptValues`, :func:`render` (music);
* :func:`caption`, :func:`caption_pair` (captions);
* :func:`to_spec`, :func:`to_audio`, :func:`save_wav` (the spectrogram latent);
* :func:`load_scorer` (concept scorer), :func:`estimate_tempo`;
* :class:`SynthMusicPipeline`, :func:`load_synthmusic` (the DiT and UNet models).

Heavy imports (diffusers, transformers) happen only when the pipeline names are used.
"""

from .captions import caption, caption_pair
from .music import CONCEPTS, SAMPLE_RATE, ConceptValues, render
from .spectrogram import save_wav, to_audio, to_spec

__all__ = [
    "CONCEPTS",
    "SAMPLE_RATE",
    "ConceptValues",
    "render",
    "caption",
    "caption_pair",
    "to_spec",
    "to_audio",
    "save_wav",
    "load_scorer",
    "estimate_tempo",
    "SynthMusicPipeline",
    "load_synthmusic",
]


def __getattr__(name: str):
    if name in ("load_scorer", "estimate_tempo"):
        from . import scorer

        return getattr(scorer, name)
    if name in ("SynthMusicPipeline", "load_synthmusic"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'models.synthmusic' has no attribute {name!r}")
