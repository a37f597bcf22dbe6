"""Captions, counterfactual pairs, the split and the tokenizer."""

import numpy as np
import pytest

from models.synthmusic.captions import (
    HELD_OUT,
    VOCABULARY,
    caption,
    caption_pair,
    concept_words,
    is_held_out,
    split_combinations,
    tokenize_words,
)
from models.synthmusic.music import CONCEPTS, ConceptValues, random_values


def test_captions_use_only_the_vocabulary_and_vary():
    rng = np.random.default_rng(0)
    caps = {caption(random_values(rng), rng) for _ in range(300)}
    assert len(caps) > 250
    vocab = set(VOCABULARY)
    assert all(set(tokenize_words(c)) <= vocab for c in caps)


@pytest.mark.parametrize("concept", list(CONCEPTS))
def test_caption_pair_differs_only_in_the_concept_words(concept):
    rng = np.random.default_rng(1)
    for seed in range(40):
        v = random_values(rng)
        other = [x for x in CONCEPTS[concept] if x != getattr(v, concept)][
            seed % (len(CONCEPTS[concept]) - 1)
        ]
        clean, corrupted = caption_pair(v, concept, other, seed)
        a, b = tokenize_words(clean), tokenize_words(corrupted)
        assert a != b
        i = 0
        while i < min(len(a), len(b)) and a[i] == b[i]:
            i += 1
        j = 0
        while j < min(len(a), len(b)) - i and a[-1 - j] == b[-1 - j]:
            j += 1
        diff = a[i : len(a) - j] + b[i : len(b) - j]
        assert diff and set(diff) <= concept_words(concept) | {","}, (clean, corrupted)
        assert caption_pair(v, concept, other, seed) == (clean, corrupted)


def test_caption_pair_rejects_bad_requests():
    v = ConceptValues("piano", "no", "slow", "happy", "none")
    with pytest.raises(ValueError, match="valid values"):
        caption_pair(v, "tempo", "presto", 0)
    with pytest.raises(KeyError, match="valid concepts"):
        caption_pair(v, "genre", "jazz", 0)
    with pytest.raises(ValueError, match="equals"):
        caption_pair(v, "tempo", "slow", 0)


def test_canonical_captions_name_absence_explicitly():
    rng = np.random.default_rng(2)
    v = ConceptValues("organ", "no", "fast", "sad", "none")
    for _ in range(20):
        words = tokenize_words(caption(v, rng, canonical=True))
        assert "drums" in words or "percussion" in words or "beat" in words
        assert {"vocals", "singing", "no"} & set(words)


def test_split_holds_out_combinations():
    train, test, held = (split_combinations(s) for s in ("train", "test", "held_out"))
    assert len(train) + len(held) == len(test) == 216
    assert held and not any(is_held_out(v) for v in train)
    for entry in HELD_OUT:
        assert any(all(getattr(v, c) == x for c, x in entry.items()) for v in held)
    # every single concept value still occurs in training
    for c, values in CONCEPTS.items():
        assert {getattr(v, c) for v in train} == set(values)
