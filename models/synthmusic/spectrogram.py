"""The SynthMusic latent: a semitone-spaced log-frequency log-magnitude spectrogram.

``audio [batch, 32000] -> spec [batch, 80, 64]``: a Hann STFT (2048 samples, hop 500)
pooled into 80 semitone bins from E2 (82.4 Hz) to B8-ish 7.8 kHz with triangular weights in
log-frequency, then ``log10`` and a fixed affine map to roughly zero mean and unit scale.
Semitone bins keep a major third (4 semitones) apart from a minor third (3 semitones).

The inverse (:func:`to_audio`) undoes the affine and log maps, takes the least-squares
(pseudo-inverse) linear-frequency magnitude, and runs Griffin-Lim to get a waveform.
"""

import functools
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .music import NUM_SAMPLES, SAMPLE_RATE

N_BINS = 80
"""Semitone bins."""
N_FRAMES = 64
"""Time frames per 2 s clip (31.25 ms each)."""
F_MIN = 82.40689
"""Centre of the lowest bin in Hz (E2, MIDI 40)."""
N_FFT = 2048
HOP = 500
_LOG_FLOOR = 1e-4
_LOG_SHIFT = 2.2  # log10 magnitudes span about [-4, 0]; centre them (mean ~0, std ~1)
_LOG_SCALE = 1.0


def bin_frequencies() -> np.ndarray:
    """Centre frequency in Hz of each of the :data:`N_BINS` bins."""
    return F_MIN * 2.0 ** (np.arange(N_BINS) / 12.0)


@functools.lru_cache(maxsize=1)
def _filterbank_np() -> np.ndarray:
    """``[N_BINS, N_FFT // 2 + 1]`` triangular weights, one semitone half-width."""
    fft_freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    with np.errstate(divide="ignore"):
        semis = 12.0 * np.log2(np.maximum(fft_freqs, 1e-6) / F_MIN)
    fb = np.maximum(0.0, 1.0 - np.abs(semis[None, :] - np.arange(N_BINS)[:, None]))
    # Bins narrower than the FFT resolution get at least their nearest FFT bin.
    for k, f in enumerate(bin_frequencies()):
        if fb[k].sum() < 1.0:
            fb[k, int(round(f * N_FFT / SAMPLE_RATE))] = 1.0
    return fb


def filterbank() -> torch.Tensor:
    """The filterbank as a float32 tensor ``[N_BINS, N_FFT // 2 + 1]``."""
    return torch.from_numpy(_filterbank_np()).float()


def to_spec(audio: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Waveform(s) -> normalized log-semitone spectrogram.

    Args:
        audio: ``[samples]`` or ``[batch, samples]`` at 16 kHz; shorter clips are zero-padded
            and longer ones cropped to :data:`NUM_SAMPLES`.

    Returns:
        float32 tensor ``[batch, N_BINS, N_FRAMES]`` (batch 1 for a 1-D input).
    """
    x = torch.as_tensor(np.asarray(audio) if not torch.is_tensor(audio) else audio).float()
    if x.dim() == 1:
        x = x[None]
    if x.dim() != 2:
        raise ValueError(f"audio must be [samples] or [batch, samples], got shape {tuple(x.shape)}")
    if x.shape[1] < NUM_SAMPLES:
        x = torch.nn.functional.pad(x, (0, NUM_SAMPLES - x.shape[1]))
    x = x[:, :NUM_SAMPLES]
    window = torch.hann_window(N_FFT, dtype=x.dtype)
    stft = torch.stft(x, N_FFT, HOP, window=window, center=True, return_complex=True)
    mag = stft.abs()[:, :, :N_FRAMES] / (N_FFT / 4)
    semis = torch.einsum("kf,bft->bkt", filterbank().to(mag.dtype), mag)
    return (torch.log10(semis + _LOG_FLOOR) + _LOG_SHIFT) / _LOG_SCALE


def to_magnitude(spec: torch.Tensor) -> torch.Tensor:
    """Normalized spectrogram -> semitone-bin magnitudes (inverse of the log and affine maps)."""
    return torch.clamp(10.0 ** (spec * _LOG_SCALE - _LOG_SHIFT) - _LOG_FLOOR, min=0.0)


def to_audio(spec: torch.Tensor | np.ndarray, n_iter: int = 32, seed: int = 0) -> np.ndarray:
    """Normalized spectrogram(s) -> waveform(s) by pseudo-inverse and Griffin-Lim.

    Args:
        spec: ``[N_BINS, N_FRAMES]`` or ``[batch, N_BINS, N_FRAMES]``.
        n_iter: Griffin-Lim iterations.
        seed: Seed of the random initial phase (deterministic output).

    Returns:
        float32 ``[batch, NUM_SAMPLES]`` with peak amplitude at most 0.9.
    """
    import librosa

    s = torch.as_tensor(spec).detach().float().cpu()
    if s.dim() == 2:
        s = s[None]
    if tuple(s.shape[1:]) != (N_BINS, N_FRAMES):
        raise ValueError(f"spec must be [batch, {N_BINS}, {N_FRAMES}], got {tuple(s.shape)}")
    mags = to_magnitude(s).numpy().astype(np.float64)
    pinv = np.linalg.pinv(_filterbank_np())  # least-squares linear magnitude
    out = []
    for m in mags:
        lin = np.maximum(pinv @ m, 0.0) * (N_FFT / 4)
        lin = np.concatenate([lin, lin[:, -1:]], axis=1)  # 65 STFT frames for center=True
        y = librosa.griffinlim(
            lin,
            n_iter=n_iter,
            hop_length=HOP,
            n_fft=N_FFT,
            length=NUM_SAMPLES,
            random_state=np.random.RandomState(seed),
            init="random",
        )
        out.append(0.9 * y / max(np.abs(y).max(), 1e-9) if np.abs(y).max() > 0.9 else y)
    return np.stack(out).astype(np.float32)


def save_wav(path: str | Path, audio: np.ndarray | torch.Tensor) -> Path:
    """Writes a mono 16 kHz 16-bit PCM WAV (clipped to [-1, 1]); returns the path."""
    a = np.asarray(audio.detach().cpu() if torch.is_tensor(audio) else audio, dtype=np.float32)
    a = a.reshape(-1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(a, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
    return path
