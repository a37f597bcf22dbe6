"""The `when` spec step: its fields are checked up front, and a run writes the map."""

import math
from pathlib import Path
from typing import Any

import pytest

from interp.experiments import SpecError, load_spec, run

from .conftest import spec, write

PAIRS = {"source": "tada", "concepts": ["happy"], "per_concept": 1}


def when(**changes: Any) -> dict[str, Any]:
    return {"name": "when", "method": "when", "pairs": PAIRS, "metric": "latent_distance", **changes}


def problems(tmp_path: Path, step: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path / "s.yaml", spec(steps=[step])))
    message = str(caught.value)
    assert "Traceback" not in message and "\n\n" not in message
    found: dict[str, str] = {}
    for issue in caught.value.issues:
        found[issue.path] = f"{found[issue.path]} | {issue.message}" if issue.path in found else issue.message
    return found


def test_bad_windows_are_refused_at_once_with_the_fix(tmp_path: Path) -> None:
    found = problems(tmp_path, when(windows=["0:2", "2:9", "3", "3:1"], every=7, layers=[5]))
    assert set(found) == {
        "steps[0].windows[1]",
        "steps[0].windows[2]",
        "steps[0].windows[3]",
        "steps[0].every",
        "steps[0].layers",
    }
    assert "the generation has 4 steps" in found["steps[0].windows[1]"]
    assert "stop <= 4" in found["steps[0].windows[1]"]
    assert "write 'start:stop'" in found["steps[0].windows[2]"]
    assert "0 <= start <= stop" in found["steps[0].windows[3]"]
    assert "exceed the 4 denoising steps" in found["steps[0].every"]
    assert "cross layers 0..1" in found["steps[0].layers"]


def test_a_window_longer_than_the_schedule_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, when(window=6))
    assert "longer than the 4 denoising steps" in found["steps[0].window"]


@pytest.mark.parametrize(
    ("step", "where", "fragment"),
    [
        (when(sites=[]), "steps[0].sites", "empty list of sites"),
        (when(sites={"happy": []}), "steps[0].sites", "no concept has any site"),
        (when(layer_text=False, prompt=False), "steps[0].sites", "nothing to time"),
        (when(windows=[]), "steps[0].windows", "empty list of windows"),
        (when(sites=["cross.1.head.9"]), "steps[0].sites[0]", "Head 9 out of range"),
        (when(fraction=1.5), "steps[0].fraction", "less than or equal to 1"),
        (when(window=0), "steps[0].window", "greater than or equal to 1"),
        (when(patch_steps="0:2"), "steps[0].patch_steps", "unknown key"),
    ],
)
def test_bad_fields_get_one_line_each(
    tmp_path: Path, step: dict[str, Any], where: str, fragment: str
) -> None:
    found = problems(tmp_path, step)
    assert where in found, found
    assert fragment in found[where]


def test_a_when_run_writes_the_map_the_plot_and_the_summary(tmp_path: Path, quiet_warnings: None) -> None:
    data = spec(
        generation={"num_steps": 4, "guidance_scale": 3.0, "duration_s": 4.0, "seeds": [0]},
        steps=[when(sites=["cross.0.head.1", "cross.1.head.3"], layers=[1], window=2, every=1)],
    )
    out = tmp_path / "run"
    results = run(write(tmp_path / "s.yaml", data), out=out, progress=False)
    assert (out / "plots" / "when-when-happy.png").is_file()
    assert any(p.name == "when-when-happy.png" for p in results.plots)
    windows = {r["steps"] for r in results.rows if r["metric"] == "window_effect"}
    # fixed 0:2, 2:4; up to 0..4; from 0..3: ten distinct windows
    assert windows == {"0:2", "2:4", "0:0", "0:1", "0:3", "0:4", "1:4", "3:4"}
    sites = {r["site"] for r in results.rows if r["metric"] == "window_effect"}
    assert sites == {"cross.0.head.1", "cross.1.head.3", "heads", "cross.1.text", "prompt"}
    empty = [r for r in results.rows if r["metric"] == "window_effect" and r["steps"] == "0:0"]
    assert empty and all(r["value"] == 0.0 for r in empty)
    summary = results.steps["when"]["summary"]
    decided = summary["decided"]["happy"]
    assert decided["site"] == "heads"
    step = decided["fixed_by"]
    assert step is None or 1 <= step <= 4
    assert decided["line"].startswith("happy: ")
    full = [r for r in results.rows if r["metric"] == "window_effect" and r["steps"] == "0:4"]
    prompt = next(r for r in full if r["site"] == "prompt")
    assert math.isclose(float(prompt["value"]), 1.0, abs_tol=1e-4)  # the whole prompt restores the clean run
