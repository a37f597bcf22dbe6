"""sae-train and sae-steer run from an experiment spec on the default model."""

from interp.experiments import run as run_experiment

SPEC = {
    "name": "sae-methods",
    "model": {"name": "synthmusic-dit"},
    "generation": {"num_steps": 8, "guidance_scale": 4.0, "seeds": [0]},
    "steps": [
        {
            "name": "saes",
            "method": "sae-train",
            "sites": ["cross.0.out"],
            "pairs": {"source": "synthmusic", "concepts": ["tempo"], "per_concept": 4},
            "architecture": "topk",
            "k": 8,
            "training_steps": 60,
            "batch_size": 256,
        },
        {
            "name": "steer",
            "method": "sae-steer",
            "concept": "tempo",
            "target": "fast",
            "sae": {"from": "saes", "key": "saes"},
            "site": "cross.0.out",
            "k": 4,
            "pairs": {"source": "synthmusic", "per_concept": 8, "seed": 1},
            "eval_prompts": 2,
            "alphas": [0, 2],
            "distance": "latents",
        },
    ],
}


def test_sae_train_then_steer(tmp_path):
    results = run_experiment(SPEC, out=tmp_path / "run", progress=False)
    trained = results.steps["saes"]["summary"]
    assert set(trained["saes"]) == {"cross.0.out"}
    report = trained["reports"]["cross.0.out"]
    assert 0.0 < report["l0"] <= 8.0 and report["explained_variance"] <= 1.0
    from sae_lens import SAE

    sae = SAE.load_from_disk(trained["saes"]["cross.0.out"])
    assert sae.cfg.metadata.hook_name == "cross.0.out"
    steered = results.steps["steer"]["summary"]["auc"]
    assert set(steered) == {"auc", "auc_negative"}
    rows = [r for r in results.rows if r["step"] == "steer" and r["metric"] == "distance"]
    assert {float(r["alpha"]) for r in rows} == {0.0, 2.0}
    assert all(float(r["value"]) == 0.0 for r in rows if float(r["alpha"]) == 0.0)
