"""The run's own costs, measured: ``tada plan --calibrate`` runs a small experiment on the
spec's model and reads where its time went.

A run spends time besides generating: each unit saves its rows and WAVs and scores its
metrics, each step writes its summary and plots, the run writes its table and report.
For a small model these costs are most of a run (``experiments/tiny.yaml``), so the
calibration measures them instead of assuming them. It runs, into a temporary
directory, a *probe*: two ``generate`` steps of two prompts each on the spec's model,
device and dtype, with the spec's guidance, duration, first seed and metrics (the
probe's own, ``latent_distance``, when the spec lists none or they cannot score the
probe) and 2 denoising steps. Its
``run.log`` gives every unit's wall time; the model's rates (already calibrated) give
the part of it that generating explains. Then

    unit_s = (sum of the units' wall times - their modelled generation time) / units
    step_s = (the run's wall time - sum of the units' wall times) / steps

Both are clamped at zero. ``step_s`` carries the step's summary and plots and its share
of the run's table and report.
"""

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from interp.experiments.estimates import Rates
from interp.experiments.loading import LoadedSpec

#: The probe's size: steps, prompts per step, denoising steps.
PROBE_STEPS, PROBE_PROMPTS, PROBE_DENOISING_STEPS = 2, 2, 2
#: The probe's metric when the spec lists none (or its own cannot score the probe).
PROBE_METRIC = "latent_distance"


def probe_spec(loaded: LoadedSpec) -> dict[str, Any]:
    """The small experiment that measures the run's own costs on the spec's model."""
    spec = loaded.spec
    g = spec.generation
    generation: dict[str, Any] = {
        "num_steps": min(PROBE_DENOISING_STEPS, g.num_steps),
        "guidance_scale": g.guidance_scale,
        "seeds": [g.seeds[0]],
    }
    if g.duration_s is not None:
        generation["duration_s"] = g.duration_s
    if g.negative_prompt is not None:
        generation["negative_prompt"] = g.negative_prompt
    from interp.experiments.model import source_of

    metrics = [m.model_dump(mode="json", exclude_defaults=True) for m in spec.metrics] or [PROBE_METRIC]
    model = spec.model.model_dump(mode="json", exclude_none=True)
    model["name"] = source_of(spec.model.name, loaded.base_dir)  # the probe runs from anywhere
    return {
        "name": "calibration-probe",
        "model": model,
        "generation": generation,
        "prompts": [f"a calibration piece number {i}" for i in range(PROBE_PROMPTS)],
        "metrics": metrics,
        "steps": [{"name": f"probe{i}", "method": "generate"} for i in range(PROBE_STEPS)],
    }


def calibrate_framework(loaded: LoadedSpec, rates: Rates) -> tuple[Rates, str]:
    """``rates`` with ``unit_s`` and ``step_s`` measured by a probe run on the spec's
    model (which must already be loadable), and a line of the probe's raw numbers. A
    probe that the spec's metrics cannot score (one that needs a concept, say) runs again
    with the probe's own metric."""
    from interp.errors import TadaError

    data = probe_spec(loaded)
    try:
        wall, unit_walls, modelled = _probe(data, rates)
    except TadaError:
        data["metrics"] = [PROBE_METRIC]
        wall, unit_walls, modelled = _probe(data, rates)
    units = len(unit_walls) or 1
    unit_s = max(0.0, (sum(unit_walls) - modelled) / units)
    step_s = max(0.0, (wall - sum(unit_walls)) / PROBE_STEPS)
    raw = (
        f"probe run ({PROBE_STEPS} generate steps x {PROBE_PROMPTS} prompts, metrics "
        f"{', '.join(str(m if isinstance(m, str) else m['name']) for m in data['metrics'])}): {wall:.3g} s, "
        f"units {sum(unit_walls):.3g} s of which generating {modelled:.3g} s (modelled): "
        f"{unit_s:.3g} s per unit, {step_s:.3g} s per step"
    )
    return replace(rates, unit_s=unit_s, step_s=step_s), raw


def _probe(data: dict[str, Any], rates: Rates) -> tuple[float, list[float], float]:
    """Run the probe: its wall time, every unit's wall time, and their modelled generation time."""
    from interp.experiments import load_spec, run
    from interp.experiments.planning import plan

    modelled = rates.seconds(plan(load_spec(data)).total) or 0.0
    with tempfile.TemporaryDirectory(prefix="tada-calibration-") as tmp:
        out = Path(tmp) / "probe"
        start = time.perf_counter()
        run(data, out=out, progress=False)
        wall = time.perf_counter() - start
        ends = [json.loads(line) for line in (out / "run.log").read_text(encoding="utf-8").splitlines()]
    return wall, [float(e["wall_s"]) for e in ends if e.get("event") == "end"], modelled
