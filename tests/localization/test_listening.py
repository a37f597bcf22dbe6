"""Patched generations to listen to (``interp.patching.patched_generations``), on the
planted tiny model whose prompt reaches the output through two heads only."""

import pytest
import torch

from interp.errors import TadaError
from interp.patching import Variant, patched_generations, single_site_variants
from tests.localization.conftest import PLANTED


def test_planted_heads_restore_the_clean_run_and_others_change_nothing(planted_model, base, pairs):
    silent = ["cross.0.head.0", "cross.1.head.2"]
    variants = [Variant.of(sorted(PLANTED), "planted"), *single_site_variants(silent)]
    listening = patched_generations(planted_model, base, pairs[0], 0, variants, batch_size=2)
    assert list(listening.patched) == ["planted", *silent]
    clean, corrupted = listening.clean.latents, listening.corrupted.latents
    assert not torch.allclose(clean, corrupted, atol=1e-3)  # the prompt matters
    # both prompt-carrying heads patched from the clean run: the clean generation again
    torch.testing.assert_close(listening.patched["planted"].latents, clean, atol=1e-5, rtol=1e-4)
    # a head whose output is discarded: the corrupted generation, whatever it reads
    for site in silent:
        torch.testing.assert_close(listening.patched[site].latents, corrupted, atol=1e-5, rtol=1e-4)
    assert listening.patched["planted"].audio is not None
    assert listening.patched["planted"].audio.shape[0] == 1


def test_batched_rows_equal_one_variant_at_a_time(planted_model, base, pairs):
    variants = single_site_variants(sorted(PLANTED) + ["cross.0.head.2"])
    batched = patched_generations(planted_model, base, pairs[1], 3, variants, batch_size=3)
    alone = patched_generations(planted_model, base, pairs[1], 3, variants, batch_size=1)
    for label in batched.patched:
        torch.testing.assert_close(batched.patched[label].latents, alone.patched[label].latents)
    one = batched.patched["cross.0.head.1"].latents
    assert not torch.allclose(one, batched.corrupted.latents, atol=1e-4)  # a planted head moves it


def test_duplicate_labels_are_refused(planted_model, base, pairs):
    with pytest.raises(TadaError, match="labels must differ"):
        patched_generations(planted_model, base, pairs[0], 0, single_site_variants(["cross.0.head.1"] * 2))
