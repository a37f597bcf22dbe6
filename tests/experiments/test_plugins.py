"""Methods and metrics registered from outside validate, chain and run like built-ins."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest

from interp.errors import TadaError
from interp.experiments import (
    BranchName,
    ExperimentSpec,
    MethodSpec,
    Refable,
    Row,
    SiteStr,
    SpecError,
    StepContext,
    StepWindow,
    Unit,
    load_spec,
    method_names,
    register_method,
    register_metric,
    run,
    unregister_method,
)
from interp.metrics import _METRICS

from .conftest import spec


class Pick(MethodSpec):
    """Chooses sites (a stand-in for a localization method)."""

    exports: ClassVar[tuple[str, ...]] = ("sites",)
    method: Literal["test-pick"]
    sites: list[SiteStr]
    unchecked: list[str] = []

    def plan(self, ctx: StepContext) -> list[Unit]:
        return [Unit("only")]

    def run_unit(self, unit: Unit, ctx: StepContext) -> list[Row]:
        return [Row("n_sites", float(len(self.sites)))]

    def finalize(self, ctx: StepContext) -> dict[str, Any]:
        return {"sites": [*self.sites, *self.unchecked]}


class Probe(MethodSpec):
    """Uses sites from an earlier step (a stand-in for steering)."""

    method: Literal["test-probe"]
    sites: Refable(list[SiteStr])  # type: ignore[valid-type]
    steps: StepWindow = "all"
    branch: BranchName = "both"

    def plan(self, ctx: StepContext) -> list[Unit]:
        return [Unit(site) for site in self.sites]

    def run_unit(self, unit: Unit, ctx: StepContext) -> list[Row]:
        return [Row("layer", float(unit.id.split(".")[1]), site=unit.id, steps=str(self.steps),
                    branch=self.branch, labels={"alpha": 2.0})]  # fmt: skip


class Fail(MethodSpec):
    """Fails cleanly in its second unit."""

    method: Literal["test-fail"]

    def plan(self, ctx: StepContext) -> list[Unit]:
        return [Unit("u0"), Unit("u1")]

    def run_unit(self, unit: Unit, ctx: StepContext) -> list[Row]:
        if unit.id == "u1":
            raise TadaError("the concept scorer is missing")
        return [Row("ok", 1.0)]


@pytest.fixture
def plugins() -> Iterator[None]:
    for cls in (Pick, Probe, Fail):
        register_method(cls)
    yield
    for name in ("test-pick", "test-probe", "test-fail"):
        unregister_method(name)


def chain(probe: dict[str, Any], pick_sites: list[str] | None = None) -> dict[str, Any]:
    return spec(steps=[
        {"name": "pick", "method": "test-pick", "sites": pick_sites or ["cross.1.head.2", "cross.0.out"]},
        {"name": "probe", "method": "test-probe", **probe},
    ])  # fmt: skip


def test_registered_later_validates_like_builtin(plugins: None) -> None:
    assert {"generate", "test-pick", "test-probe"} <= set(method_names())
    loaded = load_spec(chain({"sites": {"from": "pick"}, "steps": "0:2", "branch": "cond"}))
    assert isinstance(loaded.spec.steps[1], Probe)
    built = ExperimentSpec.model_validate(chain({"sites": ["self.0.head.1"]}))
    assert built.steps[1].sites == ["self.0.head.1"]


@pytest.mark.parametrize(
    ("probe", "fragments"),
    [
        ({"sites": {"from": "pikc"}}, ["steps[1].sites.from", "no such step", "Did you mean 'pick'"]),
        ({"sites": {"from": "probe"}}, ["steps[1].sites.from", "cannot use its own results"]),
        ({"sites": {"from": "pick", "key": "heads"}}, ["steps[1].sites.key", "exports ['sites']"]),
        ({"sites": {"from": "pick", "kye": "sites"}}, ["steps[1].sites.kye", "Did you mean 'key'"]),
        ({"sites": ["cross.3.head.0"]}, ["steps[1].sites[0]", "No cross-attention layer 3"]),
        ({"sites": ["cross.0.out"], "branch": "uncon"}, ["steps[1].branch", "Did you mean 'uncond'"]),
        ({"sites": ["cross.0.out"], "steps": 4}, ["steps[1].steps", "beyond the schedule"]),
        ({"site": ["cross.0.out"]}, ["steps[1].site", "Did you mean 'sites'"]),
    ],
)
def test_plugin_fields_get_the_generic_checks(
    plugins: None, probe: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(chain(probe))
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message


def test_references_resolve_at_run_time(plugins: None, tmp_path: Path) -> None:
    results = run(chain({"sites": {"from": "pick"}, "branch": "cond"}), out=tmp_path / "run", progress=False)
    probe = [r for r in results.rows if r["step"] == "probe"]
    assert [r["site"] for r in probe] == ["cross.1.head.2", "cross.0.out"]
    assert all(r["alpha"] == "2.0" and r["branch"] == "cond" for r in probe)
    header = (tmp_path / "run" / "results.csv").read_text().splitlines()[0]
    assert header.endswith(",metric,value,alpha")


def test_resolved_values_are_checked_against_the_model(plugins: None, tmp_path: Path) -> None:
    data = chain({"sites": {"from": "pick"}})
    data["steps"][0]["unchecked"] = ["cross.5.head.0"]
    with pytest.raises(SpecError) as caught:
        run(data, out=tmp_path / "run", progress=False)
    assert "steps[1].sites[2] = 'cross.5.head.0': No cross-attention layer 5" in str(caught.value)
    assert not list((tmp_path / "run" / "units").glob("probe.*"))


def test_registry_refuses_duplicates_and_bad_classes(plugins: None) -> None:
    class Again(MethodSpec):
        method: Literal["test-pick"]

    with pytest.raises(TadaError, match=r"already registered .*Registered: \[.*'generate'"):
        register_method(Again)

    class NoLiteral(MethodSpec):
        pass

    with pytest.raises(TadaError, match="Literal"):
        register_method(NoLiteral)
    with pytest.raises(TadaError, match="MethodSpec subclass"):
        register_method(dict)  # type: ignore[arg-type]
    assert register_method(Pick) is Pick  # the same class again is fine


def test_metric_registry(tmp_path: Path) -> None:
    @register_metric("test-peak", description="Peak amplitude.")
    def peak(output: Any, context: Any) -> list[float]:
        return output.audio.flatten(1).abs().amax(1).tolist()

    try:
        with pytest.raises(TadaError, match="already registered"):
            register_metric("test-peak", description="again")(peak)
        results = run(spec(metrics=["test-peak", {"name": "rms", "label": "loudness"}],
                           generation={"num_steps": 2, "guidance_scale": 3.0}), out=tmp_path / "r", progress=False)  # fmt: skip
        assert {r["metric"] for r in results.rows} == {"test-peak", "loudness"}
    finally:
        _METRICS.pop("test-peak", None)


def test_a_failing_unit_is_one_message_naming_it(plugins: None, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from interp.cli import main

    path = tmp_path / "fail.yaml"
    path.write_text(__import__("yaml").safe_dump(spec(steps=[{"name": "f", "method": "test-fail"}])))
    code = main(["run", str(path), "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "the concept scorer is missing" in err and "unit 'u1' of step 'f'" in err
    assert [p.name for p in (tmp_path / "run" / "units").glob("*.json")] == ["f.u0.json"]


def test_a_spec_without_weights_does_not_run(tmp_path: Path) -> None:
    with pytest.raises(TadaError, match="weights: false"):
        run(spec(model={"name": "tiny-stable-audio", "weights": False}), out=tmp_path, progress=False)


def test_a_reference_to_a_later_step_is_refused(plugins: None) -> None:
    data = spec(steps=[
        {"name": "probe", "method": "test-probe", "sites": {"from": "pick"}},
        {"name": "pick", "method": "test-pick", "sites": ["cross.0.out"]},
    ])  # fmt: skip
    with pytest.raises(SpecError, match=r"steps\[0\]\.sites\.from = 'pick': it runs later"):
        load_spec(data)
