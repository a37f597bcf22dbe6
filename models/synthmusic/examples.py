"""Writes example WAVs for listening: generator clips per concept and model generations.

Usage: ``python -m models.synthmusic.examples [--out docs/audio/synthmusic] [--models dit,unet]``.
Every file is 2 s, 16 kHz mono 16-bit (64 KB).
"""

import argparse
from pathlib import Path

import torch

from .music import ConceptValues, render
from .spectrogram import save_wav

BASE = ConceptValues("piano", "no", "medium", "happy", "none")

GENERATOR_EXAMPLES: dict[str, ConceptValues] = {
    **{
        f"instrument_{i}": BASE.replace("instrument", i)
        for i in ("piano", "organ", "flute", "strings", "bass", "guitar")
    },
    "drums_yes": BASE.replace("drums", "yes"),
    "tempo_slow": BASE.replace("tempo", "slow").replace("drums", "yes"),
    "tempo_fast": BASE.replace("tempo", "fast").replace("drums", "yes"),
    "mood_sad": BASE.replace("mood", "sad"),
    "vocals_female": BASE.replace("vocals", "female"),
    "vocals_male": BASE.replace("vocals", "male"),
}
"""File stem -> concepts; each differs from ``BASE`` (medium happy piano) in one concept."""

PROMPTS: dict[str, str] = {
    "sad_slow_piano_male_vocals": "a sad, slow piano piece with male vocals",
    "upbeat_organ_drums": "upbeat track featuring organ with drums",
    "happy_fast_guitar_female": "guitar, fast, happy, with drums, with female vocals",
    "melancholic_flute_no_drums": "a melancholic moderate flute song no drums with no vocals",
    "strings_slow_gloomy": "strings, slow, sad, no drums, instrumental, no vocals",
    "bass_energetic_drums": "energetic track featuring deep bass with drums, cheerful mood, sung by a man",
}
"""File stem -> caption for model generations."""

CONCEPT_PAIRS: dict[str, dict[str, str]] = {
    "mood": {
        "happy": "a happy, moderate piano piece no drums with no vocals",
        "sad": "a sad, moderate piano piece no drums with no vocals",
    },
    "tempo": {
        "slow": "organ, slow, happy, with drums, with no vocals",
        "fast": "organ, fast, happy, with drums, with no vocals",
    },
    "vocals": {
        "female": "a slow song with female vocals, happy guitar no drums",
        "male": "a slow song with male vocals, happy guitar no drums",
    },
    "drums": {
        "no": "strings, moderate, sad, no drums, with no vocals",
        "yes": "strings, moderate, sad, with drums, with no vocals",
    },
}
"""Concept -> value -> caption: captions that differ in one concept, generated with the same
seed, so the model's rendering of each concept can be heard side by side."""


def write_examples(out: str | Path, models: list[str], seed: int = 0) -> list[Path]:
    """Writes generator clips (``gen_*.wav``) and model generations (``{model}_*.wav``)."""
    out = Path(out)
    paths = [save_wav(out / f"gen_{stem}.wav", render(v, seed)) for stem, v in GENERATOR_EXAMPLES.items()]
    if models:
        from .pipeline import load_synthmusic

        for kind in models:
            pipe = load_synthmusic(kind)
            stems = list(PROMPTS)
            gens = [torch.Generator().manual_seed(seed + i) for i in range(len(stems))]
            audio = pipe([PROMPTS[s] for s in stems], generator=gens).audios
            assert audio is not None  # output_type "np" decodes audio
            paths += [save_wav(out / f"{kind}_{s}.wav", a) for s, a in zip(stems, audio)]
            for concept, captions in CONCEPT_PAIRS.items():
                gens = [torch.Generator().manual_seed(seed) for _ in captions]
                audio = pipe(list(captions.values()), generator=gens).audios
                assert audio is not None
                paths += [
                    save_wav(out / f"{kind}_pair_{concept}_{value}.wav", a)
                    for value, a in zip(captions, audio)
                ]
    return paths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="docs/audio/synthmusic")
    p.add_argument("--models", default="dit,unet", help="comma-separated; empty for generator clips only")
    a = p.parse_args()
    for path in write_examples(a.out, [m for m in a.models.split(",") if m]):
        print(path)


if __name__ == "__main__":
    main()
