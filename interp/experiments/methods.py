"""Methods: the plug-in protocol of experiment steps, and their registry.

A method is a pydantic settings model (subclass of :class:`MethodSpec`) with a
``method: Literal["name"]`` discriminator and three hooks:

* ``plan(ctx) -> list[Unit]``: the step's work as units with stable ids (for resume);
* ``run_unit(unit, ctx) -> list[Row]``: do one unit, return its measurements; save
  audio / arrays through ``ctx.save_audio`` / ``ctx.save_array``;
* ``unit_cost(unit, ctx) -> Cost``: the generations one unit will run, counted by the
  ``*_cost`` twins of the library functions it calls (``tada plan``; no model runs);
* ``finalize(ctx) -> dict``: summarise all units (``ctx.results``), draw plots with
  ``ctx.save_plot``; the dict is the step's summary, which later steps can refer to
  with ``{from: <step name>, key: <summary key>}``.

Register with :func:`register_method` (a class decorator). The union of step types in
:class:`~interp.experiments.spec.ExperimentSpec` is rebuilt from the registry, so a
method registered later validates exactly like a built-in one. Installed packages can
also declare methods under the entry-point group ``tada_interp.methods`` (the entry
point names a method class or a module that registers on import).
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar, get_args, get_origin

from pydantic import Field, StringConstraints, field_validator, model_validator

from interp.errors import TadaError, did_you_mean
from interp.experiments.fields import (
    MAX_NAME_LENGTH,
    MAX_SEEDS,
    Duration,
    Guidance,
    Seed,
    StepCount,
    StrictModel,
    distinct_seeds,
    renamed_generation_keys,
)
from interp.experiments.metric_specs import MetricSpec
from interp.experiments.units import Row, Unit
from interp.plugins import load_entry_points

if TYPE_CHECKING:
    from interp.cost import Cost
    from interp.experiments.context import CheckContext, StepContext
    from interp.experiments.shared_work import PlannedSweep

ENTRY_POINT_GROUP = "tada_interp.methods"

StepName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$", max_length=MAX_NAME_LENGTH)]


class GenerationOverride(StrictModel):
    """Per-step changes to the experiment's generation settings (all optional)."""

    num_steps: StepCount | None = Field(default=None, description="Number of denoising steps.")
    guidance_scale: Guidance | None = Field(default=None, description="CFG scale; <= 1 disables guidance.")
    duration_s: Duration | None = Field(default=None, description="Audio length in seconds.")
    seeds: list[Seed] | None = Field(
        default=None, min_length=1, max_length=MAX_SEEDS, description="Seeds per prompt."
    )
    negative_prompt: str | None = Field(default=None, description="Prompt of the unconditional branch.")

    _distinct = field_validator("seeds")(distinct_seeds)
    _renamed = model_validator(mode="before")(renamed_generation_keys)


class MethodSpec(StrictModel):
    """Base class of every method's settings: the fields all steps share.

    Subclasses add ``method: Literal["<name>"]`` and their own settings, and implement
    :meth:`plan`, :meth:`run_unit` and :meth:`finalize`.
    """

    #: Summary keys later steps may reference; empty means "not declared, unchecked".
    exports: ClassVar[tuple[str, ...]] = ()
    #: One line for ``tada --help``-style listings and the spec reference.
    summary_line: ClassVar[str] = ""
    #: Whether :meth:`check` needs the model's site catalog (loaded on the meta device).
    needs_catalog: ClassVar[bool] = False
    #: Whether the step scores its outputs with the experiment's ``metrics`` (through
    #: ``ctx.score``); a step's own ``metric`` field always counts (``tada plan`` loads
    #: their scorers' sizes).
    scores_with_metrics: ClassVar[bool] = False

    name: StepName = Field(
        description="Unique step name (letters, digits, '_', '-'); used in results and refs."
    )
    method: str = Field(description="Which method runs this step.")
    prompts: str | None = Field(
        default=None,
        description="Name of the prompt set to use (default: the only set, or 'default').",
    )
    generation: GenerationOverride | None = Field(
        default=None, description="Changes to the experiment's generation settings."
    )
    metrics: list[MetricSpec] | None = Field(
        default=None, description="Metrics for this step (default: the experiment's)."
    )

    def plan(self, ctx: "StepContext") -> list[Unit]:
        """The step's units, in a stable order."""
        raise NotImplementedError(f"Method {self.method!r} does not implement plan().")

    def run_unit(self, unit: Unit, ctx: "StepContext") -> list[Row]:
        """Run one unit and return its rows."""
        raise NotImplementedError(f"Method {self.method!r} does not implement run_unit().")

    def unit_cost(self, unit: Unit, ctx: "StepContext") -> "Cost":
        """The generations :meth:`run_unit` makes for ``unit``, for ``tada plan``.

        Count them with the ``*_cost`` functions of the library code ``run_unit`` calls
        (:func:`interp.patching.sweep_cost`, ...), so a plan cannot drift from a run.
        ``ctx.structure`` is the model without weights; references to earlier steps'
        summaries are unresolved here.
        """
        raise NotImplementedError(
            f"Method {self.method!r} does not implement unit_cost(); tada plan cannot count it."
        )

    def planned_sweeps(self, unit: Unit, ctx: "StepContext") -> "list[PlannedSweep]":
        """The sweeps of ``unit`` whose chunks another step or unit may share, as
        :meth:`run_unit` runs them, with the label of their calls in :meth:`unit_cost`
        (``tada plan`` counts a shared chunk once, like the run's work store:
        :mod:`interp.experiments.shared_work`); the default declares none."""
        return []

    def cost_note(self) -> str:
        """What :meth:`unit_cost` cannot know in advance (empty: the count is exact)."""
        return ""

    def finalize(self, ctx: "StepContext") -> dict[str, Any]:
        """Summarise the finished units (``ctx.results``); the default counts rows."""
        return {"units": len(ctx.results), "rows": sum(len(r.rows) for r in ctx.results)}

    def check(self, ctx: "CheckContext") -> None:
        """Extra semantic checks before any model runs; report with ``ctx.error``."""


_METHODS: dict[str, type[MethodSpec]] = {}
_LISTENERS: list[Callable[[], None]] = []
_plugins_loaded = False


def method_name_of(cls: type) -> str:
    """The discriminator value of a method class (its ``method`` Literal)."""
    field = getattr(cls, "model_fields", {}).get("method")
    args = get_args(field.annotation) if field is not None else ()
    if field is None or get_origin(field.annotation) is not Literal or len(args) != 1:
        raise TadaError(
            f"{cls.__name__} must declare `method: Literal['<name>']` with exactly one "
            f"name, to serve as the step's discriminator."
        )
    return str(args[0])


M = TypeVar("M")


def register_method(cls: M) -> M:
    """Class decorator adding a method to the registry.

    Raises:
        TadaError: If ``cls`` is not a :class:`MethodSpec` with a single-valued
            ``method`` Literal, or the name is already registered by another class.
    """
    spec = cls  # narrowed below; ``cls`` is returned as given
    if not (isinstance(spec, type) and issubclass(spec, MethodSpec)):
        raise TadaError(f"register_method expects a MethodSpec subclass, got {cls!r}.")
    name = method_name_of(spec)
    existing = _METHODS.get(name)  # type: ignore[arg-type]
    if existing is cls:
        return cls
    if existing is not None:
        raise TadaError(
            f"A method named {name!r} is already registered by "
            f"{existing.__module__}.{existing.__qualname__}; method names must be unique. "
            f"Registered: {sorted(_METHODS)}."
        )
    _METHODS[name] = spec
    for listener in _LISTENERS:
        listener()
    return cls


def unregister_method(name: str) -> None:
    """Remove a method (for tests and interactive redefinition)."""
    if _METHODS.pop(name, None) is not None:
        for listener in _LISTENERS:
            listener()


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener()`` whenever the registry changes."""
    _LISTENERS.append(listener)


def registered() -> dict[str, type[MethodSpec]]:
    """The methods registered so far, without loading entry-point plug-ins."""
    return dict(_METHODS)


def methods() -> dict[str, type[MethodSpec]]:
    """All registered methods by name (plug-ins included)."""
    load_plugins()
    return dict(_METHODS)


def method_names() -> list[str]:
    """Sorted names of all registered methods."""
    return sorted(methods())


def get_method(name: str) -> type[MethodSpec]:
    """The method class registered as ``name``; the error lists the valid names."""
    found = methods().get(name)
    if found is None:
        raise TadaError(
            f"Unknown method {name!r}.{did_you_mean(name, list(_METHODS))} Valid methods: {sorted(_METHODS)}."
        )
    return found


def load_plugins() -> None:
    """Import the methods declared under the ``tada_interp.methods`` entry points."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for _, loaded in load_entry_points(ENTRY_POINT_GROUP, "method"):
        if isinstance(loaded, type) and issubclass(loaded, MethodSpec):
            register_method(loaded)
