"""Contrastive prompt sets for steering: the nine shipped concepts and their 50 pairs.

The pairs are generated from the ``steering`` entries of the concept vocabulary
(``interp/data/concepts.yaml``, :func:`interp.prompts.concept_vocabulary`): one template
filled with a positive phrase and with the aligned negative phrase, so the two prompts
differ only in the concept's words. Each concept also names the value a
:class:`~interp.metrics.ConceptScorer` should score (``scorer.concept`` / ``target``).

Example:
    >>> concept = steering_concept("happy")
    >>> concept.pairs[0].clean, concept.pairs[0].corrupted
    ('a calm happy song', 'a calm sad song')
"""

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from interp.errors import TadaError, did_you_mean
from interp.prompts import PromptPair, concept_vocabulary


@dataclass(frozen=True)
class SteeringConcept:
    """A concept to steer, with its contrastive prompt pairs.

    Attributes:
        name: Concept name, e.g. ``'happy'``.
        scorer_concept: Concept a scorer knows, e.g. ``'mood'``.
        target: Scorer value the positive prompts stand for, e.g. ``'happy'``.
        opposite: Scorer value of the negative prompts (``None``: the concept is absent).
        pairs: ``PromptPair(clean=positive, corrupted=negative, ...)`` per pair.
    """

    name: str
    scorer_concept: str
    target: str
    opposite: str | None
    pairs: tuple[PromptPair, ...]

    @property
    def positive(self) -> tuple[str, ...]:
        """The positive prompts (the concept present)."""
        return tuple(p.clean for p in self.pairs)

    @property
    def negative(self) -> tuple[str, ...]:
        """The negative prompts (the opposite value, or the concept absent)."""
        return tuple(p.corrupted for p in self.pairs)


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    """The vocabulary's steering settings, with ``concepts``: name -> its steering entry."""
    vocabulary = concept_vocabulary()
    steered = {
        name: entry["steering"] for name, entry in vocabulary["concepts"].items() if "steering" in entry
    }
    return {**vocabulary["steering"], "concepts": steered}


def steering_concept_names() -> list[str]:
    """Names of the shipped steering concepts, in vocabulary order."""
    return list(_table()["concepts"])


def _clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+,", ",", text)
    text = re.sub(r",\s*,", ",", text)
    return text.strip(" ,")


def steering_concept(name: str, n_pairs: int | None = None) -> SteeringConcept:
    """One shipped concept with ``n_pairs`` contrastive pairs (default: all 50).

    Pair ``i`` uses template ``i mod 10``, a style that varies with ``i`` so every
    (template, style) combination appears once, and phrase ``i mod len(phrases)``.

    Raises:
        TadaError: For an unknown concept or more pairs than the templates provide.
    """
    table = _table()
    concepts = table["concepts"]
    if name not in concepts:
        raise TadaError(
            f"Unknown steering concept {name!r}.{did_you_mean(name, list(concepts))} "
            f"Valid concepts: {list(concepts)}."
        )
    entry = concepts[name]
    templates = table["templates"][entry["form"]]
    styles = table["styles"]
    available = len(templates) * len(styles)
    count = table["pairs_per_concept"] if n_pairs is None else n_pairs
    if not 1 <= count <= available:
        raise TadaError(
            f"Concept {name!r} has {available} distinct pairs ({len(templates)} templates x "
            f"{len(styles)} styles); asked for {count}. Choose 1..{available}."
        )
    positive, negative = entry["positive"], entry["negative"]
    if len(positive) != len(negative):
        raise TadaError(f"Concept {name!r}: positive and negative phrase lists differ in length.")
    scorer = entry["scorer"]
    pairs = []
    for i in range(count):
        template = templates[i % len(templates)]
        style = styles[(i // len(templates) + i) % len(styles)]
        phrase = i % len(positive)
        clean = _clean(template.format(style=style, concept=positive[phrase]))
        corrupted = _clean(template.format(style=style, concept=negative[phrase]))
        pairs.append(PromptPair(clean, corrupted, name, str(scorer["target"]), scorer["opposite"]))
    return SteeringConcept(
        name=name,
        scorer_concept=scorer["concept"],
        target=str(scorer["target"]),
        opposite=None if scorer["opposite"] is None else str(scorer["opposite"]),
        pairs=tuple(pairs),
    )
