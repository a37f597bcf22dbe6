"""The context positions of a cross-attention module, mapped back to the prompt's words.

A cross-attention module attends over a context ``[batch, ctx, d_ctx]``: the text
encoder's tokens (padded), sometimes followed or preceded by other tokens (Stable Audio's
two duration tokens, ACE-Step's lyrics). The adapter labels each position with a
:class:`ContextToken` (:meth:`interp.adapter.ModelAdapter.context_tokens`): the
tokenizer's piece and the prompt word it belongs to, or ``None`` for padding and special
tokens. Words are whitespace-separated, compared without case or surrounding
punctuation.

>>> tokens = (ContextToken(0, "a", "a"), ContextToken(1, "fast", "fast"), ContextToken(2, "</s>", None))
>>> word_positions(tokens, "Fast,")
(1,)
>>> prompt_words("a fast, loud song")
('a', 'fast', 'loud', 'song')
>>> word_labels([ContextToken(0, "with", "with", 0), ContextToken(1, "a", "a", 1), ContextToken(2, "with", "with", 2)])
{0: 'with#1', 1: 'a', 2: 'with#2'}
"""

import string
from collections.abc import Sequence
from dataclasses import dataclass

from interp.errors import TadaError


@dataclass(frozen=True)
class ContextToken:
    """One position of a cross-attention module's context.

    Attributes:
        position: Index along the ``ctx`` axis.
        token: The tokenizer's piece (``'▁fast'``, ``'Ġfast'``), or a label such as
            ``'<pad>'`` or ``'<seconds_start>'`` for positions that are not text.
        word: The prompt word (normalized by :func:`normalize_word`) this position
            encodes, or ``None`` (padding, end of sequence, other conditioning).
        word_index: Which word of the prompt (0-based, in :func:`prompt_words` order),
            telling apart two occurrences of one word; ``None`` with ``word``.
    """

    position: int
    token: str
    word: str | None
    word_index: int | None = None


def normalize_word(word: str) -> str:
    """Lower case, without surrounding punctuation: how words are compared."""
    return word.strip().strip(string.punctuation).lower()


def prompt_words(prompt: str) -> tuple[str, ...]:
    """The prompt's words in order (normalized; empty pieces dropped)."""
    return tuple(w for w in (normalize_word(piece) for piece in prompt.split()) if w)


def word_spans(prompt: str) -> list[tuple[int, int, str]]:
    """``(start, end, word)`` character spans of the prompt's words (normalized words;
    spans cover the whole whitespace-separated piece)."""
    spans, start = [], None
    for i, char in enumerate(prompt + " "):
        if char.isspace():
            if start is not None:
                word = normalize_word(prompt[start:i])
                if word:
                    spans.append((start, i, word))
                start = None
        elif start is None:
            start = i
    return spans


def words_of_offsets(
    prompt: str, offsets: Sequence[tuple[int, int]]
) -> list[tuple[str, int] | tuple[None, None]]:
    """``(word, word index)`` of each token, from the tokenizer's character offsets
    (``(0, 0)``: a special or padding token -> ``(None, None)``)."""
    spans = word_spans(prompt)
    words: list[tuple[str, int] | tuple[None, None]] = []
    for start, end in offsets:
        found: tuple[str, int] | tuple[None, None] = (None, None)
        if end > start:
            found = next(
                ((w, i) for i, (s, e, w) in enumerate(spans) if s <= start < e or s < end <= e), (None, None)
            )
        words.append(found)
    return words


def word_labels(tokens: Sequence[ContextToken]) -> dict[int, str]:
    """Position -> a label of its word occurrence: the word, or ``word#k`` (the k-th
    occurrence, from 1) for a word the prompt has more than once."""
    occurrences: dict[str, list[int | None]] = {}
    for t in tokens:
        if t.word is not None and t.word_index not in occurrences.setdefault(t.word, []):
            occurrences[t.word].append(t.word_index)
    labels = {}
    for t in tokens:
        if t.word is not None:
            seen = occurrences[t.word]
            labels[t.position] = t.word if len(seen) == 1 else f"{t.word}#{seen.index(t.word_index) + 1}"
    return labels


def word_positions(tokens: Sequence[ContextToken], word: str) -> tuple[int, ...]:
    """Positions whose token belongs to ``word`` (empty if the word is not there)."""
    wanted = normalize_word(word)
    return tuple(t.position for t in tokens if t.word is not None and t.word == wanted)


def require_word(tokens: Sequence[ContextToken], word: str, prompt: str) -> tuple[int, ...]:
    """Like :func:`word_positions`, but a word that is not in the prompt is an error
    naming the words that are.

    Raises:
        TadaError: If ``word`` has no position.
    """
    positions = word_positions(tokens, word)
    if not positions:
        present = list(dict.fromkeys(t.word for t in tokens if t.word is not None))
        raise TadaError(f"The word {word!r} is not in the prompt {prompt!r}; its words are {present}.")
    return positions
