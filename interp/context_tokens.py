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
    """

    position: int
    token: str
    word: str | None


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


def words_of_offsets(prompt: str, offsets: Sequence[tuple[int, int]]) -> list[str | None]:
    """The word each token belongs to, from the tokenizer's character offsets
    (``(0, 0)``: a special or padding token -> ``None``)."""
    spans = word_spans(prompt)
    words: list[str | None] = []
    for start, end in offsets:
        word = None
        if end > start:
            word = next((w for s, e, w in spans if s <= start < e or s < end <= e), None)
        words.append(word)
    return words


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
