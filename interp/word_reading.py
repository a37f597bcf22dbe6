"""Which word of the prompt does a head read? Attention mass per word and token-level
patching of a head's keys and values.

* :func:`attention_by_word`: the share of a head's attention (averaged over steps and
  audio positions) that lands on each word of the prompt, and on the positions that are
  no word (end of sequence, padding, duration tokens) as ``<other>``.
* :func:`word_variants` / :func:`token_patching`: patch, from the clean run into the
  corrupted run, only the context positions of one word in a head's keys and values
  (the ``key`` and ``value`` sites of its key/value head; under grouped-query attention
  the query heads of one group share them). The *concept words* are those where the
  clean and corrupted prompts differ; every other word is patched too, since a
  contextual text encoder mixes the swap into every position. ``<all>`` patches every
  position (the full key/value patch) and ``<other>`` the positions of no word.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from beartype import beartype

from interp.adapter import GenerationRequest, ModelAdapter
from interp.batching import BatchSize
from interp.context_tokens import ContextToken, normalize_word, require_word, word_labels
from interp.cost import Cost
from interp.errors import SiteError, TadaError
from interp.metrics import Metric
from interp.patch_variants import Variant
from interp.patching import SweepResult, sweep, sweep_cost
from interp.prompts import PromptPair
from interp.selection import Branch, StepsLike
from interp.sites import Site, as_site
from interp.types import Pattern

#: Label of the context positions that belong to no prompt word.
OTHER = "<other>"
#: Label of the variant patching every context position.
ALL = "<all>"


def context_of(adapter: ModelAdapter, layer: int, prompt: str, ctx: int) -> tuple[ContextToken, ...]:
    """The adapter's tokens of ``prompt`` for a cross layer, padded with ``<pad>`` up to
    ``ctx`` positions (pipelines that pad to the longest prompt of a batch)."""
    module = adapter.catalog.module("cross", layer)
    tokens = adapter.context_tokens(module, prompt)
    if len(tokens) > ctx:
        raise TadaError(
            f"{type(adapter).__name__} labels {len(tokens)} context positions of {module.path}, "
            f"but the module attends to {ctx}; the adapter's context_tokens is wrong."
        )
    return (*tokens, *(ContextToken(i, "<pad>", None) for i in range(len(tokens), ctx)))


def word_groups(tokens: Sequence[ContextToken]) -> dict[str, tuple[int, ...]]:
    """Word occurrence -> its positions, in prompt order, then ``<other>``; a word the
    prompt has twice is two groups, ``word#1`` and ``word#2`` (see
    :func:`~interp.context_tokens.word_labels`)."""
    labels = word_labels(tokens)
    groups: dict[str, list[int]] = {}
    for token in tokens:
        groups.setdefault(labels.get(token.position, OTHER), []).append(token.position)
    other = groups.pop(OTHER, [])
    return {**{w: tuple(p) for w, p in groups.items()}, **({OTHER: tuple(other)} if other else {})}


@beartype
def attention_by_word(
    pattern: Pattern, tokens: Sequence[ContextToken], row: int, head: int
) -> dict[str, float]:
    """Share of a head's attention on each word (mean over steps and audio positions).

    Args:
        pattern: ``[step, rows, head, ctx]`` from :func:`interp.attention_patterns.read_patterns`.
        tokens: The row's prompt's context tokens (:func:`context_of`).
        row: Row of the pattern.
        head: Query head.
    """
    if pattern.dim() != 4:
        raise TadaError("attention_by_word needs patterns averaged over the audio positions (average=True).")
    if not 0 <= head < pattern.shape[2]:
        raise SiteError(
            f"Head {head} out of range: the layer has {pattern.shape[2]} heads, numbered 0..{pattern.shape[2] - 1}."
        )
    mean = pattern[:, row, head].mean(dim=0)
    return {word: float(mean[list(positions)].sum()) for word, positions in word_groups(tokens).items()}


def concept_words(clean: Sequence[ContextToken], corrupted: Sequence[ContextToken]) -> tuple[str, ...]:
    """Word occurrences (as :func:`word_groups` labels them) of the clean prompt at the
    positions where the two prompts' tokens differ."""
    if len(clean) != len(corrupted):
        raise TadaError(
            f"The clean and corrupted prompts have {len(clean)} and {len(corrupted)} context "
            f"positions; token patching needs contexts of one length."
        )
    labels = word_labels(clean)
    words = [labels.get(a.position, OTHER) for a, b in zip(clean, corrupted) if a.token != b.token]
    return tuple(dict.fromkeys(words))


@dataclass(frozen=True)
class WordVariant:
    """One token-patching variant: a head, a word (or ``<all>``/``<other>``), its role."""

    variant: Variant
    head: str
    word: str
    concept: bool


def kv_sites(adapter: ModelAdapter, head: Site | str) -> tuple[Site, Site]:
    """The ``key`` and ``value`` sites a query head reads (its key/value head's)."""
    site = adapter.catalog.validate(head)
    if site.attention != "cross" or site.component != "head" or site.head is None:
        raise SiteError(
            f"Token patching takes cross-attention heads such as 'cross.2.head.1', got {site.name!r}."
        )
    module = adapter.catalog.module("cross", site.layer)
    group = module.kv_head_of(site.head)
    return Site("cross", site.layer, "key", group), Site("cross", site.layer, "value", group)


def word_variants(
    adapter: ModelAdapter,
    pair: PromptPair,
    heads: Sequence[Site | str],
    words: Sequence[str] | None = None,
) -> list[WordVariant]:
    """Variants patching each word's positions of each head's keys and values.

    Args:
        adapter: The model.
        pair: The clean and corrupted prompts.
        heads: Query heads (``cross.<layer>.head.<h>``).
        words: Words of the clean prompt to patch (default every word, then ``<other>``);
            ``<all>`` is always added.

    Raises:
        TadaError: For a word not in the clean prompt (naming the words that are).
    """
    out: list[WordVariant] = []
    for head in heads:
        site = as_site(head)
        key, value = kv_sites(adapter, site)
        clean = context_of(adapter, site.layer, pair.clean, _context_length(adapter, site.layer, pair))
        corrupted = context_of(adapter, site.layer, pair.corrupted, len(clean))
        swapped = concept_words(clean, corrupted)
        groups = word_groups(clean)
        if words is not None:
            chosen = {normalize_word(w): require_word(clean, w, pair.clean) for w in words}
        else:
            chosen = groups
        chosen = {**chosen, ALL: tuple(range(len(clean)))}
        for word, positions in chosen.items():
            label = f"{site.name}:{word}"
            out.append(
                WordVariant(
                    Variant.of([key, value], label, tokens=positions), site.name, word, word in swapped
                )
            )
    return out


def _context_length(adapter: ModelAdapter, layer: int, pair: PromptPair) -> int:
    """Positions of the context: the longer tokenization of the two prompts."""
    module = adapter.catalog.module("cross", layer)
    return max(len(adapter.context_tokens(module, p)) for p in (pair.clean, pair.corrupted))


@beartype
def token_patching(
    adapter: ModelAdapter,
    base: GenerationRequest,
    pair: PromptPair,
    seeds: Sequence[int],
    heads: Sequence[Site | str],
    metric: Metric,
    *,
    words: Sequence[str] | None = None,
    steps: StepsLike = None,
    branch: Branch | str = Branch.COND,
    batch_size: BatchSize = "auto",
    progress: bool = True,
) -> tuple[SweepResult, list[WordVariant]]:
    """Denoising patching of each word's key/value positions of each head, for one pair.

    Returns:
        The sweep (one row per seed and variant; variant labels ``<head>:<word>``) and
        the variants with their head, word and role.
    """
    variants = word_variants(adapter, pair, heads, words)
    result = sweep(
        adapter,
        base,
        [pair],
        seeds,
        [v.variant for v in variants],
        metric,
        steps=steps,
        branch=branch,
        batch_size=batch_size,
        progress=progress,
    )
    return result, variants


def summarize_roles(rows: Sequence[dict]) -> dict[str, dict[str, float]]:
    """Per head: mean normalized effect of its concept words, of its other words (the
    strongest other word of each pair, and all of them), of ``<other>`` and ``<all>``.

    Args:
        rows: Dicts with ``head``, ``pair``, ``word``, ``role`` (``concept``, ``word``,
            ``other``, ``all``) and ``effect``.
    """
    out: dict[str, dict[str, float]] = {}
    for head in dict.fromkeys(r["head"] for r in rows):
        mine = [r for r in rows if r["head"] == head]

        def mean(values: list[float]) -> float:
            return float(torch.tensor(values).mean()) if values else float("nan")

        pairs = sorted({r["pair"] for r in mine})
        strongest = [
            max((r["effect"] for r in mine if r["pair"] == p and r["role"] == "word"), default=float("nan"))
            for p in pairs
        ]
        out[head] = {
            "concept": mean([r["effect"] for r in mine if r["role"] == "concept"]),
            "strongest_other_word": mean([v for v in strongest if v == v]),
            "other_words": mean([r["effect"] for r in mine if r["role"] == "word"]),
            "no_word": mean([r["effect"] for r in mine if r["role"] == "other"]),
            "all": mean([r["effect"] for r in mine if r["role"] == "all"]),
        }
    return out


def token_patching_cost(
    adapter: ModelAdapter,
    base: GenerationRequest,
    pair: PromptPair,
    n_seeds: int,
    heads: Sequence[Site | str],
    metric: Metric,
    *,
    words: Sequence[str] | None = None,
    steps: StepsLike = None,
    batch_size: BatchSize = "auto",
) -> Cost:
    """What :func:`token_patching` runs for one pair: its sweep over the same
    :func:`word_variants`, counted by :func:`~interp.patching.sweep_cost` (``adapter``
    may be a structure-only build that tokenizes)."""
    n_variants = len(word_variants(adapter, pair, heads, words))
    return sweep_cost(adapter, base, 1, n_seeds, n_variants, metric, steps=steps, batch_size=batch_size)
