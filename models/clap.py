"""LAION-CLAP text-audio similarity as a concept scorer for real models.

The TADA paper measures concept presence with the music CLAP checkpoint and the template
``"This is a music of {value}"``. :class:`ClapScorer` loads it through ``transformers``
from the hub cache or a local directory; offline without the weights it fails with one
clear sentence (no hub stack trace).
"""

from typing import Any

import numpy as np
import torch

from interp.adapter import GenerationOutput
from interp.errors import ModelNotFoundError, TadaError

DEFAULT_CHECKPOINT = "laion/larger_clap_music"
#: The rehearsal recipe of the default checkpoint (``models/configs/larger-clap-music``).
RECIPE = "larger-clap-music"
TEMPLATE = "This is a music of {value}"


class ClapScorer:
    """Cosine similarity between generated audio and ``TEMPLATE.format(value=...)``.

    Args:
        model: A ``transformers.ClapModel``.
        processor: The matching ``ClapProcessor`` (feature extractor + tokenizer).
        template: Text template with a ``{value}`` slot.
    """

    def __init__(self, model: Any, processor: Any, template: str = TEMPLATE):
        self.model = model.eval()
        self.processor = processor
        self.template = template
        self._text_cache: dict[str, torch.Tensor] = {}

    @classmethod
    def load(cls, source: str = DEFAULT_CHECKPOINT, device: str = "cpu") -> "ClapScorer":
        """Load a CLAP checkpoint (hub id or local directory) without network surprises."""
        from transformers import ClapModel, ClapProcessor

        try:
            model = ClapModel.from_pretrained(source, local_files_only=True)
            processor = ClapProcessor.from_pretrained(source, local_files_only=True)
        except Exception as error:  # one clear sentence instead
            raise ModelNotFoundError(
                f"Could not load the CLAP scorer {source!r} from the local Hugging Face cache "
                f"or directory ({type(error).__name__}); download it where the hub is reachable "
                f"(`huggingface-cli download {source}`) or pass a local directory, or use "
                f"metric: latent_distance."
            ) from None
        return cls(model.to(device), processor)  # pyright: ignore[reportArgumentType]  # transformers wraps .to with functools.wraps

    def _text(self, value: str) -> torch.Tensor:
        if value not in self._text_cache:
            tokens = self.processor.tokenizer(
                [self.template.format(value=value)], padding=True, return_tensors="pt"
            )
            with torch.no_grad():
                embedding = _pooled(self.model.get_text_features(**tokens.to(self.model.device)))
            self._text_cache[value] = torch.nn.functional.normalize(embedding, dim=-1)[0]
        return self._text_cache[value]

    def audio_embeddings(self, output: GenerationOutput) -> torch.Tensor:
        """Normalized CLAP audio embeddings of a batch of generations (mono, resampled)."""
        if output.audio is None:
            raise TadaError("The CLAP scorer needs decoded audio; the model returned none.")
        import librosa

        target = self.processor.feature_extractor.sampling_rate
        audio = output.audio.detach().float().cpu().numpy()
        mono = audio.mean(axis=1) if audio.ndim == 3 else audio
        clips = [
            librosa.resample(np.asarray(x, dtype=np.float32), orig_sr=output.sample_rate, target_sr=target)
            for x in mono
        ]
        features = self.processor.feature_extractor(clips, sampling_rate=target, return_tensors="pt")
        with torch.no_grad():
            embedding = _pooled(self.model.get_audio_features(**features.to(self.model.device)))
        return torch.nn.functional.normalize(embedding, dim=-1)

    def score(self, output: GenerationOutput, concept: str, value: str) -> torch.Tensor:
        """Cosine similarity of each sample to the text for ``value``."""
        return (self.audio_embeddings(output) @ self._text(value)).cpu()


def _pooled(features: Any) -> torch.Tensor:
    if isinstance(features, torch.Tensor):
        return features
    pooled = getattr(features, "pooler_output", None)
    if isinstance(pooled, torch.Tensor):
        return pooled
    return features[0]


class ClapScorerFactory:
    """Scorer factory for :mod:`interp.scorers` (entry point ``clap``): builds the scorer,
    and counts its parameters without loading it (``tada plan``)."""

    def __call__(self, source: str = DEFAULT_CHECKPOINT, device: str = "cpu", **_: Any) -> ClapScorer:
        return ClapScorer.load(source, device)

    def parameters(self, source: str = DEFAULT_CHECKPOINT, **_: Any) -> int:
        """Parameters of the checkpoint's model: a local directory's config, or for the
        default checkpoint (hub id or ``larger-clap-music``) the shipped recipe.

        Raises:
            ModelNotFoundError: Another hub id (its config is not here).
        """
        from pathlib import Path

        from models.sizes import directory_parameters, recipe_parameters

        if Path(source).expanduser().is_dir():
            return sum(directory_parameters(Path(source).expanduser()).values())
        if source in (DEFAULT_CHECKPOINT, RECIPE):
            return sum(recipe_parameters(RECIPE).values())
        raise ModelNotFoundError(
            f"No config of the CLAP checkpoint {source!r} here to count its parameters; give a "
            f"local directory, or the default {DEFAULT_CHECKPOINT!r}."
        )


load_clap_scorer = ClapScorerFactory()
