"""The cost plan of a spec: what each step will run, counted before anything runs.

:func:`plan` validates the spec (every problem at once, like ``tada validate``), builds
each step's context the way a run does (:func:`interp.experiments.engine.step_context`),
asks the step for its units (:meth:`~interp.experiments.methods.MethodSpec.plan`, the
same units a run executes) and each unit for its cost
(:meth:`~interp.experiments.methods.MethodSpec.unit_cost`, counted by the ``*_cost``
twins of the library functions the unit calls). No weights are loaded: the model is
built without them (on the meta device where the family allows).

``batch_size: auto`` is counted as the batch a run would resolve it to: the ceiling of
the spec's device type (:func:`interp.batching.auto_ceiling`), or with ``calibrate`` the
probe's choice on the loaded model (:func:`interp.batching.choose_auto`).

Time and memory come from :mod:`interp.experiments.estimates`.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from interp.batching import auto_ceiling, choose_auto, planning_auto, probe_request
from interp.cost import Cost, total
from interp.errors import TadaError
from interp.experiments.loading import LoadedSpec, load_spec
from interp.experiments.methods import MethodSpec
from interp.experiments.resident import Resident, resident, step_scorers
from interp.experiments.shared_work import Reuse, chunks


@dataclass
class StepPlan:
    """One step's planned work.

    Attributes:
        name: The step's name.
        method: Its method.
        units: Its units (as a run plans them).
        cost: The generations its units run (shared work that an earlier step or unit
            computes is not counted: see ``reused``).
        note: What the count cannot know in advance (empty: exact).
        batch_size: The number ``batch_size: auto`` is counted as in this step.
        reused: The generations its units take from the run's work store instead
            (:mod:`interp.experiments.shared_work`).
        reused_from: The steps that compute them.
    """

    name: str
    method: str
    units: int
    cost: Cost
    note: str = ""
    batch_size: int = 8
    reused: Cost = field(default_factory=Cost)
    reused_from: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """A spec's planned work, step by step.

    Attributes:
        name: The experiment's name.
        model: Its model (name, device, dtype).
        steps: One :class:`StepPlan` per step, in order.
        resident: The parameters the run holds: every component of the pipeline at the
            spec's dtype, and the scorers of the steps' metrics.
    """

    name: str
    model: dict[str, Any]
    resident: Resident
    steps: list[StepPlan] = field(default_factory=list)

    @property
    def total(self) -> Cost:
        """Every step's calls together."""
        return total(s.cost for s in self.steps)


def plan(spec: "str | Path | dict[str, Any] | LoadedSpec", calibrate: bool = False) -> Plan:
    """Plan a spec: per step, its units and the generations they run.

    Args:
        spec: A YAML path, a mapping, or a spec loaded with
            :func:`~interp.experiments.load_spec`.
        calibrate: Count ``batch_size: auto`` as the probe on the loaded model chooses
            (loads the model with its weights), not as the device's ceiling.

    Raises:
        SpecError: If the spec is invalid (every problem at once).
        TadaError: If a step's method cannot count its work.
    """
    from interp.experiments.engine import step_context
    from interp.experiments.model import source_of

    loaded = spec if isinstance(spec, LoadedSpec) else load_spec(spec)
    m = loaded.spec.model
    structure = model_structure(loaded)
    steps: list[StepPlan] = []
    scorers: dict[str, int] = {}
    reuse = Reuse()
    for step in spec_steps(loaded):
        ctx = step_context(loaded, step, Path("."), {})
        scorers.update(step_scorers(step, ctx, structure))
        units = step.plan(ctx)
        auto = auto_ceiling(m.device) if not calibrate else _calibrated_auto(ctx)
        try:
            with planning_auto(auto) as planned:
                cost = total(step.unit_cost(unit, ctx) for unit in units).merged()
                reused, sources = _reused(step, units, ctx, cost, reuse)
        except NotImplementedError as error:
            raise TadaError(f"Step {step.name!r}: {error}") from None
        if planned.used and units:  # auto is resolved by one probe generation per step
            cost = cost + Cost.of(probe_request(ctx.request(["-"], [0])), label="probe")
        cost = cost.merged().minus(reused)
        steps.append(
            StepPlan(step.name, step.method, len(units), cost, step.cost_note(), auto, reused, sources)
        )
    held = resident(source_of(m.name, loaded.base_dir), structure, m.dtype, scorers)
    model = {"name": m.name, "device": m.device, "dtype": m.dtype or "float32"}
    return Plan(loaded.spec.name, model, held, steps)


def _reused(step: MethodSpec, units: list[Any], ctx: Any, cost: Cost, reuse: Reuse) -> tuple[Cost, list[str]]:
    """The calls of ``cost`` that ``step``'s units take from the run's work store (chunks
    an earlier step or unit computes), and the steps that compute them."""
    saved, sources = Cost(), set()
    for unit in units:
        for sweep in step.planned_sweeps(unit, ctx):
            found, by = reuse.take(step.name, sweep, chunks(ctx.structure, sweep), cost)
            saved, sources = saved + found, sources | by
    return saved.merged(), sorted(sources, key=[s.name for s in ctx.spec.steps].index)


def unloadable(model: Any, error: BaseException) -> TadaError:
    """The one-line error of ``--calibrate`` when the spec's model cannot be loaded."""
    return TadaError(
        f"--calibrate loads the spec's model {model.name!r} on {model.device}, and it cannot be loaded: "
        f"{str(error).rstrip('.')}. Without --calibrate, `tada plan` counts the work without weights."
    )


def _calibrated_auto(ctx: Any) -> int:
    """``auto``'s batch for a step's generation settings, from the probe a run makes."""
    from interp.registry import check_device

    m = ctx.spec.model
    check_device(m.device)
    try:
        adapter = ctx.adapter
    except (TadaError, OSError) as error:
        raise unloadable(m, error) from None
    return choose_auto(adapter, ctx.request(["-"], [0]), fixed_rows=1).size


def spec_steps(loaded: LoadedSpec) -> list[MethodSpec]:
    """The spec's steps, typed as the methods they are."""
    return cast(list[MethodSpec], list(loaded.spec.steps))


def model_structure(loaded: LoadedSpec) -> Any:
    """The spec's model without weights."""
    from interp.experiments import model as models

    return models.load(loaded.spec.model.name, weights=False, base_dir=loaded.base_dir)
