"""Patches that start at a later step reuse the target run's latents instead of recomputing
the earlier steps (adapters that can resume: SynthMusic's deterministic Euler sampler)."""

from dataclasses import replace

import pytest
import torch

from interp.adapter import GenerationRequest
from interp.edits import Edit, Zero
from interp.errors import EditError, TadaError
from interp.metrics import get_metric
from interp.patching import single_site_variants, sweep
from interp.prompts import PromptPair
from interp.registry import load_model
from interp.runner import run

STEPS = 12
START = 7


@pytest.fixture(scope="module")
def model():
    return load_model("synthmusic-dit")


@pytest.fixture
def request_():
    return GenerationRequest(
        ("a fast piano piece with drums",), (3,), num_steps=STEPS, guidance_scale=4.0, decode=False
    )


def test_resumed_generation_equals_the_uninterrupted_one(model, request_):
    full = model.generate(replace(request_, keep_latents_at=(START,)))
    assert set(full.step_latents) == {START}
    resumed = model.generate(replace(request_, start_step=START, start_latents=full.step_latents[START]))
    assert torch.equal(resumed.latents, full.latents)
    fresh = model.generate(replace(request_, start_step=START, start_latents=torch.zeros_like(full.latents)))
    assert not torch.allclose(fresh.latents, full.latents), "the given latents must matter"


def test_resumed_traced_run_edits_the_same_steps(model, request_):
    """An edit at step s has the same effect whether the run starts at 0 or resumes before s."""
    edit = Edit("cross.1.heads", Zero(), steps=f"{START + 2}:")
    full = run(model, replace(request_, keep_latents_at=(START,)), edits=[edit]).output
    resumed = run(
        model, replace(request_, start_step=START, start_latents=full.step_latents[START]), edits=[edit]
    ).output
    plain = model.generate(request_)
    assert torch.equal(resumed.latents, full.latents)
    assert not torch.allclose(full.latents, plain.latents), "the edit must change the output"


def test_edits_before_the_resume_step_are_refused(model, request_):
    latents = torch.zeros(1, 80, 64)
    with pytest.raises(EditError, match="resumes at step 7"):
        run(
            model,
            replace(request_, start_step=START, start_latents=latents),
            edits=[Edit("cross.0.heads", Zero(), steps="5:")],
        )


def test_bad_resume_requests_are_refused(request_):
    with pytest.raises(TadaError, match="both start_step"):
        replace(request_, start_step=3)
    with pytest.raises(TadaError, match="start_step must be in"):
        replace(request_, start_step=STEPS, start_latents=torch.zeros(1, 80, 64))
    with pytest.raises(TadaError, match="outside the steps run"):
        replace(request_, keep_latents_at=(STEPS,))


def test_adapters_that_cannot_resume_say_so(tiny_sa):
    request = GenerationRequest(("x",), (0,), num_steps=4, duration_s=4.0, keep_latents_at=(2,))
    with pytest.raises(TadaError, match="cannot resume"):
        run(tiny_sa, request)


def test_late_window_sweep_skips_the_early_steps_and_agrees(model, request_):
    pairs = [PromptPair("a slow piano piece", "a fast piano piece", "tempo", "slow", "fast")]
    variants = single_site_variants(model.catalog.where(attention="cross", component="head")[:4])
    calls: list[int] = []
    hook = model.denoiser.register_forward_hook(lambda m, a, o: calls.append(1))
    try:
        kwargs = dict(steps=f"{START}:", batch_size=4, progress=False)
        reused = sweep(model, request_, pairs, [0], variants, get_metric("latent_distance"), **kwargs)
        n_reused = len(calls)
        calls.clear()
        recomputed = sweep(
            model,
            request_,
            pairs,
            [0],
            variants,
            get_metric("latent_distance"),
            reuse_latents=False,
            **kwargs,
        )
        n_recomputed = len(calls)
    finally:
        hook.remove()
    # one baseline run of all steps, then one batched run: all steps, or only those from START
    assert n_recomputed == STEPS + STEPS
    assert n_reused == STEPS + (STEPS - START)
    assert any(abs(r["value"] - r["corrupted"]) > 1e-3 for r in reused.rows), "patches must matter"
    for a, b in zip(reused.rows, recomputed.rows):
        assert a["variant"] == b["variant"]
        # the early steps ran in batches of different shapes: equal up to float rounding
        assert a["value"] == pytest.approx(b["value"], rel=1e-4, abs=1e-5)
        assert a["corrupted"] == pytest.approx(b["corrupted"], rel=1e-4, abs=1e-5)
