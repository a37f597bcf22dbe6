"""SAE feature scores and selection, feature steering and clamping on the tiny model."""

import pytest
import torch

from interp.edits import Read
from interp.errors import TadaError
from interp.runner import run
from interp.steering import sweep_alpha
from saes.features import concept_features, feature_activations, score_features, select_features
from saes.steer import SAEClampSteerer, SAEFeatureSteerer, decoder_directions


def test_scores_follow_their_formulas():
    pos = torch.tensor([[[1.0, 0.0, 2.0], [3.0, 0.0, 2.0]]])  # [step 1, n 2, d_sae 3]
    neg = torch.tensor([[[0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]])
    tada = score_features(pos, neg, "tada", eps=1e-6)
    assert tada[0, 0] == pytest.approx(2.0 * torch.log1p(torch.tensor(1e6)).item(), rel=1e-5)
    assert tada[0, 1] == 0.0 and tada[0, 2] == pytest.approx(2.0 * torch.log1p(torch.tensor(0.5)).item())
    assert score_features(pos, neg, "diff")[0].tolist() == [2.0, -1.0, 0.0]
    cohen = score_features(pos, neg, "cohen_d", eps=0.0)
    assert cohen[0, 0] == pytest.approx(2.0 / (2.0 / 3.0) ** 0.5)  # pooled var = (1 * 2 + 0) / 3
    selection = select_features(tada, 2, site="cross.1.out", steps=[3], method="tada")
    assert selection.at(3) == [0, 2]
    with pytest.raises(TadaError, match="valid"):
        score_features(pos, neg, "ratio")
    with pytest.raises(TadaError, match="k must be in 1..3"):
        select_features(tada, 4, site="cross.1.out", steps=[3])


def test_concept_features_score_every_step(tiny_sa, request_2, happy, tiny_sae):
    acts, steps = feature_activations(tiny_sa, request_2, happy.positive[:3], tiny_sae, seeds=[0, 1])
    assert acts.shape == (4, 6, tiny_sae.cfg.d_sae) and steps == (0, 1, 2, 3)
    assert (acts >= 0).all()
    selection = concept_features(
        tiny_sa,
        request_2,
        happy.positive[:4],
        happy.negative[:4],
        tiny_sae,
        k=5,
        method="diff",
        concept="happy",
    )
    assert selection.site == "cross.1.out" and selection.indices.shape == (4, 5)
    described = selection.describe()
    assert described["concept"] == "happy" and len(described["features"]["2"]) == 5


@pytest.fixture(scope="module")
def selection(tiny_sa, happy, tiny_sae):
    from interp.adapter import GenerationRequest

    request = GenerationRequest(prompts=("x",), seeds=(0,), num_steps=4, guidance_scale=3.0, duration_s=4.0)
    return concept_features(tiny_sa, request, happy.positive[:4], happy.negative[:4], tiny_sae, k=3)


def test_alpha_zero_reproduces_the_unsteered_generation(tiny_sa, request_2, tiny_sae, selection):
    plain = tiny_sa.generate(request_2)
    steerers = [
        SAEFeatureSteerer(tiny_sae, selection),
        SAEFeatureSteerer(tiny_sae, selection, renormalize=True, branch="both"),
        SAEClampSteerer.from_selection(tiny_sae, selection, target=4.0),
        SAEClampSteerer(tiny_sae, [0, 5], target=[1.0, 2.0], mode="add", branch="both"),
    ]
    for steerer in steerers:
        (_, zero), (_, steered) = sweep_alpha(tiny_sa, request_2, steerer, [0.0, 3.0])
        assert torch.equal(zero.output.audio, plain.audio), steerer.describe()
        assert torch.equal(zero.output.latents, plain.latents)
        assert not torch.equal(steered.output.latents, plain.latents), steerer.describe()


def test_feature_steering_adds_the_decoder_directions_at_the_site(tiny_sa, request_2, tiny_sae, selection):
    read = [Read("cross.1.out", steps=0)]
    plain = run(tiny_sa, request_2, reads=read).reads["cross.1.out"][0]
    steerer = SAEFeatureSteerer(tiny_sae, selection, steps=[0])
    steered = run(tiny_sa, request_2, edits=steerer.edits(2.5), reads=read).reads["cross.1.out"][0]
    direction = decoder_directions(tiny_sae)[selection.at(0)].sum(dim=0)
    n = request_2.batch_size
    assert torch.equal(steered[:n], plain[:n])  # uncond rows untouched
    assert torch.equal(steered[n:], plain[n:] + 2.5 * direction)


def test_clamping_sets_features_and_keeps_the_error_term(tiny_sa, request_2, tiny_sae):
    read = [Read("cross.1.out", steps=1)]
    plain = run(tiny_sa, request_2, reads=read).reads["cross.1.out"][0]
    steerer = SAEClampSteerer(tiny_sae, [7], target=6.0, steps=[1], site="cross.1.out")
    steered = run(tiny_sa, request_2, edits=steerer.edits(1.0), reads=read).reads["cross.1.out"][0]
    n = request_2.batch_size
    with torch.no_grad():
        features = tiny_sae.encode(plain[n:])
        clamped = features.clone()
        clamped[..., 7] = 6.0
        error = plain[n:] - tiny_sae.decode(features)
        expected = tiny_sae.decode(clamped) + error
    torch.testing.assert_close(steered[n:], expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(steered[:n], plain[:n])
    with pytest.raises(TadaError, match="Feature indices"):
        SAEClampSteerer(tiny_sae, [tiny_sae.cfg.d_sae])
    with pytest.raises(TadaError, match="valid: \\['set', 'add'\\]"):
        SAEClampSteerer(tiny_sae, [1], mode="replace")


@pytest.mark.parametrize("mode", ["add", "clamp"])
def test_run_sae_steering_goes_from_a_saved_sae_to_rows_and_artifacts(
    tiny_sa, request_2, happy, tiny_sae, mode, tmp_path
):
    from saes.workflow import SAESteeringSettings, run_sae_steering

    class Mean:
        def score(self, output, concept, value):
            return output.latents.flatten(1).mean(dim=1)

    settings = SAESteeringSettings(k=3, mode=mode, clamp_target=3.0, steps=[0, 1], distance="latents")
    result = run_sae_steering(
        tiny_sa,
        request_2,
        happy.positive[:3],
        happy.negative[:3],
        tiny_sae,
        [2.0],
        Mean(),
        "mood",
        "happy",
        settings=settings,
        out_dir=tmp_path,
    )
    zero = [r for r in result.rows if r["alpha"] == 0.0]
    steered = [r for r in result.rows if r["alpha"] == 2.0]
    assert all(r["distance"] == 0.0 for r in zero) and all(r["distance"] > 0 for r in steered)
    assert result.method["method"] == ("sae" if mode == "add" else "sae-clamp")
    assert set(result.method["features"]) == {"0", "1"}
    assert (tmp_path / "features.json").is_file() and (tmp_path / "summary.json").is_file()


def test_a_module_that_is_not_an_sae_is_refused_with_one_sentence():
    not_an_sae = torch.nn.Linear(4, 4)
    with pytest.raises(TadaError, match="Expected an sae-lens SAE .* got Linear"):
        decoder_directions(not_an_sae)
    with pytest.raises(TadaError, match="Expected an sae-lens SAE"):
        SAEClampSteerer(not_an_sae, [0], site="cross.1.out")
