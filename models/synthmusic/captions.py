"""Captions for SynthMusic clips, counterfactual caption pairs, and the train/test split.

A caption is a template filled with one phrase per concept. Phrases come in aligned
*slots*: slot ``k`` of a concept gives a phrase for every value (``"with drums"`` /
``"no drums"``), so swapping a concept's value while keeping the template and the slots
changes only that concept's words (:func:`caption_pair`).

Two template families:

* style templates, like music captions ("a sad, slow piano piece with male vocals",
  "upbeat track featuring organ and drums"), which may leave absence implicit (no drums
  or no vocals are sometimes not mentioned);
* canonical templates that name every concept explicitly ("... with drums" / "... no drums",
  "with female vocals" / "instrumental, no vocals").

Held-out combinations (:data:`HELD_OUT`) never occur in the train split; the test split
draws from all 216 combinations.
"""

import re

import numpy as np

from .music import CONCEPTS, ConceptValues, all_combinations

# concept -> list of slots; each slot maps every value to a phrase.
PHRASES: dict[str, list[dict[str, str]]] = {
    "instrument": [
        {
            "piano": "piano",
            "organ": "organ",
            "flute": "flute",
            "strings": "strings",
            "bass": "bass",
            "guitar": "guitar",
        },
        {
            "piano": "grand piano",
            "organ": "electric organ",
            "flute": "wooden flute",
            "strings": "string section",
            "bass": "deep bass",
            "guitar": "acoustic guitar",
        },
        {
            "piano": "piano keys",
            "organ": "church organ",
            "flute": "soft flute",
            "strings": "violin ensemble",
            "bass": "bass line",
            "guitar": "plucked guitar",
        },
    ],
    "tempo": [
        {"slow": "slow", "medium": "moderate", "fast": "fast"},
        {"slow": "relaxed", "medium": "steady", "fast": "upbeat"},
        {"slow": "downtempo", "medium": "midtempo", "fast": "energetic"},
    ],
    "mood": [
        {"happy": "happy", "sad": "sad"},
        {"happy": "cheerful", "sad": "melancholic"},
        {"happy": "joyful", "sad": "gloomy"},
        {"happy": "bright", "sad": "somber"},
    ],
    "drums": [
        {"yes": "with drums", "no": "no drums"},
        {"yes": "with percussion", "no": "without percussion"},
        {"yes": "with a drum beat", "no": "without a drum beat"},
    ],
    "vocals": [
        {"female": "with female vocals", "male": "with male vocals", "none": "with no vocals"},
        {"female": "with a female singer", "male": "with a male singer", "none": "instrumental, no vocals"},
        {"female": "sung by a woman", "male": "sung by a man", "none": "without any singing"},
    ],
}
"""Concept -> aligned phrase slots (slot index -> value -> phrase)."""

STYLE_TEMPLATES: tuple[str, ...] = (
    "a {mood}, {tempo} {instrument} piece {drums} {vocals}",
    "{tempo} track featuring {instrument} {drums}, {mood} mood, {vocals}",
    "{mood} {instrument} music, {tempo} tempo, {vocals}, {drums}",
    "{instrument} melody, {mood} and {tempo}, {drums} {vocals}",
    "a {tempo} song {vocals}, {mood} {instrument} {drums}",
)
"""Music-caption style templates (absence may be omitted, see :func:`caption`)."""

CANONICAL_TEMPLATES: tuple[str, ...] = (
    "{instrument}, {tempo}, {mood}, {drums}, {vocals}",
    "a {mood} {tempo} {instrument} song {drums} {vocals}",
)
"""Templates that always name every concept explicitly."""

TEMPLATES: tuple[str, ...] = STYLE_TEMPLATES + CANONICAL_TEMPLATES

HELD_OUT: tuple[dict[str, str], ...] = (
    {"instrument": "organ", "vocals": "female"},
    {"instrument": "guitar", "mood": "sad"},
    {"tempo": "fast", "drums": "no", "vocals": "male"},
    {"instrument": "flute", "tempo": "slow"},
)
"""Partial combinations absent from the train split (a combination is held out when it
matches any entry on all of that entry's concepts)."""

PAD, UNK, EOS = "<pad>", "<unk>", "</s>"
"""Special tokens (ids 0, 1, 2)."""

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def tokenize_words(text: str) -> list[str]:
    """Lower-cases and splits into words and punctuation marks (the tokenizer's rule)."""
    return _TOKEN_RE.findall(text.lower())


def is_held_out(values: ConceptValues) -> bool:
    """True when ``values`` matches an entry of :data:`HELD_OUT`."""
    d = values.as_dict()
    return any(all(d[c] == v for c, v in entry.items()) for entry in HELD_OUT)


def split_combinations(split: str) -> list[ConceptValues]:
    """Concept combinations of a split.

    Args:
        split: ``"train"`` (held-out combinations removed), ``"test"`` (all combinations) or
            ``"held_out"`` (only the held-out ones).
    """
    combos = all_combinations()
    if split == "train":
        return [c for c in combos if not is_held_out(c)]
    if split == "test":
        return combos
    if split == "held_out":
        return [c for c in combos if is_held_out(c)]
    raise ValueError(f"unknown split {split!r}; valid splits: ['train', 'test', 'held_out']")


def _fill(template: str, values: ConceptValues, slots: dict[str, int], omit: set[str]) -> str:
    phrases = {}
    for concept, value in values.as_dict().items():
        phrases[concept] = "" if concept in omit else PHRASES[concept][slots[concept]][value]
    text = template.format(**phrases)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"(\s*,)+", ",", text)  # collapse separators left by omitted phrases
    text = re.sub(r"\s+,", ",", text).strip(" ,")
    return text


def caption(values: ConceptValues, rng: np.random.Generator, canonical: bool | None = None) -> str:
    """A random caption for ``values``.

    Args:
        values: The clip's concepts.
        rng: Source of the template, slot and omission choices.
        canonical: Force a canonical (True) or style (False) template; None picks canonical
            with probability 0.4.

    Returns:
        The caption; style templates omit "no drums" / "no vocals" half of the time.
    """
    if canonical is None:
        canonical = bool(rng.random() < 0.4)
    pool = CANONICAL_TEMPLATES if canonical else STYLE_TEMPLATES
    template = pool[int(rng.integers(len(pool)))]
    slots = {c: int(rng.integers(len(PHRASES[c]))) for c in CONCEPTS}
    omit: set[str] = set()
    if not canonical:
        if values.drums == "no" and rng.random() < 0.5:
            omit.add("drums")
        if values.vocals == "none" and rng.random() < 0.5:
            omit.add("vocals")
    return _fill(template, values, slots, omit)


def caption_pair(values: ConceptValues, concept: str, other_value: str, seed: int) -> tuple[str, str]:
    """A (clean, corrupted) caption pair differing only in one concept's words.

    Both captions use the same template and the same phrase slot for every concept, and
    name every concept explicitly, so only the phrase of ``concept`` differs.

    Args:
        values: Concepts of the clean caption.
        concept: The concept to swap.
        other_value: Its value in the corrupted caption (must differ from the clean one).
        seed: Chooses the template and slots.

    Returns:
        ``(clean, corrupted)`` captions.
    """
    if concept not in CONCEPTS:
        raise KeyError(f"unknown concept {concept!r}; valid concepts: {list(CONCEPTS)}")
    if other_value not in CONCEPTS[concept]:
        raise ValueError(
            f"invalid value {other_value!r} for concept {concept!r}; valid values: {list(CONCEPTS[concept])}"
        )
    if getattr(values, concept) == other_value:
        raise ValueError(f"other_value {other_value!r} equals the clean value of {concept!r}")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 7])
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    slots = {c: int(rng.integers(len(PHRASES[c]))) for c in CONCEPTS}
    clean = _fill(template, values, slots, set())
    corrupted = _fill(template, values.replace(concept, other_value), slots, set())
    return clean, corrupted


def concept_words(concept: str) -> set[str]:
    """Every word that appears in some phrase of ``concept``."""
    return {w for slot in PHRASES[concept] for p in slot.values() for w in tokenize_words(p)}


def vocabulary() -> tuple[str, ...]:
    """The full caption vocabulary: special tokens, then every word, sorted (deterministic)."""
    words: set[str] = set()
    for slots in PHRASES.values():
        for slot in slots:
            for phrase in slot.values():
                words.update(tokenize_words(phrase))
    for template in TEMPLATES:
        words.update(tokenize_words(re.sub(r"\{\w+\}", " ", template)))
    return (PAD, UNK, EOS) + tuple(sorted(words))


VOCABULARY: tuple[str, ...] = vocabulary()
"""Special tokens plus every caption word (index = token id)."""
