"""Which word a head reads: token-level patching of keys and values, and attention per
word, on the planted tiny pipeline (only cross.0.head.1 and cross.1.head.3 carry text)."""

from dataclasses import replace

import pytest
import torch

from interp.attention_patterns import read_patterns
from interp.context_tokens import word_positions
from interp.edits import Edit, Read, Replace, ReplaceTokens
from interp.errors import EditError, SiteError, TadaError
from interp.metrics import get_metric
from interp.patching import Variant, sweep
from interp.runner import run
from interp.word_reading import (
    ALL,
    OTHER,
    attention_by_word,
    context_of,
    kv_sites,
    token_patching,
    word_variants,
)

CTX = 18  # 16 word tokens (padded) + two duration tokens


def clean_and_corrupted(model, base, pair, reads):
    """One batch: the corrupted prompt (sample 0) and the clean one (sample 1)."""
    layout = replace(base, prompts=(pair.corrupted, pair.clean), seeds=(0, 0))
    return layout, run(model, layout, reads=reads)


def test_context_positions_map_back_to_the_words(planted_model, pairs):
    tokens = context_of(planted_model, 0, pairs[0].clean, CTX)
    assert [t.word for t in tokens[:5]] == ["a", "sad", "violin", "song", None]
    assert [t.token for t in tokens[-2:]] == ["<seconds_start>", "<seconds_end>"]
    assert word_positions(tokens, "Violin,") == (2,)
    assert word_positions(tokens, "cello") == ()


def test_patching_a_word_that_is_not_in_the_prompt_changes_nothing(planted_model, base, pairs):
    pair = pairs[0]
    sites = [
        s for layer in (0, 1) for g in (0, 1) for s in (f"cross.{layer}.key.{g}", f"cross.{layer}.value.{g}")
    ]
    layout, clean = clean_and_corrupted(planted_model, base, pair, [Read(s) for s in sites])
    absent = word_positions(context_of(planted_model, 0, pair.clean, CTX), "cello")
    edits = [
        Edit(s, ReplaceTokens({i: clean.reads[s][i][[1, 3]] for i in range(4)}, absent), samples=(0,))
        for s in sites
    ]
    patched = run(planted_model, layout, edits=edits)
    assert torch.equal(patched.output.latents, clean.output.latents)
    assert torch.equal(patched.output.audio, clean.output.audio)


def test_patching_every_token_equals_the_full_key_value_and_text_patch(planted_model, base, pairs):
    pair = pairs[0]
    kv = [f"cross.{layer}.{c}" for layer in (0, 1) for c in ("keys", "values")]
    texts = ["cross.0.text", "cross.1.text"]
    layout, ref = clean_and_corrupted(planted_model, base, pair, [Read(s) for s in kv + texts])
    corrupted = replace(layout, prompts=(pair.corrupted,) * 2)

    def cached(site):
        return {i: ref.reads[site][i][[1, 3]] for i in range(4)}

    every = run(
        planted_model,
        corrupted,
        edits=[Edit(s, ReplaceTokens(cached(s), range(CTX)), samples=(1,)) for s in kv],
    )
    full = run(planted_model, corrupted, edits=[Edit(s, Replace(cached(s)), samples=(1,)) for s in kv])
    text = run(planted_model, corrupted, edits=[Edit(s, Replace(cached(s)), samples=(1,)) for s in texts])
    assert torch.equal(every.output.latents, full.output.latents)
    torch.testing.assert_close(full.output.latents, text.output.latents, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(full.output.latents[1], ref.output.latents[1], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(full.output.latents[0], full.output.latents[1], atol=1e-3)


def test_token_patching_finds_the_words_only_planted_heads_read(planted_model, base, pairs):
    metric = get_metric("latent_distance")
    heads = ["cross.0.head.1", "cross.0.head.2", "cross.1.head.3"]
    result, variants = token_patching(planted_model, base, pairs[0], [0], heads, metric, progress=False)
    effects = {k: e.mean for k, e in result.effects(n_boot=10).items()}
    by = {(v.head, v.word): effects[v.variant.label] for v in variants}
    assert {v.word for v in variants if v.concept} == {"sad", "violin"}
    # cross.0.head.2 reads key/value head 1, which no planted head shares: no effect
    assert all(abs(by[("cross.0.head.2", w)]) < 1e-4 for w in ("sad", "violin", "a", ALL))
    for head in ("cross.0.head.1", "cross.1.head.3"):
        assert abs(by[(head, ALL)]) > 0.01
        assert max(abs(by[(head, w)]) for w in ("sad", "violin")) > 0.01
    # patching both layers' planted key/value heads at every position restores the clean run
    both = Variant.of(
        [s for h in ("cross.0.head.1", "cross.1.head.3") for s in kv_sites(planted_model, h)],
        "both",
        range(CTX),
    )
    restored = sweep(planted_model, base, [pairs[0]], [0], [both], metric, progress=False)
    assert restored.rows[0]["value"] == pytest.approx(restored.rows[0]["clean"], abs=1e-4)


def test_attention_by_word_shares_sum_to_one(planted_model, base, pairs):
    pair = pairs[0]
    patterns = read_patterns(planted_model, replace(base, prompts=(pair.clean,)), [1])
    tokens = context_of(planted_model, 1, pair.clean, CTX)
    shares = attention_by_word(patterns.probabilities[1], tokens, row=0, head=3)
    assert list(shares) == ["a", "sad", "violin", "song", OTHER]
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-5)
    assert all(0 <= v <= 1 for v in shares.values())


def test_bad_words_and_heads_are_clear_errors(planted_model, pairs):
    with pytest.raises(
        TadaError, match=r"'cello' is not in the prompt 'a sad violin song'; its words are \['a', 'sad'"
    ):
        word_variants(planted_model, pairs[0], ["cross.0.head.1"], words=["cello"])
    with pytest.raises(SiteError, match=r"Head 4 out of range in cross.0.head.4: .* numbered 0..3"):
        word_variants(planted_model, pairs[0], ["cross.0.head.4"])
    with pytest.raises(SiteError, match="Key/value head 2 out of range in cross.0.key.2"):
        planted_model.catalog.validate("cross.0.key.2")
    with pytest.raises(SiteError, match="takes cross-attention heads"):
        kv_sites(planted_model, "cross.0.text")
    with pytest.raises(EditError, match="positions must be token indices"):
        ReplaceTokens(torch.zeros(1), [-1])
    with pytest.raises(EditError, match="can be read but not edited"):
        run(planted_model, replace_prompts(pairs), edits=[Edit("cross.0.mask", Replace(torch.zeros(1)))])


def replace_prompts(pairs):
    from interp.adapter import GenerationRequest

    return GenerationRequest(
        prompts=(pairs[0].clean,), seeds=(0,), num_steps=2, guidance_scale=3.0, duration_s=4.0
    )
