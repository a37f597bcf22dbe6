"""A metric registered by a plug-in (entry point) locates and steers like a built-in."""

import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint

import pytest

import interp.metrics
import interp.plugins
from interp.errors import TadaError
from interp.experiments import load_spec
from interp.experiments import run as run_experiment
from interp.metrics import ENTRY_POINT_GROUP, get_metric, metric_names

NAME = "tada-test-latent-mean"
MODULE = f"{__package__}.metric_plugin"  # imported by the entry point, not here


def _install(monkeypatch: pytest.MonkeyPatch, *points: EntryPoint) -> None:
    """Entry points of the metric group as an installed package would declare them."""
    real = interp.plugins.entry_points
    monkeypatch.setattr(
        interp.plugins,
        "entry_points",
        lambda group: list(points) if group == ENTRY_POINT_GROUP else real(group=group),
    )
    monkeypatch.setattr(interp.metrics, "_loaded", False)


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    interp.metrics.unregister_metric(NAME)
    sys.modules.pop(MODULE, None)
    _install(monkeypatch, EntryPoint(NAME, f"{MODULE}:latent_mean", ENTRY_POINT_GROUP))
    yield
    interp.metrics.unregister_metric(NAME)
    sys.modules.pop(MODULE, None)


SPEC = {
    "name": "plugin-metric",
    "model": {"name": "tiny-stable-audio"},
    "generation": {"num_steps": 2, "guidance_scale": 3.0, "duration_s": 4.0, "seeds": [0]},
    "steps": [
        {
            "name": "layers",
            "method": "patch",
            "component": "text",
            "metric": NAME,
            "pairs": {"source": "tada", "concepts": ["happy"], "per_concept": 1},
        },
        {
            "name": "steer",
            "method": "caa",
            "concept": "happy",
            "target": "happy",
            "metric": NAME,
            "sites": ["cross.0.out"],
            "all_layers": False,
            "pairs": {"source": "tada", "per_concept": 4},
            "eval_prompts": 1,
            "alphas": [-2.0, 0.0, 2.0],
            "distance": "latents",
        },
    ],
}


def test_plugin_metric_is_found_only_through_its_entry_point(plugin: None) -> None:
    assert NAME in metric_names()
    assert get_metric(NAME).needs_audio is False
    with pytest.raises(TadaError, match=f"Valid metrics: .*'{NAME}'"):
        get_metric("tada-test-latent-maen")


@pytest.mark.slow
def test_plugin_metric_patches_and_steers(plugin: None, tmp_path) -> None:
    results = run_experiment(SPEC, out=tmp_path / "run", progress=False)
    calls = sys.modules[MODULE].CALLS
    patching = [(o, c) for o, c in calls if c.corrupted is not None]
    steering = [(o, c) for o, c in calls if c.corrupted is None]
    # patching: the clean run is the reference, the pair names both values
    assert all(c.pair.clean_value == "happy" and c.pair.corrupted_value == "sad" for _, c in patching)
    # ground truth: one pair and seed, so each layer's effect is (m_patched - m_corrupted) /
    # (m_clean - m_corrupted) with the plug-in's mean latent; row 0 of the batch is the
    # unpatched corrupted run, rows 1.. patch cross.0.text and cross.1.text
    (clean_output, _), (batch_output, _) = patching
    clean = clean_output.latents.flatten(1).double().mean(1)[0]
    means = batch_output.latents.flatten(1).double().mean(1)
    assert clean != means[0]
    expected = {f"cross.{i}.text": float((means[i + 1] - means[0]) / (clean - means[0])) for i in (0, 1)}
    effects = results.steps["layers"]["summary"]["effects"]["happy"]
    assert effects == pytest.approx(expected, rel=1e-9)
    # steering: the target is the only value given to the metric, at every alpha
    assert len(steering) >= 3
    assert all(c.target == ("happy", "happy") and c.pair is None for _, c in steering)
    assert any(r["metric"] == "auc" for r in results.rows if r["step"] == "steer")


def test_a_plugin_that_registers_nothing_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(
        monkeypatch, EntryPoint("tada-test-none", "tests.experiments.metric_plugin:CALLS", ENTRY_POINT_GROUP)
    )
    with pytest.raises(TadaError, match="'tada-test-none'.*registered no metric named"):
        metric_names()


def test_a_broken_plugin_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(
        monkeypatch, EntryPoint("tada-test-broken", "tests.experiments.no_such_module:f", ENTRY_POINT_GROUP)
    )
    with pytest.raises(TadaError, match="metric plug-in 'tada-test-broken'.*ModuleNotFoundError"):
        metric_names()


def test_spec_validation_sees_plugin_metrics(plugin: None) -> None:
    loaded = load_spec(SPEC)
    assert loaded.spec.steps[0].metric.name == NAME
    with pytest.raises(Exception, match="Valid metrics"):
        load_spec({**SPEC, "steps": [{**SPEC["steps"][0], "metric": "no-such-metric"}]})
