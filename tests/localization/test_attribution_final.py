"""Attribution against a metric of the final output, differentiated through the whole
sampler (SynthMusic), checked against finite differences of real patched generations."""

import pytest
import torch

from interp.adapter import GenerationRequest
from interp.attribution import attribute, gradient_metric
from interp.edits import Add, Edit, Read
from interp.errors import TadaError
from interp.metrics import ConceptContrast, MetricContext, get_metric
from interp.prompts import PromptPair
from interp.registry import load_model
from interp.runner import run

STEP = 6
PAIR = PromptPair("a slow piano piece with drums", "a fast piano piece with drums", "tempo", "slow", "fast")


@pytest.fixture(scope="module")
def model():
    return load_model("synthmusic-dit")


@pytest.fixture(scope="module")
def base():
    return GenerationRequest(("-",), (0,), num_steps=10, guidance_scale=4.0, decode=False)


def _request(base: GenerationRequest, prompt: str) -> GenerationRequest:
    return GenerationRequest(
        (prompt,), (0,), num_steps=base.num_steps, guidance_scale=base.guidance_scale, decode=False
    )


def test_estimate_is_the_derivative_of_the_final_metric(model, base):
    """At one step the estimate is <delta, d m / d a>: the derivative of m along delta,
    which finite differences of actually patched generations measure independently."""
    metric = ConceptContrast(model.concept_scorer())
    every = [s.name for s in model.catalog.where(attention="cross", component="head")]
    estimates = attribute(model, base, [PAIR], [0], every, steps=[STEP], progress=False, metric=metric)
    # the three largest estimates: finite differences of float32 generations resolve ~1e-3
    heads = sorted(every, key=lambda k: -abs(estimates.scores[k]))[:3]
    reads = [Read(site, steps=[STEP], branch="cond") for site in heads]
    clean = run(model, _request(base, PAIR.clean), reads=reads)
    corrupted = run(model, _request(base, PAIR.corrupted), reads=reads)

    def metric_after_adding(site: str, delta: torch.Tensor, eps: float) -> float:
        edit = Edit(site, Add({STEP: eps * delta}), steps=[STEP], branch="cond")
        output = run(model, _request(base, PAIR.corrupted), edits=[edit]).output
        with torch.no_grad():
            return float(metric(output, MetricContext.for_pair(clean.output, output, PAIR))[0])

    eps = 1e-2
    for site in heads:
        delta = clean.reads[site][0] - corrupted.reads[site][0]
        derivative = (metric_after_adding(site, delta, eps) - metric_after_adding(site, delta, -eps)) / (
            2 * eps
        )
        assert abs(derivative) > 0.02, f"{site}: too small an effect to check ({derivative})"
        assert estimates.scores[site] == pytest.approx(derivative, rel=0.05, abs=1e-3), site


def test_gradient_modes(model, tiny_sa):
    concept = ConceptContrast(model.concept_scorer())
    assert gradient_metric(model, concept) is concept
    assert gradient_metric(model, concept, "local") is None
    assert gradient_metric(tiny_sa, get_metric("latent_distance")) is None  # Stable Audio's sampler is not
    with pytest.raises(TadaError, match="cannot differentiate through its sampler"):
        run(tiny_sa, GenerationRequest(("x",), (0,), num_steps=2, duration_s=4.0, keep_graph=True))
    with pytest.raises(TadaError, match="differentiable end to end"):
        attribute(
            tiny_sa,
            GenerationRequest(("x",), (0,), num_steps=2, duration_s=4.0),
            [PAIR],
            [0],
            ["cross.0.head.0"],
            progress=False,
            metric=get_metric("latent_distance"),
        )


def test_pipeline_still_runs_without_gradients_outside_attribution(model, base):
    out = model.generate(GenerationRequest((PAIR.clean,), (0,), num_steps=2, decode=False))
    assert not out.latents.requires_grad
    with torch.no_grad():  # the request, not the caller's mode, decides
        kept = model.generate(
            GenerationRequest((PAIR.clean,), (0,), num_steps=2, decode=False, keep_graph=True)
        )
    assert kept.latents.requires_grad
