"""Prompt sets of a spec: inline lists, CSV / JSONL / text files, or templates x word lists
(read and filled by :mod:`interp.prompts`).

Every form resolves to a list of :class:`Prompt` (text, optional concept, extra string
fields such as a corrupted twin for patching). Files are resolved relative to the spec
file's directory, passed as ``context={"base_dir": ...}`` at validation.
"""

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from interp.errors import TadaError
from interp.experiments.fields import StrictModel
from interp.prompts import read_records, word_combinations

#: Most prompts one prompt set may expand to (a template multiplies its word lists).
MAX_PROMPTS = 100_000
#: Largest prompt file read.
MAX_FILE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Prompt:
    """One resolved prompt.

    Attributes:
        text: The text given to the model.
        concept: The concept it expresses (``None`` if not labelled).
        fields: Any other named strings (e.g. ``corrupted`` for a patching pair).
    """

    text: str
    concept: str | None = None
    fields: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"text": self.text, "concept": self.concept, "fields": dict(self.fields)}


class PromptItem(StrictModel):
    """One inline prompt written as a mapping."""

    prompt: str = Field(description="The prompt text.")
    concept: str | None = Field(default=None, description="Concept label of this prompt.")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Extra named strings, e.g. {corrupted: 'a sad trumpet song'}.",
    )


def _entry_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "text"
    if isinstance(value, (dict, PromptItem)):
        return "item"
    return None


#: One inline prompt: a string, or a mapping ``{prompt, concept, fields}``.
PromptEntry = Annotated[
    Annotated[str, Tag("text")] | Annotated[PromptItem, Tag("item")],
    Discriminator(
        _entry_kind,
        custom_error_type="prompt_entry",
        custom_error_message="a prompt must be a string or a mapping {prompt, concept, fields}",
    ),
]


class InlinePrompts(StrictModel):
    """Prompts written in the spec: ``{inline: [...], concept: ...}``."""

    inline: list[PromptEntry] = Field(
        min_length=1,
        max_length=MAX_PROMPTS,
        description="Prompt strings, or mappings {prompt, concept, fields}.",
    )
    concept: str | None = Field(
        default=None, description="Concept label for items that do not give their own."
    )

    def resolve(self, base_dir: Path) -> list[Prompt]:
        """The prompts, in order."""
        out = []
        for item in self.inline:
            if isinstance(item, str):
                out.append(Prompt(item, self.concept))
            else:
                out.append(Prompt(item.prompt, item.concept or self.concept, dict(item.fields)))
        return out


class FilePrompts(StrictModel):
    """Prompts read from a file: CSV (header row), JSONL (one object a line) or text."""

    file: str = Field(description="Path of a .csv, .jsonl or .txt file, relative to the spec file.")
    column: str = Field(default="prompt", description="Column / key holding the prompt text.")
    concept_column: str = Field(
        default="concept", description="Column / key holding the concept label, if present."
    )
    concept: str | None = Field(default=None, description="Concept label for rows that have none.")
    limit: int | None = Field(default=None, ge=1, strict=True, description="Use only the first N rows.")

    @field_validator("file")
    @classmethod
    def _exists(cls, value: str, info: Any) -> str:  # info: pydantic ValidationInfo
        path = _path(value, info.context)
        if not path.is_file():
            raise ValueError(
                f"prompt file {str(path)!r} does not exist (paths are relative to the spec file's directory)"
            )
        if path.suffix.lower() not in (".csv", ".jsonl", ".txt"):
            raise ValueError(f"prompt file {path.name!r} has an unsupported suffix; use .csv, .jsonl or .txt")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(
                f"prompt file {path.name!r} is larger than {MAX_FILE_BYTES // 2**20} MB; split it"
            )
        return value

    def resolve(self, base_dir: Path) -> list[Prompt]:
        """Read the file. Raises :class:`TadaError` naming the file and row on bad rows."""
        path = _path(self.file, {"base_dir": base_dir})
        rows = read_records(path, self.column)
        out = []
        for number, row in enumerate(rows, start=1):
            if number > MAX_PROMPTS and self.limit is None:
                raise TadaError(
                    f"Prompt file {path.name} holds more than {MAX_PROMPTS} prompts; set "
                    f"'limit:' to use only the first rows, or split the file."
                )
            text = row.get(self.column)
            if not isinstance(text, str) or not text.strip():
                raise TadaError(
                    f"Row {number} of {path.name} has no {self.column!r} value; columns "
                    f"found: {sorted(row)}. Set 'column:' to the column holding prompts."
                )
            concept = row.get(self.concept_column) or self.concept
            extra = {
                k: str(v)
                for k, v in row.items()
                if k not in (self.column, self.concept_column) and v is not None
            }
            out.append(Prompt(text.strip(), None if concept is None else str(concept), extra))
            if self.limit is not None and len(out) >= self.limit:
                break
        if not out:
            raise TadaError(f"Prompt file {path.name} holds no prompts.")
        return out


class TemplatePrompts(StrictModel):
    """Every combination of word lists filled into a template."""

    template: str = Field(description="Text with {placeholders}, e.g. 'a {mood} {instrument} song'.")
    words: dict[str, list[str]] = Field(
        description="One word list per placeholder; prompts are their product, in order."
    )
    concept: str | None = Field(
        default=None, description="Concept label, may use placeholders, e.g. '{instrument}'."
    )

    @model_validator(mode="after")
    def _placeholders_match(self) -> "TemplatePrompts":
        used = _placeholders(self.template)
        given = set(self.words)
        if used != given:
            raise ValueError(
                f"template placeholders {sorted(used)} and word lists {sorted(given)} differ; "
                f"give exactly one word list per placeholder"
            )
        empty = [k for k, v in self.words.items() if not v]
        if empty:
            raise ValueError(f"word list(s) {empty} are empty")
        count = 1
        for values in self.words.values():
            count *= len(values)
            if count > MAX_PROMPTS:
                sizes = {k: len(v) for k, v in self.words.items()}
                raise ValueError(
                    f"the word lists {sizes} multiply to more than {MAX_PROMPTS} prompts; "
                    f"shorten them or split the set"
                )
        if self.concept is not None and not _placeholders(self.concept) <= given:
            raise ValueError(f"concept {self.concept!r} uses placeholders not in words {sorted(given)}")
        return self

    def resolve(self, base_dir: Path) -> list[Prompt]:
        """The filled templates, in product order of the word lists."""
        out = []
        for values in word_combinations(self.words):
            concept = None if self.concept is None else self.concept.format(**values)
            out.append(Prompt(self.template.format(**values), concept, values))
        return out


def _prompt_set_kind(value: Any) -> str | None:
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        for key in ("inline", "file", "template"):
            if key in value:
                return key
        return None
    for cls, tag in ((InlinePrompts, "inline"), (FilePrompts, "file"), (TemplatePrompts, "template")):
        if isinstance(value, cls):
            return tag
    return None


#: A prompt set: a plain list, ``{inline: ...}``, ``{file: ...}`` or ``{template: ...}``.
PromptSet = Annotated[
    Annotated[list[PromptEntry], Field(min_length=1, max_length=MAX_PROMPTS), Tag("list")]
    | Annotated[InlinePrompts, Tag("inline")]
    | Annotated[FilePrompts, Tag("file")]
    | Annotated[TemplatePrompts, Tag("template")],
    Discriminator(
        _prompt_set_kind,
        custom_error_type="prompt_set",
        custom_error_message=(
            "a prompt set must be a list of prompts or a mapping with one of the keys "
            "'inline', 'file' or 'template'"
        ),
    ),
]

PROMPT_SET_TAGS = ("list", "inline", "file", "template", "text", "item")


def resolve_prompt_set(value: Any, base_dir: Path) -> list[Prompt]:
    """Resolve any validated prompt-set value to prompts."""
    if isinstance(value, list):
        value = InlinePrompts(inline=value)
    return value.resolve(base_dir)


def _path(value: str, context: dict[str, Any] | None) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute():
        base = Path((context or {}).get("base_dir") or ".")
        path = base / path
    return path


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
