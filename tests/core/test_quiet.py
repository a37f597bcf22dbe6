"""Warnings that matter, in our words: a truncated prompt."""

import warnings

import pytest

from interp.quiet import TadaWarning, warn_precision, warn_truncated


def test_truncated_prompt_warns_once_in_our_words(tiny_sa) -> None:
    limit = tiny_sa.pipeline.tokenizer.model_max_length
    long = " ".join(["violin"] * (limit + 4))
    n_tokens = len(tiny_sa.pipeline.tokenizer(long)["input_ids"])  # independent count
    assert n_tokens > limit
    with pytest.warns(
        TadaWarning, match=rf"has {n_tokens} tokens; 'tiny-stable-audio' reads only the first {limit}"
    ):
        warn_truncated(tiny_sa, [long, "a sad violin song"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_truncated(tiny_sa, [long])  # already said
        warn_truncated(tiny_sa, ["a sad violin song", "a happy trumpet song"])  # fits
        warn_precision(tiny_sa)  # float32 on the CPU is fine


def test_cli_formats_our_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    from interp.quiet import _format

    text = _format("the message", TadaWarning, "f.py", 1)
    assert text == "tada: warning: the message\n"
    assert _format("x", UserWarning, "f.py", 1).startswith("f.py:1: UserWarning")
