"""ACE-Step's context labels against the context its cross-attention really receives."""

import pytest
import torch

from interp.adapter import GenerationRequest
from interp.context_tokens import ContextToken, prompt_words, word_positions
from models.ace_step import AceStepAdapter
from models.tiny.ace_step import tiny_ace_step

CLEAN = "a sad violin song"
CORRUPTED = "a happy violin song"


@pytest.fixture(scope="module")
def adapter() -> AceStepAdapter:
    return AceStepAdapter("tiny-ace-step", tiny_ace_step())


def received_context(adapter: AceStepAdapter, prompt: str) -> torch.Tensor:
    """The conditional row of ``encoder_hidden_states`` the first cross-attention call
    receives during a real generation ``[ctx, d]`` (plain forward pre-hook)."""
    seen: list[torch.Tensor] = []

    def hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        seen.append(kwargs["encoder_hidden_states"].detach().clone())

    attn = adapter.denoiser.get_submodule(adapter.catalog.module("cross", 0).path)
    handle = attn.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        request = GenerationRequest(
            prompts=(prompt,), seeds=(0,), num_steps=1, guidance_scale=3.0, duration_s=2.0
        )
        adapter.generate(request)
    finally:
        handle.remove()
    return seen[0][-1]  # inside the denoiser the rows are [uncond, cond]


def sections(tokens: tuple[ContextToken, ...]) -> tuple[list[int], list[int], list[int]]:
    lyric = [t.position for t in tokens if t.token.startswith("<lyric>")]
    timbre = [t.position for t in tokens if t.token == "<timbre>"]
    text = [t.position for t in tokens if t.position not in {*lyric, *timbre}]
    return lyric, timbre, text


def test_one_label_per_context_position_in_packing_order(adapter):
    module = adapter.catalog.module("cross", 0)
    tokens = adapter.context_tokens(module, CLEAN)
    assert len(tokens) == received_context(adapter, CLEAN).shape[0]
    assert [t.position for t in tokens] == list(range(len(tokens)))
    lyric, timbre, text = sections(tokens)
    assert lyric == list(range(len(lyric))) and lyric
    assert timbre == [len(lyric)]
    assert text == list(range(len(lyric) + 1, len(tokens)))
    words = [t.word for t in tokens if t.word is not None]
    assert words == list(prompt_words(CLEAN))  # one word-level token per word
    assert all(t.word is None for t in tokens if t.position not in text)


def test_the_labelled_word_is_where_the_context_first_changes(adapter):
    """The text encoder (Qwen3) is causal: changing one caption word changes its
    positions and the text after it, nothing before it, and no lyric or timbre position."""
    module = adapter.catalog.module("cross", 0)
    clean, corrupted = adapter.context_tokens(module, CLEAN), adapter.context_tokens(module, CORRUPTED)
    assert [t.position for t in clean] == [t.position for t in corrupted]
    changed = word_positions(clean, "sad")
    assert changed == word_positions(corrupted, "happy")
    differ = (received_context(adapter, CLEAN) != received_context(adapter, CORRUPTED)).any(-1)
    differing = set(torch.nonzero(differ).flatten().tolist())
    lyric, timbre, text = sections(clean)
    assert set(changed) <= differing
    assert min(differing) == min(changed)
    assert differing <= set(text)
    assert not differing & {*lyric, *timbre}
