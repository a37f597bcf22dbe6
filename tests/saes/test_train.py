"""SAE training with sae-lens: planted sparse structure is recovered; saves round-trip."""

import json

import pytest
import torch

from interp.errors import TadaError
from saes.train import SAESettings, evaluate_sae, load_sae, train_sae, train_saes

D_IN, N_TRUE, K_TRUE = 16, 24, 3


def planted(seed: int):
    """Vectors that are sums of 3 of 24 unit directions with magnitudes in [0.5, 2.5]."""
    directions = torch.nn.functional.normalize(
        torch.randn(N_TRUE, D_IN, generator=torch.Generator().manual_seed(seed)), dim=1
    )
    generator = torch.Generator().manual_seed(seed + 1)

    def draw(n):
        index = torch.rand(n, N_TRUE, generator=generator).topk(K_TRUE, dim=1).indices
        magnitude = torch.rand(n, K_TRUE, generator=generator) * 2 + 0.5
        return torch.zeros(n, N_TRUE).scatter(1, index, magnitude) @ directions

    def stream(batch):
        while True:
            yield draw(batch)

    return directions, draw, stream


def matched(sae, directions) -> torch.Tensor:
    """Best cosine of each planted direction with a decoder row."""
    rows = torch.nn.functional.normalize(sae.W_dec.detach().float(), dim=1)
    return (directions @ rows.T).max(dim=1).values


@pytest.mark.parametrize("architecture, min_ev, min_matched", [("topk", 0.9, 0.8), ("batchtopk", 0.85, 0.75)])
def test_sae_recovers_planted_sparse_features(architecture, min_ev, min_matched, tmp_path, record_property):
    directions, draw, stream = planted(seed=0)
    settings = SAESettings(
        architecture=architecture,
        k=K_TRUE,
        expansion_factor=2,
        lr=1e-2,
        lr_end=1e-3,
        lr_scheduler="cosineannealing",
        training_steps=500,
        batch_size=256,
        dead_feature_window=100,
    )
    sae, report = train_sae(
        stream(256), D_IN, settings, site="cross.3.out", eval_vectors=draw(4096), out_dir=tmp_path / "sae"
    )
    cosines = matched(sae, directions)
    fraction = float((cosines > 0.9).float().mean())
    record_property("explained_variance", report.explained_variance)
    record_property("matched_fraction", fraction)
    print(
        f"{architecture}: explained variance {report.explained_variance:.3f}, L0 {report.l0:.2f}, "
        f"dead {report.dead_features}/{report.d_sae}, planted features matched (cos > 0.9) "
        f"{fraction:.2f}, mean best cosine {float(cosines.mean()):.3f}"
    )
    assert report.explained_variance > min_ev
    assert fraction >= min_matched
    assert abs(report.l0 - K_TRUE) < 0.5
    assert json.loads((tmp_path / "sae" / "report.json").read_text())["site"] == "cross.3.out"


@pytest.mark.parametrize(
    "architecture, inference", [("topk", "topk"), ("batchtopk", "jumprelu"), ("standard", "standard")]
)
def test_saves_round_trip_through_sae_lens(architecture, inference, tmp_path):
    from sae_lens import SAE

    _, draw, stream = planted(seed=1)
    settings = SAESettings(
        architecture=architecture,
        k=3,
        expansion_factor=2,
        lr=3e-3,
        training_steps=30,
        batch_size=128,
        holdout=0,
    )
    sae, report = train_sae(
        stream(128),
        D_IN,
        settings,
        site="cross.0.head.1",
        eval_vectors=draw(512),
        held_out=False,
        out_dir=tmp_path,
        metadata={"model_name": "synthetic"},
    )
    loaded = SAE.load_from_disk(str(tmp_path))
    assert loaded.cfg.architecture() == inference
    assert loaded.cfg.metadata.hook_name == "cross.0.head.1"
    assert loaded.cfg.metadata.model_name == "synthetic"
    assert loaded.cfg.d_sae == 2 * D_IN and report.d_sae == 2 * D_IN
    x = draw(64)
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), sae.encode(x))
        assert torch.equal(loaded.decode(loaded.encode(x)), sae.decode(sae.encode(x)))
    assert evaluate_sae(loaded, x)["l0"] == pytest.approx(evaluate_sae(sae, x)["l0"])


def test_train_saes_trains_one_per_cached_site_on_held_out_reports(tiny_cache, tmp_path):
    settings = SAESettings(
        architecture="topk",
        k=4,
        expansion_factor=2,
        lr=3e-3,
        training_steps=20,
        batch_size=128,
        holdout=4,
        eval_vectors=200,
    )
    reports = train_saes(tiny_cache, settings, tmp_path)
    assert set(reports) == {"cross.1.out", "cross.1.heads"}
    heads = load_sae(tmp_path / "cross.1.heads")
    assert heads.cfg.d_in == 32 and heads.cfg.metadata.hook_name == "cross.1.heads"
    assert heads.cfg.metadata.tada_denoising_steps == [0, 1, 2, 3]
    assert reports["cross.1.out"].held_out and reports["cross.1.out"].eval_vectors == 200
    assert json.loads((tmp_path / "reports.json").read_text()).keys() == reports.keys()


def test_bad_settings_and_paths_get_clear_errors(tmp_path):
    with pytest.raises(TadaError, match="valid: \\['topk', 'batchtopk', 'standard'\\]"):
        SAESettings(architecture="gated")
    with pytest.raises(TadaError, match="k must be >= 1"):
        SAESettings(k=0)
    with pytest.raises(TadaError, match="cfg.json missing"):
        load_sae(tmp_path)
    _, draw, _ = planted(seed=2)
    with pytest.raises(TadaError, match=r"must be \[64, 16\]"):
        train_sae(
            iter([draw(10)]),
            D_IN,
            SAESettings(batch_size=64, training_steps=1),
            site="cross.0.out",
            eval_vectors=draw(10),
        )


def test_training_works_when_the_caller_disabled_gradients():
    _, draw, stream = planted(seed=3)
    settings = SAESettings(architecture="topk", k=3, expansion_factor=2, training_steps=5, batch_size=64)
    with torch.no_grad():
        _, report = train_sae(stream(64), D_IN, settings, site="cross.0.out", eval_vectors=draw(64))
    assert report.training_steps == 5 and report.explained_variance > -1.0
