"""The experiment spec: pydantic models of a YAML experiment file.

Top level::

    name: tiny-demo
    model: {name: tiny-stable-audio, device: cpu}
    generation: {num_steps: 4, guidance_scale: 3.0, duration_s: 4.0, seeds: [0, 1]}
    prompts: {default: ["a sad violin song", "a happy trumpet song"]}
    metrics: [rms]
    steps:
      - {name: baseline, method: generate}

``steps`` is a list of method steps, a union discriminated on ``method`` and built from
the method registry (:mod:`interp.experiments.methods`) each time it changes, so
plug-in methods validate like built-in ones.
"""

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, GetCoreSchemaHandler, SerializeAsAny, field_validator, model_validator

from interp.experiments import methods as registry
from interp.experiments.fields import (
    MAX_NAME_LENGTH,
    MAX_SEEDS,
    MAX_STEPS,
    MIN_DURATION_S,
    Duration,
    Guidance,
    Seed,
    StepCount,
    StrictModel,
    distinct_seeds,
    renamed_generation_keys,
)
from interp.experiments.methods import GenerationOverride, MethodSpec
from interp.experiments.metric_specs import MetricSpec
from interp.experiments.prompt_specs import PromptSet

DTYPES = ("float32", "float16", "bfloat16")


class ModelSpec(StrictModel):
    """Which model to load and where."""

    name: str = Field(
        description="Short model name (e.g. 'tiny-stable-audio', 'stable-audio-open-1.0'), "
        "hub id, or local diffusers directory (relative to the spec file)."
    )
    device: str = Field(
        default="cpu",
        pattern=r"^(cpu|mps|cuda(:\d+)?)$",
        description="Torch device: 'cpu', 'cuda', 'cuda:N' or 'mps'.",
    )
    dtype: Literal["float32", "float16", "bfloat16"] | None = Field(
        default=None, description="Weight dtype (default: the checkpoint's)."
    )
    weights: bool = Field(
        default=True,
        description="false builds the architecture on the meta device (validation and "
        "structure only; such a spec cannot run).",
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        strict=True,
        description="CPU threads for torch. Default: 1 for models under 100M parameters on "
        "the CPU (small models run fastest on one thread, and identically on any machine), "
        "otherwise torch's default.",
    )


class GenerationSpec(StrictModel):
    """Generation settings shared by all steps (each step may override them)."""

    num_steps: StepCount = Field(default=25, description=f"Number of denoising steps (1 to {MAX_STEPS}).")
    guidance_scale: Guidance = Field(
        default=4.0, description="CFG scale (finite, 0 to 1000); <= 1 disables guidance."
    )
    duration_s: Duration | None = Field(
        default=None,
        description=f"Audio length in seconds ({MIN_DURATION_S} to the model's maximum; "
        "default: the model's).",
    )
    seeds: list[Seed] = Field(
        default_factory=lambda: [0],
        min_length=1,
        max_length=MAX_SEEDS,
        description="Seeds (distinct, 0 <= seed < 2**63); each prompt runs once per seed.",
    )
    negative_prompt: str | None = Field(
        default=None, description="Prompt of the unconditional branch (needs guidance > 1)."
    )

    _distinct = field_validator("seeds")(distinct_seeds)
    _renamed = model_validator(mode="before")(renamed_generation_keys)

    @model_validator(mode="after")
    def _negative_needs_guidance(self) -> "GenerationSpec":
        if self.negative_prompt is not None and self.guidance_scale <= 1:
            raise ValueError(
                f"negative_prompt is set but guidance_scale is {self.guidance_scale} (<= 1 "
                f"disables classifier-free guidance, so the negative prompt would be ignored); "
                f"raise guidance_scale or remove negative_prompt"
            )
        return self

    def merged(self, override: GenerationOverride | None) -> "GenerationSpec":
        """These settings with a step's overrides applied (validated again)."""
        if override is None:
            return self
        data = self.model_dump()
        data.update(override.model_dump(exclude_unset=True))
        return GenerationSpec.model_validate(data)


class AnyMethod:
    """Type marker: any registered method's settings, discriminated on ``method``."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> Any:
        members = tuple(registry.registered().values())
        if not members:
            return handler.generate_schema(MethodSpec)
        union = members[0] if len(members) == 1 else _union(members)
        return handler.generate_schema(Annotated[union, Field(discriminator="method")])


def _union(members: tuple[type, ...]) -> Any:
    from typing import Union

    return Union[members]  # noqa: UP007 - a runtime tuple of classes


if TYPE_CHECKING:
    _Step = MethodSpec  # to the type checker a step is what every union member is
else:
    _Step = AnyMethod


class ExperimentSpec(StrictModel):
    """A whole experiment: model, generation settings, prompts, metrics and steps."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        max_length=MAX_NAME_LENGTH,
        description="Experiment name; the default output directory is runs/<name>.",
    )
    description: str = Field(default="", description="Free text shown in the report.")
    model: ModelSpec = Field(description="The model.")
    generation: GenerationSpec = Field(default_factory=GenerationSpec, description="Generation settings.")
    prompts: dict[str, PromptSet] = Field(
        default_factory=dict,
        description="Named prompt sets; a bare list means {default: <list>}. Optional when "
        "every step brings its own prompts (e.g. `pairs:` of the localization methods).",
    )
    metrics: list[MetricSpec] = Field(
        default_factory=lambda: [MetricSpec(name="rms")],
        description="Metrics computed by every step that generates audio.",
    )
    output: str | None = Field(
        default=None,
        description="Results directory, relative to the spec file's directory and inside it "
        "(default: runs/<name> in the working directory; `tada run --out` overrides it).",
    )
    steps: list[SerializeAsAny[_Step]] = Field(min_length=1, description="Method steps, run in order.")

    @model_validator(mode="before")
    @classmethod
    def _bare_prompt_list(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("prompts"), list):
            return {**value, "prompts": {"default": value["prompts"]}}
        return value

    @field_validator("metrics")
    @classmethod
    def _distinct_metric_columns(cls, value: list[MetricSpec]) -> list[MetricSpec]:
        columns = [m.column for m in value]
        duplicates = sorted({c for c in columns if columns.count(c) > 1})
        if duplicates:
            raise ValueError(f"metric(s) {duplicates} listed twice; give repeated metrics distinct labels")
        return value

    def step(self, name: str) -> MethodSpec:
        """The step called ``name``."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)


def _rebuild() -> None:
    ExperimentSpec.model_rebuild(force=True)


registry.on_change(_rebuild)
