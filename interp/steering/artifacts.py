"""Audio files of a steering evaluation: soundfile writes 32-bit float WAV so no sample
is clipped (the curves are drawn by :func:`interp.plots.plot_curves`)."""

from pathlib import Path

import numpy as np
from torch import Tensor


def write_wav(path: str | Path, audio: Tensor, sample_rate: int) -> Path:
    """Write one waveform ``[samples]`` or ``[channels, samples]`` as float WAV."""
    import soundfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = audio.detach().float().cpu().numpy()
    if data.ndim == 2:
        data = data.T  # soundfile wants [frames, channels]
    elif data.ndim != 1:
        raise ValueError(f"write_wav expects audio [samples] or [channels, samples], got shape {data.shape}.")
    soundfile.write(str(path), np.ascontiguousarray(data), int(sample_rate), subtype="FLOAT")
    return path
