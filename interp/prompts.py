"""Counterfactual prompt pairs: (clean, corrupted) prompts that differ in one concept.

Pairs come inline, from CSV / JSONL files (columns ``clean, corrupted, concept`` and
optionally ``clean_value, corrupted_value``), or from templates x concept words. The 21
concepts of the TADA paper ship ready: :func:`tada_pairs`.
"""

import csv
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from interp.errors import TadaError


class PromptError(TadaError, ValueError):
    """A prompt set cannot be read or built."""


@dataclass(frozen=True)
class PromptPair:
    """Two prompts that differ only in one concept.

    Attributes:
        clean: Prompt with the concept (e.g. ``'a calm track featuring violin'``).
        corrupted: The same prompt with the concept swapped (``'... trumpet'``).
        concept: Name of the concept the pair probes (e.g. ``'violin'`` or ``'mood'``).
        clean_value: Value of the concept in the clean prompt (for scorers).
        corrupted_value: Value in the corrupted prompt.
    """

    clean: str
    corrupted: str
    concept: str
    clean_value: str | None = None
    corrupted_value: str | None = None

    def __post_init__(self) -> None:
        if not self.clean.strip() or not self.corrupted.strip():
            raise PromptError(f"Prompt pair for {self.concept!r} has an empty prompt.")

    def reversed(self) -> "PromptPair":
        """The pair with clean and corrupted exchanged."""
        return PromptPair(
            self.corrupted, self.clean, self.concept, self.corrupted_value, self.clean_value
        )


def load_pairs(path: str | Path) -> list[PromptPair]:
    """Read pairs from a ``.csv`` or ``.jsonl`` file."""
    path = Path(path)
    if not path.is_file():
        raise PromptError(f"Prompt file {str(path)!r} does not exist.")
    if path.suffix == ".csv":
        with path.open(newline="") as handle:
            records = list(csv.DictReader(handle))
    elif path.suffix in (".jsonl", ".ndjson"):
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:
        raise PromptError(
            f"Cannot read prompt pairs from {path.name!r}: use a .csv or .jsonl file with "
            f"columns clean, corrupted, concept."
        )
    pairs = []
    for number, record in enumerate(records, start=1):
        missing = {"clean", "corrupted", "concept"} - set(record)
        if missing:
            raise PromptError(
                f"{path.name} record {number} lacks column(s) {sorted(missing)}; each record "
                f"needs clean, corrupted, concept (optional: clean_value, corrupted_value)."
            )
        pairs.append(
            PromptPair(
                record["clean"],
                record["corrupted"],
                record["concept"],
                record.get("clean_value") or None,
                record.get("corrupted_value") or None,
            )
        )
    return pairs


def template_pairs(
    templates: list[str],
    concept: str,
    clean_word: str,
    corrupted_word: str,
    fill: dict[str, list[str]] | None = None,
    limit: int | None = None,
) -> list[PromptPair]:
    """Pairs from templates with a ``{concept}`` slot and optional other slots.

    Every combination of the ``fill`` values is used, in a fixed order, up to ``limit``.
    """
    fill = fill or {}
    keys = sorted(fill)
    pairs = []
    for template in templates:
        if "{concept}" not in template:
            raise PromptError(f"Template {template!r} has no {{concept}} slot.")
        for values in itertools.product(*(fill[k] for k in keys)):
            slots = dict(zip(keys, values))
            try:
                clean = template.format(concept=clean_word, **slots)
                corrupted = template.format(concept=corrupted_word, **slots)
            except KeyError as missing:
                raise PromptError(
                    f"Template {template!r} uses slot {missing} but only {['concept', *keys]} "
                    f"are filled."
                ) from None
            pairs.append(PromptPair(clean, corrupted, concept, clean_word, corrupted_word))
    return pairs[:limit] if limit is not None else pairs


def tada_concepts() -> dict:
    """The shipped TADA concept table (concepts, swaps, templates, styles)."""
    return yaml.safe_load((Path(__file__).parent / "data" / "tada_concepts.yaml").read_text())


def tada_pairs(concepts: list[str] | None = None, per_concept: int = 16) -> list[PromptPair]:
    """Ready counterfactual pairs for the paper's 21 concepts.

    Args:
        concepts: Subset of concept names (default: all 21).
        per_concept: Pairs per concept (templates x styles, in a fixed order).
    """
    table = tada_concepts()
    known = table["concepts"]
    chosen = concepts or list(known)
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise PromptError(f"Unknown TADA concept(s) {unknown}; valid: {list(known)}.")
    pairs = []
    for name in chosen:
        entry = known[name]
        clean = entry["phrase"].format(w=name)
        corrupted = entry["phrase"].format(w=entry["swap"])
        made = template_pairs(
            table["templates"], name, clean, corrupted, {"style": table["styles"]}
        )
        # interleave templates so a small per_concept still varies the wording
        n_styles = len(table["styles"])
        order = sorted(range(len(made)), key=lambda i: (i % n_styles, i))
        for pair in [made[i] for i in order][:per_concept]:
            pairs.append(PromptPair(pair.clean, pair.corrupted, name, name, entry["swap"]))
    return pairs
