"""Prompts: the one place that reads prompt files and fills templates, and the
counterfactual pairs built from them.

Files are CSV (a header row), JSONL (one object a line) or text (one prompt a line):
:func:`read_records`. Templates are filled with every combination of word lists:
:func:`word_combinations`. Pairs, (clean, corrupted) prompts that differ in one concept,
come from CSV / JSONL files (columns ``clean, corrupted, concept`` and optionally
``clean_value, corrupted_value``: :func:`load_pairs`) or from templates x concept words
(:func:`template_pairs`). The 21 concepts of the TADA paper ship ready:
:func:`tada_pairs`, from the one concept vocabulary (``data/concepts.yaml``,
:func:`concept_vocabulary`) that also holds the steering concepts' phrases
(:mod:`interp.steering.concepts`). The prompt sets of experiment specs
(:mod:`interp.experiments.prompt_specs`) are read with the same functions.
"""

import csv
import io
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

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
        return PromptPair(self.corrupted, self.clean, self.concept, self.corrupted_value, self.clean_value)


def read_records(path: Path, text_column: str = "prompt") -> list[dict[str, Any]]:
    """The records of a ``.csv``, ``.jsonl`` / ``.ndjson`` or ``.txt`` file.

    Args:
        path: The file (its suffix picks the format, case-insensitively).
        text_column: Key under which a text file's lines are returned.

    Raises:
        PromptError: For another suffix, a line that is not a JSON object, or text that
            is not UTF-8, naming the file and the line.
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson", ".txt"):
        raise PromptError(f"Cannot read prompts from {path.name!r}: use a .csv, .jsonl or .txt file.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise PromptError(f"{path.name} is not UTF-8 text (byte {error.start}).") from None
    if suffix == ".txt":
        return [{text_column: line.strip()} for line in text.splitlines() if line.strip()]
    if suffix == ".csv":
        return list(csv.DictReader(io.StringIO(text, newline="")))
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise PromptError(f"Line {number} of {path.name} is not valid JSON: {error.msg}.") from None
        if not isinstance(record, dict):
            raise PromptError(f"Line {number} of {path.name} must be a JSON object, got {record!r}.")
        records.append(record)
    return records


def word_combinations(words: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """Every combination of the word lists, in product order of their keys."""
    keys = list(words)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*words.values())]


def load_pairs(path: str | Path) -> list[PromptPair]:
    """Read pairs from a ``.csv`` or ``.jsonl`` file."""
    path = Path(path)
    if not path.is_file():
        raise PromptError(f"Prompt file {str(path)!r} does not exist.")
    if path.suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
        raise PromptError(
            f"Cannot read prompt pairs from {path.name!r}: use a .csv or .jsonl file with "
            f"columns clean, corrupted, concept."
        )
    records = read_records(path)
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
        for slots in word_combinations({k: fill[k] for k in keys}):
            try:
                clean = template.format(concept=clean_word, **slots)
                corrupted = template.format(concept=corrupted_word, **slots)
            except KeyError as missing:
                raise PromptError(
                    f"Template {template!r} uses slot {missing} but only {['concept', *keys]} are filled."
                ) from None
            pairs.append(PromptPair(clean, corrupted, concept, clean_word, corrupted_word))
    return pairs[:limit] if limit is not None else pairs


@lru_cache(maxsize=1)
def concept_vocabulary() -> dict[str, Any]:
    """The shipped concept vocabulary (``data/concepts.yaml``), read once; do not modify it.

    Every concept once: its ``group``; for the paper's 21 patching concepts its ``swap``
    and ``phrase``; for the steering concepts a ``steering`` entry (scorer value, template
    form, aligned positive / negative phrases). ``patching`` and ``steering`` hold each
    use's templates and styles.
    """
    return yaml.safe_load((Path(__file__).parent / "data" / "concepts.yaml").read_text())


def tada_concepts() -> dict:
    """The TADA patching table: the 21 concepts with a swap (group, swap, phrase), templates, styles."""
    vocabulary = concept_vocabulary()
    return {
        "concepts": {
            name: {key: entry[key] for key in ("group", "swap", "phrase")}
            for name, entry in vocabulary["concepts"].items()
            if "swap" in entry
        },
        "templates": list(vocabulary["patching"]["templates"]),
        "styles": list(vocabulary["patching"]["styles"]),
    }


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
        made = template_pairs(table["templates"], name, clean, corrupted, {"style": table["styles"]})
        # interleave templates so a small per_concept still varies the wording
        n_styles = len(table["styles"])
        order = sorted(range(len(made)), key=lambda i: (i % n_styles, i))
        for pair in [made[i] for i in order][:per_concept]:
            pairs.append(PromptPair(pair.clean, pair.corrupted, name, name, entry["swap"]))
    return pairs
