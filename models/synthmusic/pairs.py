"""Counterfactual SynthMusic caption pairs for localization (pair source ``synthmusic``).

Each pair swaps one concept's words in an otherwise identical caption (same template,
same phrasing of every other concept), drawn from the test split (held-out combinations
included). The concept of a pair is the concept name (``mood``); its values are the
clean and corrupted values (``sad`` -> ``happy``), which the concept scorer reads.
"""

from collections.abc import Sequence

import numpy as np

from interp.errors import TadaError
from interp.prompts import PromptPair
from models.synthmusic.captions import caption_pair, split_combinations
from models.synthmusic.music import CONCEPTS


def synthmusic_pairs(concepts: Sequence[str] | None, per_concept: int, seed: int) -> list[PromptPair]:
    """``per_concept`` pairs for each concept, deterministic by ``seed``."""
    chosen = list(concepts) if concepts else list(CONCEPTS)
    unknown = [c for c in chosen if c not in CONCEPTS]
    if unknown:
        raise TadaError(f"Unknown SynthMusic concept(s) {unknown}; valid: {list(CONCEPTS)}.")
    combos = split_combinations("test")
    pairs = []
    for index, concept in enumerate(chosen):
        rng = np.random.default_rng([seed, index, 11])
        for _ in range(per_concept):
            values = combos[int(rng.integers(len(combos)))]
            clean_value = getattr(values, concept)
            others = [v for v in CONCEPTS[concept] if v != clean_value]
            other = others[int(rng.integers(len(others)))]
            clean, corrupted = caption_pair(values, concept, other, seed=int(rng.integers(2**31)))
            pairs.append(PromptPair(clean, corrupted, concept, clean_value, other))
    return pairs
