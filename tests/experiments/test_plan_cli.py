"""``tada plan`` on the command line: the table, bad input (one clear error, exit 2) and
``--pilot`` power against the pilot run's own ``pairs_needed`` rows."""

import csv
import math
import re
from pathlib import Path

import pytest
import yaml

from interp.cli import main
from interp.experiments import run

ROOT = Path(__file__).resolve().parents[2]


def tada(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["plan", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def shipped(name: str) -> dict:
    """A spec of experiments/ (``paper/ace_step.yaml``), to change before planning it."""
    return yaml.safe_load((ROOT / "experiments" / name).read_text())


def plan_of(capsys, tmp_path: Path, spec: dict, *argv: str) -> tuple[int, str, str]:
    """``tada plan`` of ``spec``, written to a file, with ``argv``."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return tada(capsys, str(path), *argv)


def test_plan_prints_counts_and_totals(capsys):
    code, out, err = tada(capsys, str(ROOT / "experiments" / "tiny.yaml"))
    assert code == 0, err
    total = next(line for line in out.splitlines() if line.startswith("total"))
    # 3 generations of 2 seeds per prompt (the edited step runs its reference), 4 prompts,
    # 4 steps, CFG doubles the 2 samples to 4 rows: 48 forwards, 192 row-steps, 24 decodes
    assert total.split()[1:7] == ["8", "12", "24", "48", "192", "24"]
    assert re.search(r"reference\s+4 x 2 \[4\] x 4 = 64 row-steps, decoded", out)


def test_missing_spec_is_one_error(capsys):
    code, out, err = tada(capsys, "no/such/spec.yaml")
    assert code == 2 and out == ""
    assert "does not exist" in err and "Traceback" not in err


def test_invalid_spec_reports_every_problem(tmp_path, capsys):
    spec = shipped("tiny.yaml")
    spec["generation"]["num_steps"] = 0
    spec["steps"][0]["bogus"] = 1
    code, out, err = plan_of(capsys, tmp_path, spec)
    assert code == 2 and out == ""
    assert "num_steps" in err and "bogus" in err and "Traceback" not in err


def test_calibrate_names_a_model_it_cannot_load(tmp_path, capsys):
    spec = shipped("paper/stable_audio_open.yaml")
    spec["model"] = {"name": "stable-audio-open-1.0", "device": "cpu"}  # no weights here
    code, out, err = plan_of(capsys, tmp_path, spec, "--calibrate")
    assert code == 2
    assert "--calibrate loads the spec's model 'stable-audio-open-1.0'" in err
    assert "Without --calibrate, `tada plan` counts the work without weights" in err
    assert "Traceback" not in err


def test_a_directory_is_one_error_naming_its_specs(capsys):
    code, out, err = tada(capsys, str(ROOT / "experiments"))
    assert code == 2 and out == ""
    assert "is a directory, not a spec file" in err and "default.yaml" in err
    assert "does not exist" not in err and "Traceback" not in err


def test_model_without_weights_or_rates_is_counted_and_says_why_no_time(tmp_path, capsys):
    spec = shipped("paper/stable_audio_open.yaml")
    spec["model"] = {"name": "stable-audio-open-1.0", "device": "cpu", "dtype": "float16"}
    code, out, err = plan_of(capsys, tmp_path, spec)
    assert code == 0, err
    # counted from the shipped config without weights, as the paper plan in docs/plan.md
    assert "1,323.1M parameters (2.6 GB, the whole pipeline)" in out
    assert "none in the table for stable-audio-open-1.0 on cpu in float16 (it has cpu float32)" in out
    spec["model"]["dtype"] = "float32"
    code, out, err = plan_of(capsys, tmp_path, spec)
    assert code == 0, err
    assert "rates: measured on a 2-core CPU" in out and "unknown" not in out.split("counted")[0]


def test_calibrate_on_a_device_this_machine_lacks(tmp_path, capsys):
    spec = shipped("tiny.yaml")
    spec["model"]["device"] = "cuda:3"
    code, out, err = plan_of(capsys, tmp_path, spec)  # planning needs no device
    assert code == 0 and "on cuda:3" in out
    code, out, err = plan_of(capsys, tmp_path, spec, "--calibrate")
    assert code == 2 and out == "" and "Traceback" not in err
    assert "asks for a CUDA GPU" in err


def test_when_step_of_too_many_windows_is_one_error(tmp_path, capsys):
    spec = shipped("when-which.yaml")
    spec["generation"]["num_steps"] = 10000
    spec["steps"][1].update(window=1, every=1)  # 29,998 distinct windows
    code, out, err = plan_of(capsys, tmp_path, spec)
    assert code == 2 and out == "" and "Traceback" not in err
    assert "29998 windows over 10000 steps is more than the 1000" in err
    # 10,000 listed windows that repeat 25 distinct ones are fine: counted, not refused
    spec["generation"]["num_steps"] = 25
    del spec["steps"][1]["window"], spec["steps"][1]["every"]
    spec["steps"][1]["windows"] = [f"{i % 25}:{i % 25 + 1}" for i in range(10000)]
    spec["steps"] = spec["steps"][:2]
    code, out, err = plan_of(capsys, tmp_path, spec)
    assert code == 0, err
    assert re.search(r"^when\s+when\s+2\s", out, re.M)


def test_pilot_that_is_not_a_run(tmp_path, capsys):
    code, out, err = tada(capsys, str(ROOT / "experiments" / "tiny.yaml"), "--pilot", str(tmp_path))
    assert code == 2 and out == ""
    assert "holds no finished run" in err


def pilot_spec(per_concept: int, power_effect: float) -> dict:
    return {
        "name": "pilot",
        "model": {"name": "synthmusic-dit"},
        "generation": {"num_steps": 3, "guidance_scale": 4.0, "seeds": [0]},
        "steps": [
            {
                "name": "locate", "method": "locate", "layers": [0],
                "pairs": {"source": "synthmusic", "concepts": ["tempo", "drums"], "per_concept": per_concept},
                "max_heads": 2, "layer_impact": False, "audio": False, "batch_size": 8,
                "power_effect": power_effect,
            }
        ],
    }  # fmt: skip


@pytest.mark.slow
def test_pilot_sizes_pairs_like_the_run_and_resizes_the_plan(tmp_path, capsys):
    pilot = tmp_path / "pilot"
    run(pilot_spec(3, 0.5), out=pilot, progress=False)
    with (pilot / "results.csv").open() as handle:
        needed = {
            r["concept"]: float(r["value"]) for r in csv.DictReader(handle) if r["metric"] == "pairs_needed"
        }
    assert set(needed) == {"tempo", "drums"}
    spec = tmp_path / "spec.yaml"  # same heads, alpha and effect as the pilot: same answer
    spec.write_text(yaml.safe_dump(pilot_spec(3, 0.5)))
    code, out, err = tada(capsys, str(spec), "--pilot", str(pilot))
    assert code == 0, err
    for concept, n in needed.items():
        if math.isfinite(n):
            assert f"    {concept}: {int(n)} pairs" in out
    finite = [int(n) for n in needed.values() if math.isfinite(n)]
    if finite:
        assert f"locate: 3 -> {max(finite)} pairs per concept" in out


def test_steps_whose_sites_come_from_an_earlier_step_say_what_is_not_counted(tmp_path, capsys):
    spec = shipped("when-which.yaml")
    spec["steps"][2]["heads"] = {"from": "locate", "key": "subsets"}
    code, out, err = plan_of(capsys, tmp_path, spec)
    assert code == 0, err
    assert "when:  (lower bound: the sites taken from an earlier step" in out
    assert "which:  (not counted: the heads come from an earlier step's result" in out
    assert re.search(r"^which\s+which-word\s+0\s+0\s", out, re.M)


def test_calibrate_measures_the_model_and_the_run_and_says_so(capsys):
    code, out, err = tada(capsys, str(ROOT / "experiments" / "tiny.yaml"), "--calibrate")
    assert code == 0, err
    assert "calibrating: a probe run" in err
    assert re.search(r"^rates: calibrated now on cpu", out, re.M)
    rates = re.search(r"unit_s ([\d.e-]+) s, step_s ([\d.e-]+) s", out)
    assert rates is not None
    total = next(line for line in out.splitlines() if line.startswith("estimated wall time"))
    assert f"plus {float(rates[1]):.3g} s per unit and {float(rates[2]):.3g} s per step" in total
    assert "measured by the calibration's probe run" in total
    assert re.search(r"probe run \(2 generate steps x 2 prompts, metrics rms, latent_distance\)", out)
