"""The SynthMusic concept scorer: a small CNN on the semitone spectrogram.

``scorer(spec) -> {concept: probabilities [batch, n_values]}``, differentiable with respect
to ``spec`` (so it can serve as the metric of attribution patching). Trained on generator
clips (:mod:`models.synthmusic.train_scorer`), shipped under ``checkpoints/scorer/``.
Also :func:`estimate_tempo`, an independent librosa beat-tracking check of tempo.
"""

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .music import CONCEPTS, SAMPLE_RATE, TEMPO_BPM
from .spectrogram import N_BINS, N_FRAMES

SCORER_DIR = Path(__file__).parent / "checkpoints" / "scorer"


class ConceptScorer(nn.Module):
    """2-D convolutions over (semitone, frame), then dilated 1-D convolutions over time.

    The 2-D stage pools frequency by 8 and time by 2 (62.5 ms steps, 32 steps per clip).

    Args:
        channels: Channels of the 2-D stage.
        hidden: Channels of the 1-D temporal stage.
        concepts: Concept -> values (defines the heads and their order).
    """

    def __init__(
        self, channels: int = 32, hidden: int = 128, concepts: dict[str, tuple[str, ...]] | None = None
    ) -> None:
        super().__init__()
        self.concepts = dict(concepts or CONCEPTS)
        self.config = {
            "channels": channels,
            "hidden": hidden,
            "concepts": {k: list(v) for k, v in self.concepts.items()},
        }
        c = channels
        self.conv2d = nn.Sequential(
            nn.Conv2d(1, c // 2, (5, 3), padding=(2, 1)),
            nn.GELU(),
            nn.Conv2d(c // 2, c, (5, 3), padding=(2, 1)),
            nn.GELU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1),
            nn.GELU(),
            nn.MaxPool2d((2, 1)),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1),
            nn.GELU(),
            nn.MaxPool2d((2, 1)),
        )
        flat = 2 * c * (N_BINS // 8)
        layers: list[nn.Module] = [nn.Conv1d(flat, hidden, 1), nn.GELU()]
        for d in (1, 2, 4, 8):
            layers += [nn.Conv1d(hidden, hidden, 3, padding=d, dilation=d), nn.GELU()]
        self.temporal = nn.Sequential(*layers)
        self.heads = nn.ModuleDict({k: nn.Linear(2 * hidden, len(v)) for k, v in self.concepts.items()})

    def logits(self, spec: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-concept logits ``{concept: [batch, n_values]}`` for ``spec [batch, 80, 64]``."""
        if spec.dim() == 2:
            spec = spec[None]
        if tuple(spec.shape[1:]) != (N_BINS, N_FRAMES):
            raise ValueError(f"spec must be [batch, {N_BINS}, {N_FRAMES}], got {tuple(spec.shape)}")
        h = self.conv2d(spec[:, None].float())
        h = self.temporal(h.flatten(1, 2))
        pooled = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=-1)
        return {k: head(pooled) for k, head in self.heads.items()}

    def forward(self, spec: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-concept probabilities ``{concept: [batch, n_values]}`` (softmax of the logits)."""
        return {k: v.softmax(dim=-1) for k, v in self.logits(spec).items()}

    @torch.no_grad()
    def predict(self, spec: torch.Tensor, batch_size: int = 256) -> dict[str, torch.Tensor]:
        """Predicted class index per concept ``{concept: [batch]}`` (no gradients)."""
        outs: dict[str, list[torch.Tensor]] = {k: [] for k in self.concepts}
        for i in range(0, len(spec), batch_size):
            for k, v in self.logits(spec[i : i + batch_size]).items():
                outs[k].append(v.argmax(dim=-1))
        return {k: torch.cat(v) for k, v in outs.items()}

    def save(self, directory: str | Path, metadata: dict | None = None) -> Path:
        """Writes ``model.safetensors`` and ``config.json`` (plus ``metadata`` in the config)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.detach().contiguous() for k, v in self.state_dict().items()},
            directory / "model.safetensors",
        )
        config = dict(self.config, **({"training": metadata} if metadata else {}))
        (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        return directory


def load_scorer(directory: str | Path | None = None) -> ConceptScorer:
    """Loads the shipped scorer (or one saved with :meth:`ConceptScorer.save`), in eval mode.

    Raises:
        FileNotFoundError: The directory lacks ``config.json`` or ``model.safetensors``.
    """
    directory = Path(directory) if directory is not None else SCORER_DIR
    cfg_path, weights = directory / "config.json", directory / "model.safetensors"
    if not cfg_path.exists() or not weights.exists():
        raise FileNotFoundError(
            f"no scorer in {directory} (need config.json and model.safetensors); "
            "train one with `python -m models.synthmusic.train_scorer`"
        )
    cfg = json.loads(cfg_path.read_text())
    model = ConceptScorer(cfg["channels"], cfg["hidden"], {k: tuple(v) for k, v in cfg["concepts"].items()})
    model.load_state_dict(load_file(weights))
    return model.eval()


def estimate_tempo(audio: np.ndarray) -> float:
    """Tempo in BPM by librosa beat tracking (an independent check, not the scorer).

    Measured on generator clips with drums: medium and fast within 5% of :data:`TEMPO_BPM`;
    slow clips (66 BPM) are often reported at double tempo (librosa's prior is near 120).
    """
    import librosa

    y = np.asarray(audio, dtype=np.float32).reshape(-1)
    onset = librosa.onset.onset_strength(y=y, sr=SAMPLE_RATE)
    return float(np.atleast_1d(librosa.feature.tempo(onset_envelope=onset, sr=SAMPLE_RATE))[0])


def tempo_class(bpm: float) -> str:
    """The tempo class whose BPM is nearest to ``bpm`` in log scale."""
    return min(TEMPO_BPM, key=lambda k: abs(np.log(bpm / TEMPO_BPM[k])))
