"""``tada plan --calibrate``'s run costs: the probe run measures a cost planted in every
unit, and the estimate adds ``unit_s`` per unit and ``step_s`` per step, as counted by hand."""

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from interp.experiments import load_spec
from interp.experiments.calibration import PROBE_STEPS, calibrate_framework, probe_spec
from interp.experiments.estimates import Rates
from interp.experiments.plan_report import plan_seconds
from interp.experiments.planning import plan
from interp.metrics import register_metric, unregister_metric

ROOT = Path(__file__).resolve().parents[2]
SLEEP_S = 0.3


def tiny(metrics: list[Any]) -> Any:
    spec = yaml.safe_load((ROOT / "experiments" / "tiny.yaml").read_text())
    spec["metrics"] = metrics
    return load_spec(spec, base_dir=ROOT / "experiments")


def test_probe_measures_a_cost_planted_in_every_unit():
    @register_metric("test-slow", description="Sleeps, then scores 0.", needs_audio=False)
    def slow(output: Any, context: Any) -> list[float]:
        time.sleep(SLEEP_S)
        return [0.0] * len(output.latents)

    try:
        rates = Rates(row_step_s=0.0, forward_s=0.0, call_s=0.0, decode_s=0.0)  # nothing is modelled
        plain, _ = calibrate_framework(tiny(["rms"]), rates)
        slowed, raw = calibrate_framework(tiny(["rms", "test-slow"]), rates)
    finally:
        unregister_metric("test-slow")
    assert "test-slow" in raw
    assert plain.unit_s is not None and slowed.unit_s is not None and slowed.step_s is not None
    # each probe unit scores once: the sleep is in every unit's wall time, never in a step's
    assert slowed.unit_s >= SLEEP_S
    assert slowed.unit_s - plain.unit_s > 0.5 * SLEEP_S


def test_probe_keeps_the_spec_settings_with_its_own_metric_when_none():
    loaded = tiny(["rms"])
    data = probe_spec(loaded)
    assert data["model"]["name"] == "tiny-stable-audio" and data["model"]["device"] == "cpu"
    assert data["generation"] == {"num_steps": 2, "guidance_scale": 3.0, "seeds": [0], "duration_s": 4.0}
    assert [s["method"] for s in data["steps"]] == ["generate"] * PROBE_STEPS
    assert probe_spec(tiny([]))["metrics"] == ["latent_distance"]


def test_estimate_adds_unit_and_step_costs_to_the_model_time():
    loaded = load_spec(ROOT / "experiments" / "tiny.yaml")
    total = plan(loaded).total  # 12 calls of 2 samples, 4 rows x 4 steps, decoded
    rates = Rates(row_step_s=0.01, forward_s=0.02, call_s=0.1, decode_s=0.05, unit_s=0.25, step_s=2.0)
    model = 12 * (0.1 + 4 * (0.02 + 4 * 0.01) + 2 * 0.05)
    assert plan_seconds(rates, total, units=8, steps=2) == pytest.approx(model + 8 * 0.25 + 2 * 2.0)
    table = Rates(row_step_s=0.01, forward_s=0.02, call_s=0.1, decode_s=0.05)  # the table's framework entry
    fixed = table.framework()
    assert plan_seconds(table, total, 8, 2) == pytest.approx(model + 8 * fixed.unit_s + 2 * fixed.step_s)
