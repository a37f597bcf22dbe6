"""batch_size: auto in runs: capped at the device's ceiling, resolved once per step by the
driver, recorded in the run directory and kept on resume (interp.batching, the engine)."""

import json
from pathlib import Path
from typing import Any

import pytest

from interp.batching import AUTO_CEILINGS, forget_halvings
from interp.experiments import run
from interp.experiments.runlog import read_log
from interp.memory import free_memory_limit

from .conftest import spec

#: 10 sites: 8 heads and 2 text inputs, so a batch of 8 cuts them 8 + 2 and a batch of 4
#: cuts them 4 + 4 + 2.
SITES = [f"cross.{layer}.head.{head}" for layer in (0, 1) for head in range(4)] + [
    "cross.0.text",
    "cross.1.text",
]


def _spec(batch_size: Any) -> dict[str, Any]:
    step = {
        "name": "heads",
        "method": "patch",
        "metric": "latent_distance",
        "sites": SITES,
        "pairs": {"source": "tada", "concepts": ["violin", "sad"], "per_concept": 1},
        "batch_size": batch_size,
    }
    return spec(name="auto", generation={"num_steps": 2, "guidance_scale": 3.0, "duration_s": 4.0, "seeds": [0]},
                steps=[step])  # fmt: skip


def _notes(out: Path) -> list[str]:
    return [e["message"] for e in read_log(out) if e["event"] == "note"]


def _state(out: Path) -> dict[str, Any]:
    return json.loads((out / "units" / "steps" / "heads.json").read_text())


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("auto")
    forget_halvings()
    run(_spec("auto"), out=out, progress=False)
    return out


def test_auto_gives_the_same_results_csv_as_the_ceiling_given_as_a_number(
    auto_run: Path, tmp_path: Path, quiet_warnings: None
) -> None:
    assert AUTO_CEILINGS["cpu"] == 8
    eight = run(_spec(8), out=tmp_path / "eight", progress=False)
    assert (auto_run / "results.csv").read_bytes() == (eight.path / "results.csv").read_bytes()
    # the step resolved once, to the ceiling, and said so in run.log and its saved state
    assert _state(auto_run)["batch_size"] == 8 and _state(auto_run)["ceiling"] == 8
    assert _state(auto_run)["fits"] >= 8
    resolved = [n for n in _notes(auto_run) if n.startswith("batch_size: auto is 8 (the cpu ceiling")]
    assert len(resolved) == 1, _notes(auto_run)
    assert not (eight.path / "units" / "steps").exists()  # a pinned batch records nothing


def test_a_resumed_run_keeps_the_recorded_batch_when_less_memory_is_free(
    auto_run: Path, tmp_path: Path, quiet_warnings: None
) -> None:
    import shutil

    # the same spec on a machine with little free memory: auto takes a smaller batch and warns
    with (
        free_memory_limit(1),
        pytest.warns(UserWarning, match=r"batch_size: auto is 1, below the cpu ceiling"),
    ):
        small = run(_spec("auto"), out=tmp_path / "small", progress=False)
    assert _state(small.path)["batch_size"] == 1
    assert any("pin batch_size: 1 for bit-exact" in n for n in _notes(small.path))

    # the auto run interrupted after its first unit, resumed with as little memory free
    resumed = tmp_path / "resumed"
    shutil.copytree(auto_run, resumed)
    units = sorted((resumed / "units").glob("heads.*.json"))
    assert len(units) == 2
    units[1].unlink()
    (resumed / "results.csv").unlink()
    with free_memory_limit(1):
        run(_spec("auto"), out=resumed, progress=False)
    assert _state(resumed)["batch_size"] == 8
    assert (resumed / "results.csv").read_bytes() == (auto_run / "results.csv").read_bytes()
    assert "batch_size: auto is 8, as recorded when this step started." in _notes(resumed)


def test_a_record_of_other_settings_is_not_reused(
    auto_run: Path, tmp_path: Path, quiet_warnings: None
) -> None:
    import shutil

    other = tmp_path / "other"
    shutil.copytree(auto_run, other)
    changed = _spec("auto")
    changed["generation"]["num_steps"] = 3  # every unit reruns: the step is resolved afresh
    with free_memory_limit(1), pytest.warns(UserWarning, match="below the cpu ceiling"):
        run(changed, out=other, progress=False)
    assert _state(other)["batch_size"] == 1


def test_a_rerun_without_the_step_removes_its_record(
    auto_run: Path, tmp_path: Path, quiet_warnings: None
) -> None:
    import shutil

    changed = tmp_path / "changed"
    shutil.copytree(auto_run, changed)
    assert _state(changed)["batch_size"] == 8
    (changed / "summary.json").unlink()  # as after an interrupted run: the old steps are unknown
    generate_only = _spec("auto")
    generate_only["steps"] = [{"name": "listen", "method": "generate"}]
    run(generate_only, out=changed, progress=False)
    assert not (changed / "units" / "steps").exists()  # heads.json went with its step
    units = sorted(p.name for p in (changed / "units").glob("*.json"))
    assert units and all(u.startswith("listen.") for u in units), units


def test_a_plan_counts_auto_as_the_ceiling_plus_the_steps_probe() -> None:
    from interp.experiments.planning import plan

    auto, eight = plan(_spec("auto")).steps[0], plan(_spec(8)).steps[0]
    assert auto.batch_size == 8
    probes = [c for c in auto.cost.calls if c.label == "probe"]
    # one generation of one sample for one denoising step, both CFG rows, not decoded
    assert [(c.count, c.samples, c.rows, c.steps, c.decode) for c in probes] == [(1, 1, 2, 1, False)]
    rest = sorted((c for c in auto.cost.calls if c.label != "probe"), key=repr)
    assert rest == sorted(eight.cost.calls, key=repr)  # the same chunks as batch_size: 8
    assert 9 * 2 in auto.cost.shapes()  # 8 variants + the control row, CFG


def test_a_calibrated_plan_takes_the_probes_batch(quiet_warnings: None) -> None:
    from interp.experiments.planning import plan

    with free_memory_limit(1):
        calibrated = plan(_spec("auto"), calibrate=True).steps[0]
    assert calibrated.batch_size == 1
    assert max(calibrated.cost.shapes()) == 2 * 2  # one variant + the control row, CFG
