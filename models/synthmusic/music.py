"""Procedural music with known ground-truth concepts.

Every clip is 2 s of 16 kHz mono audio, rendered in numpy from a frozen set of concept
values and an integer seed. The same ``(values, seed)`` always gives the same samples, bit
for bit. Concepts are independent by construction:

* ``instrument``: the timbre of the chord and the melody (additive harmonics with a
  per-instrument spectral envelope, attack and decay).
* ``drums``: kick on beats 1 and 3, snare on 2 and 4, hi-hat on every eighth note.
* ``tempo``: a fixed BPM per class (:data:`TEMPO_BPM`); melody notes fall on every beat,
  chords on every second beat, drums on the same grid.
* ``mood``: major (happy) or minor (sad) triad held under a melody on the same scale.
  The key is fixed per instrument (its tonic is the instrument's register), so mood is a
  matter of *which* pitches sound (the third, sixth and seventh degrees), not of intervals
  relative to a random tonic: with random keys (data v1) both trained models stayed at
  chance on mood.
* ``vocals``: a formant-synthesised sung vowel in a female or male pitch range.

Random choices that do not define a concept (melody contour, vowel, mix levels) are
drawn from per-part random streams seeded by ``seed`` alone, so changing one concept value
with the same seed changes only that part of the music.
"""

import dataclasses
import itertools

import numpy as np

SAMPLE_RATE = 16_000
"""Audio sample rate in Hz."""

DURATION_S = 2.0
"""Clip length in seconds."""

NUM_SAMPLES = int(SAMPLE_RATE * DURATION_S)
"""Samples per clip (32000)."""

DATA_VERSION = "synthmusic-v2"
"""Bumped whenever the rendering or the captions change in a way that alters data."""

CONCEPTS: dict[str, tuple[str, ...]] = {
    "instrument": ("piano", "organ", "flute", "strings", "bass", "guitar"),
    "drums": ("no", "yes"),
    "tempo": ("slow", "medium", "fast"),
    "mood": ("happy", "sad"),
    "vocals": ("none", "female", "male"),
}
"""Concept name -> ordered tuple of its values (the order defines class indices).

SynthMusic's own ground-truth label space: what its captions say, its data renders and its
scorer classifies. It is deliberately separate from the shared concept vocabulary
(``interp/data/concepts.yaml``) that the TADA patching and steering prompts come from."""

TEMPO_BPM: dict[str, float] = {"slow": 66.0, "medium": 104.0, "fast": 156.0}
"""Beats per minute of each tempo class."""

_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)

# Base MIDI note (the tonic) of the chord for each instrument: the key is fixed (data v2).
_REGISTER = {"piano": 55, "organ": 55, "flute": 67, "strings": 55, "bass": 40, "guitar": 52}

# Vowel formants (F1, F2, F3) in Hz for a male voice; female voices scale them by 1.15.
_VOWELS = {
    "a": (730.0, 1090.0, 2440.0),
    "o": (570.0, 840.0, 2410.0),
    "e": (530.0, 1840.0, 2480.0),
    "u": (440.0, 1020.0, 2240.0),
}
_VOICE_BASE_MIDI = {"female": 62, "male": 45}  # D4 and A2: bottom of the sung range

# Per-part random stream ids (_STREAM_KEY drew v1's random key; unused, kept so the others stay fixed).
_STREAM_KEY, _STREAM_MELODY, _STREAM_VOICE, _STREAM_DRUMS, _STREAM_MIX, _STREAM_TONE = range(6)


@dataclasses.dataclass(frozen=True)
class ConceptValues:
    """One value per concept; validated on construction.

    Attributes:
        instrument: One of ``CONCEPTS["instrument"]``.
        drums: ``"no"`` or ``"yes"``.
        tempo: ``"slow"``, ``"medium"`` or ``"fast"``.
        mood: ``"happy"`` or ``"sad"``.
        vocals: ``"none"``, ``"female"`` or ``"male"``.
    """

    instrument: str
    drums: str
    tempo: str
    mood: str
    vocals: str

    def __post_init__(self) -> None:
        for concept, valid in CONCEPTS.items():
            value = getattr(self, concept)
            if value not in valid:
                raise ValueError(
                    f"invalid value {value!r} for concept {concept!r}; valid values: {list(valid)}"
                )

    def as_dict(self) -> dict[str, str]:
        """Returns ``{concept: value}`` in :data:`CONCEPTS` order."""
        return {concept: getattr(self, concept) for concept in CONCEPTS}

    def indices(self) -> dict[str, int]:
        """Returns ``{concept: class index}`` in :data:`CONCEPTS` order."""
        return {c: CONCEPTS[c].index(v) for c, v in self.as_dict().items()}

    def replace(self, concept: str, value: str) -> "ConceptValues":
        """Returns a copy with one concept set to ``value``.

        Raises:
            KeyError: ``concept`` is not a concept name.
            ValueError: ``value`` is not valid for the concept.
        """
        if concept not in CONCEPTS:
            raise KeyError(f"unknown concept {concept!r}; valid concepts: {list(CONCEPTS)}")
        return dataclasses.replace(self, **{concept: value})


def all_combinations() -> list[ConceptValues]:
    """Returns every combination of concept values (6*2*3*2*3 = 216), in a fixed order."""
    return [ConceptValues(*combo) for combo in itertools.product(*CONCEPTS.values())]


def random_values(rng: np.random.Generator) -> ConceptValues:
    """Draws every concept uniformly and independently."""
    return ConceptValues(*(vals[int(rng.integers(len(vals)))] for vals in CONCEPTS.values()))


def midi_to_hz(midi: float | int | np.number | np.ndarray) -> float | np.number | np.ndarray:
    """Converts MIDI note numbers to Hz (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def beat_times(tempo: str) -> np.ndarray:
    """Onset times in seconds of the beats of a clip with this tempo class."""
    period = 60.0 / TEMPO_BPM[tempo]
    return np.arange(0.0, DURATION_S - 0.05, period)


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, stream])


def _envelope(n: int, attack: float, decay: float | None, release: float = 0.03) -> np.ndarray:
    """Attack ramp, then exponential decay (``decay`` = time constant) or sustain, then release."""
    t = np.arange(n) / SAMPLE_RATE
    env = np.minimum(1.0, t / max(attack, 1e-4))
    if decay is not None:
        env = env * np.exp(-np.maximum(t - attack, 0.0) / decay)
    rel = int(release * SAMPLE_RATE)
    if 0 < rel < n:
        env[-rel:] *= np.linspace(1.0, 0.0, rel)
    return env


_TABLE_SIZE = 4096


def _wavetable(harmonics: np.ndarray, amps: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Evaluates ``sum_h amps[h] * sin(harmonics[h] * phase)`` through a one-period table."""
    grid = np.arange(_TABLE_SIZE + 1) * (2 * np.pi / _TABLE_SIZE)
    table = (amps[:, None] * np.sin(harmonics[:, None] * grid[None, :])).sum(axis=0)
    pos = (phase * (_TABLE_SIZE / (2 * np.pi))) % _TABLE_SIZE
    i = pos.astype(np.int64)
    frac = pos - i
    return table[i] * (1.0 - frac) + table[i + 1] * frac


def instrument_tone(instrument: str, freq: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """One note of an instrument: additive harmonics shaped by its envelope.

    Harmonics above 7.6 kHz are dropped (no aliasing at 16 kHz).
    """
    t = np.arange(n) / SAMPLE_RATE
    max_h = max(1, int(7600.0 / freq))
    phase = 2 * np.pi * freq * t
    if instrument in ("piano", "guitar"):
        # Groups of harmonics with faster decay for higher groups (bright attack, mellow tail).
        if instrument == "piano":
            groups, slope, base_decay, attack = ((1, 3), (3, 7), (7, 16)), 1.6, 0.7, 0.004
        else:
            groups, slope, base_decay, attack = ((1, 3), (3, 8), (8, 20)), 1.0, 0.45, 0.002
        tone = np.zeros(n)
        for g, (lo, hi) in enumerate(groups):
            h = np.arange(lo, min(hi, max_h + 1))
            if len(h) == 0:
                continue
            amps = 1.0 / h**slope
            if instrument == "guitar":
                amps = amps * np.abs(np.sin(np.pi * h * 0.18)) * 2.0
            tone += _wavetable(h, amps, phase) * np.exp(-t / (base_decay / (1.0 + 1.5 * g)))
        return tone * _envelope(n, attack, None)
    if instrument == "organ":
        h = np.array([1, 2, 3, 4, 6, 8])
        amps = np.array([1.0, 0.8, 0.6, 0.5, 0.35, 0.3])
        keep = h <= max_h
        return _wavetable(h[keep], amps[keep], phase) * _envelope(n, 0.008, None, release=0.01)
    if instrument == "flute":
        vib = 1.0 + 0.006 * np.sin(2 * np.pi * 5.0 * t)
        phase = 2 * np.pi * freq * np.cumsum(vib) / SAMPLE_RATE
        h = np.array([1, 2, 3])
        tone = _wavetable(h[h <= max_h], np.array([1.0, 0.12, 0.04])[h <= max_h], phase)
        breath = np.convolve(rng.standard_normal(n) * 0.04, np.ones(4) / 4, mode="same")
        return (tone + breath) * _envelope(n, 0.08, None, release=0.05)
    if instrument == "strings":
        h = np.arange(1, min(24, max_h) + 1)
        amps = 1.0 / h
        tone = np.zeros(n)
        for detune in (1.0, 1.003):
            vib = 1.0 + 0.005 * np.sin(2 * np.pi * 5.5 * t + rng.uniform(0, 2 * np.pi))
            tone += 0.6 * _wavetable(h, amps, 2 * np.pi * freq * detune * np.cumsum(vib) / SAMPLE_RATE)
        return tone * _envelope(n, 0.15, None, release=0.08)
    if instrument == "bass":
        h = np.arange(1, min(7, max_h) + 1)
        return _wavetable(h, 1.0 / h**2.0, phase) * _envelope(n, 0.01, 0.35)
    raise ValueError(f"unknown instrument {instrument!r}; valid: {list(CONCEPTS['instrument'])}")


def _add(buf: np.ndarray, start: float, note: np.ndarray, gain: float) -> None:
    i = int(round(start * SAMPLE_RATE))
    if i >= len(buf):
        return
    m = min(len(note), len(buf) - i)
    buf[i : i + m] += gain * note[:m]


def _harmony(values: ConceptValues, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Chord on every second beat and a melody note on every beat, in the instrument's timbre.

    Returns:
        The chord+melody signal and the list of MIDI melody notes (for tests).
    """
    scale = _MAJOR_SCALE if values.mood == "happy" else _MINOR_SCALE
    base = _REGISTER[values.instrument]
    beats = beat_times(values.tempo)
    period = 60.0 / TEMPO_BPM[values.tempo]
    melody_rng = _rng(seed, _STREAM_MELODY)
    tone_rng = _rng(seed, _STREAM_TONE)
    out = np.zeros(NUM_SAMPLES)
    triad = [base + scale[0], base + scale[2], base + scale[4]]
    for start in beats[::2]:
        dur = min(2 * period, DURATION_S - start)
        for midi in triad:
            note = instrument_tone(
                values.instrument, float(midi_to_hz(midi)), int(dur * SAMPLE_RATE), tone_rng
            )
            _add(out, start, note, 0.32)
    # Melody: scale degrees favouring the chord tones (degree 2 = the third) one octave up.
    degrees = melody_rng.choice([0, 2, 4, 2, 1, 3, 5, 2, 4, 6], size=len(beats))
    octave = 12 if values.instrument != "flute" else 0
    melody = np.array([base + octave + scale[d] for d in degrees])
    for start, midi in zip(beats, melody):
        dur = min(period * 0.95, DURATION_S - start)
        note = instrument_tone(values.instrument, float(midi_to_hz(midi)), int(dur * SAMPLE_RATE), tone_rng)
        _add(out, start, note, 0.45)
    return out, melody


def _drums(tempo: str, seed: int) -> np.ndarray:
    """Kick on beats 1 and 3, snare on 2 and 4, hi-hat on eighth notes."""
    rng = _rng(seed, _STREAM_DRUMS)
    out = np.zeros(NUM_SAMPLES)
    period = 60.0 / TEMPO_BPM[tempo]
    n_kick = int(0.25 * SAMPLE_RATE)
    t = np.arange(n_kick) / SAMPLE_RATE
    sweep = 50.0 + 110.0 * np.exp(-t / 0.04)
    kick = np.sin(2 * np.pi * np.cumsum(sweep) / SAMPLE_RATE) * np.exp(-t / 0.08)
    n_snare = int(0.18 * SAMPLE_RATE)
    ts = np.arange(n_snare) / SAMPLE_RATE
    n_hat = int(0.05 * SAMPLE_RATE)
    for i, start in enumerate(beats := beat_times(tempo)):
        if i % 2 == 0:
            _add(out, start, kick, 0.9)
        else:
            noise = rng.standard_normal(n_snare)
            noise = noise - np.convolve(noise, np.ones(3) / 3, mode="same")  # brighten
            snare = (0.6 * noise + 0.5 * np.sin(2 * np.pi * 190.0 * ts)) * np.exp(-ts / 0.05)
            _add(out, start, snare, 0.55)
    for start in np.arange(0.0, DURATION_S - 0.02, period / 2):
        noise = rng.standard_normal(n_hat)
        hat = np.diff(noise, prepend=0.0) * np.exp(-np.arange(n_hat) / SAMPLE_RATE / 0.012)
        _add(out, start, hat, 0.18)
    del beats
    return out


def _formant_gain(freqs: np.ndarray, formants: tuple[float, ...]) -> np.ndarray:
    """Spectral envelope of a vowel: sum of resonances with 80-120 Hz bandwidths."""
    gain = np.zeros_like(freqs)
    for k, f in enumerate(formants):
        bw = 80.0 + 40.0 * k
        gain += (1.0 / (1 + k)) / (1.0 + ((freqs - f) / (bw / 2)) ** 2)
    return gain


def _vocals(values: ConceptValues, seed: int) -> np.ndarray:
    """A sung vowel on the scale, two beats per note, glottal source through formants."""
    rng = _rng(seed, _STREAM_VOICE)
    vowel = list(_VOWELS)[int(rng.integers(len(_VOWELS)))]
    scale = _MAJOR_SCALE if values.mood == "happy" else _MINOR_SCALE
    scale_f = 1.15 if values.vocals == "female" else 1.0
    formants = tuple(f * scale_f for f in _VOWELS[vowel])
    base = _VOICE_BASE_MIDI[values.vocals]
    period = 60.0 / TEMPO_BPM[values.tempo]
    out = np.zeros(NUM_SAMPLES)
    starts = beat_times(values.tempo)[::2]
    degrees = rng.choice([0, 2, 4, 2, 4], size=len(starts))
    for start, d in zip(starts, degrees):
        dur = min(2 * period * 0.95, DURATION_S - start)
        n = int(dur * SAMPLE_RATE)
        t = np.arange(n) / SAMPLE_RATE
        f0 = float(midi_to_hz(base + scale[d]))
        vib = 1.0 + 0.012 * np.sin(2 * np.pi * 5.5 * t) * np.minimum(1.0, t / 0.2)
        phase = 2 * np.pi * f0 * np.cumsum(vib) / SAMPLE_RATE
        h = np.arange(1, int(7600.0 / f0))
        note = _wavetable(h, _formant_gain(h * f0, formants) / h**0.6, phase)
        note *= _envelope(n, 0.06, None, release=0.08)
        _add(out, start, note, 0.9)
    return out


def tonic_pitch_class(values: ConceptValues) -> int:
    """Pitch class (0 = C) of the key's tonic: fixed per instrument since data v2 (v1 drew a
    random key per clip, and the trained models could not learn mood relative to it)."""
    return _REGISTER[values.instrument] % 12


def render_parts(values: ConceptValues, seed: int) -> dict[str, np.ndarray]:
    """The parts of a clip before mixing, each float64 ``[NUM_SAMPLES]`` with peak 1.

    Returns:
        ``{"music": chord and melody, "drums": ..., "vocals": ...}``; absent parts are zeros.
    """
    if not isinstance(values, ConceptValues):
        raise TypeError(f"values must be a ConceptValues, got {type(values).__name__}")
    parts = {
        "music": _harmony(values, seed)[0],
        "drums": _drums(values.tempo, seed) if values.drums == "yes" else np.zeros(NUM_SAMPLES),
        "vocals": _vocals(values, seed) if values.vocals != "none" else np.zeros(NUM_SAMPLES),
    }
    return {k: v / (np.abs(v).max() + 1e-9) for k, v in parts.items()}


def render(values: ConceptValues, seed: int) -> np.ndarray:
    """Renders one clip.

    Args:
        values: The concept values of the clip.
        seed: Any integer; equal ``(values, seed)`` give bit-identical audio.

    Returns:
        float32 array of shape ``[NUM_SAMPLES]`` with peak amplitude 0.9.
    """
    parts = render_parts(values, seed)
    gains = _rng(seed, _STREAM_MIX).uniform(0.8, 1.2, size=3)
    out = gains[0] * parts["music"]
    if values.drums == "yes":
        out = out + gains[1] * 0.8 * parts["drums"]
    if values.vocals != "none":
        out = out + gains[2] * 0.9 * parts["vocals"]
    out = 0.9 * out / (np.abs(out).max() + 1e-9)
    return out.astype(np.float32)


def melody_notes(values: ConceptValues, seed: int) -> np.ndarray:
    """The MIDI melody notes :func:`render` plays for ``(values, seed)`` (for tests and docs)."""
    return _harmony(values, seed)[1]
