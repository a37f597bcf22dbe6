"""The procedural generator: determinism and the audible effect of each concept."""

import numpy as np
import pytest

from models.synthmusic.music import (
    CONCEPTS,
    NUM_SAMPLES,
    SAMPLE_RATE,
    TEMPO_BPM,
    ConceptValues,
    all_combinations,
    beat_times,
    instrument_tone,
    render,
    render_parts,
    tonic_pitch_class,
)

BASE = ConceptValues("piano", "no", "medium", "happy", "none")


def test_render_is_deterministic_and_seed_dependent():
    a, b = render(BASE, 7), render(BASE, 7)
    assert a.dtype == np.float32 and a.shape == (NUM_SAMPLES,)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, render(BASE, 8))
    assert 0.85 < np.abs(a).max() <= 0.9 + 1e-6


def test_invalid_values_name_the_choices():
    with pytest.raises(ValueError, match="valid values"):
        ConceptValues("banjo", "no", "slow", "happy", "none")
    assert len(all_combinations()) == np.prod([len(v) for v in CONCEPTS.values()])


def _onset_rate(audio: np.ndarray) -> float:
    import librosa

    onsets = librosa.onset.onset_detect(y=audio, sr=SAMPLE_RATE, units="time")
    return len(onsets) / (NUM_SAMPLES / SAMPLE_RATE)


def test_tempo_changes_onset_rate():
    rates = {
        t: np.mean(
            [_onset_rate(render(BASE.replace("tempo", t).replace("drums", "yes"), s)) for s in range(3)]
        )
        for t in CONCEPTS["tempo"]
    }
    assert rates["slow"] < rates["medium"] < rates["fast"], rates
    assert len(beat_times("fast")) > len(beat_times("slow"))
    assert TEMPO_BPM["fast"] / TEMPO_BPM["slow"] > 2


def _pitch_class_energy(audio: np.ndarray) -> np.ndarray:
    spec = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    freqs = np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)
    keep = (freqs > 100) & (freqs < 1000)
    midi = 69 + 12 * np.log2(freqs[keep] / 440.0)
    pc = np.round(midi).astype(int) % 12
    return np.bincount(pc, weights=spec[keep] ** 2, minlength=12)


@pytest.mark.parametrize("instrument", ["piano", "organ", "strings"])
def test_mood_changes_the_third(instrument):
    for seed in range(3):
        v = BASE.replace("instrument", instrument)
        root = tonic_pitch_class(v)
        happy = _pitch_class_energy(render_parts(v, seed)["music"])
        sad = _pitch_class_energy(render_parts(v.replace("mood", "sad"), seed)["music"])
        major, minor = (root + 4) % 12, (root + 3) % 12
        assert happy[major] > 3 * happy[minor]
        assert sad[minor] > 3 * sad[major]


def test_drums_add_broadband_transients():
    def high_band(audio):
        spec = np.abs(np.fft.rfft(audio))
        freqs = np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)
        return spec[freqs > 5000].sum() / spec.sum()

    for seed in range(3):
        assert high_band(render(BASE.replace("drums", "yes"), seed)) > 2 * high_band(render(BASE, seed))
    assert not render_parts(BASE, 0)["drums"].any()


def _f0(audio: np.ndarray) -> float:
    """Median autocorrelation pitch of 64 ms windows with energy."""
    n = 1024
    f0s = []
    for i in range(0, len(audio) - n, n):
        w = audio[i : i + n]
        if np.abs(w).max() < 0.2:
            continue
        ac = np.correlate(w, w, "full")[n - 1 :] / np.arange(n, 0, -1)  # unbiased: long lags not penalized
        lo, hi = SAMPLE_RATE // 700, SAMPLE_RATE // 70
        f0s.append(SAMPLE_RATE / (lo + np.argmax(ac[lo:hi])))
    return float(np.median(f0s))


def test_vocals_sing_in_the_right_range():
    for seed in range(3):
        female = _f0(render_parts(BASE.replace("vocals", "female"), seed)["vocals"])
        male = _f0(render_parts(BASE.replace("vocals", "male"), seed)["vocals"])
        assert 270 < female < 700, female
        assert 100 < male < 260, male
    assert not render_parts(BASE, 0)["vocals"].any()


def test_instruments_have_their_envelopes():
    rng = np.random.default_rng(0)
    n = SAMPLE_RATE // 2

    def tail_ratio(inst):
        tone = instrument_tone(inst, 220.0, n, rng)
        head = np.abs(tone[400:2000]).max()
        return np.abs(tone[n - 2400 : n - 800]).max() / head

    for inst in ("piano", "guitar", "bass"):
        assert tail_ratio(inst) < 0.75, inst
    for inst in ("organ", "flute", "strings"):
        assert tail_ratio(inst) > 0.95, inst

    # Flute is nearly a pure tone; strings are rich in harmonics.
    def harmonic_richness(inst):
        spec = np.abs(np.fft.rfft(instrument_tone(inst, 220.0, n, rng)))
        freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
        return spec[freqs > 500].sum() / spec[(freqs > 150) & (freqs < 300)].sum()

    assert harmonic_richness("flute") < 0.7 < 1.5 < harmonic_richness("strings")
