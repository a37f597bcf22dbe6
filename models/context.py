"""Context positions of a cross-attention module, labelled through the tokenizer.

Shared by the adapters: a fast tokenizer's character offsets say which prompt word each
token piece belongs to (:func:`interp.context_tokens.words_of_offsets`), offline.
"""

from typing import Any

from interp.context_tokens import ContextToken, words_of_offsets


def tokenized_context(
    tokenizer: Any, prompt: str, max_length: int, start: int = 0, pad: bool = True
) -> list[ContextToken]:
    """One :class:`ContextToken` per position of the tokenization of ``prompt`` as a
    pipeline does it (truncated to ``max_length``; padded to it when ``pad``), from
    position ``start``.

    Args:
        tokenizer: A fast tokenizer (it must return offsets).
        prompt: The prompt.
        max_length: The length the pipeline truncates (and pads) to.
        start: Context position of the first token.
        pad: Pad to ``max_length`` (pipelines that pad to the longest prompt of the
            batch: ``False``; the positions after the prompt's tokens are padding).
    """
    encoded = tokenizer(
        prompt,
        padding="max_length" if pad else "do_not_pad",
        max_length=max_length,
        truncation=True,
        return_offsets_mapping=True,
    )
    pieces = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    words = words_of_offsets(prompt, encoded["offset_mapping"])
    return [
        ContextToken(start + i, piece, word, index)
        for i, (piece, (word, index)) in enumerate(zip(pieces, words))
    ]


def labelled(labels: list[str], start: int) -> list[ContextToken]:
    """Positions that carry no prompt word (duration tokens, generated states)."""
    return [ContextToken(start + i, label, None) for i, label in enumerate(labels)]
