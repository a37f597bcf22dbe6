"""Building blocks shared by every spec model: a strict base model and typed fields.

Fields that hold sites, step windows or CFG branches carry a :class:`Marker` in their
``Annotated`` metadata. Validation checks their syntax when the spec is parsed; the
semantic pass (:mod:`interp.experiments.checks`) finds them by marker, in any method,
and checks them against the model's real sites, the schedule and the guidance setting.
Plug-in methods get those checks for free by using these types.
"""

from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeAlias, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    Tag,
    model_validator,
)
from pydantic_core import PydanticCustomError

from interp.errors import SelectionError, SiteError
from interp.selection import Steps
from interp.sites import Site


class StrictModel(BaseModel):
    """Base of all spec models: unknown keys are errors, never silently dropped; numbers
    are finite, and a boolean is never taken for a number (``steps: true`` is not 1)."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, validate_default=False, allow_inf_nan=False
    )

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                key = field.alias if field.alias in data else name
                if key in data and _has_bool(data[key]) and _numeric_only(field.annotation):
                    raise PydanticCustomError(
                        "bool_not_number",
                        "{key} expects a number, got a boolean (true or false)",
                        {"key": key},
                    )
        return data


def _has_bool(value: Any) -> bool:
    return isinstance(value, bool) or (isinstance(value, list) and any(isinstance(v, bool) for v in value))


def _numeric_only(annotation: Any) -> bool:
    """Whether a field's type takes numbers (or lists of numbers) but never booleans."""
    kinds: set[Any] = set()
    stack = [annotation]
    while stack:
        node = stack.pop()
        args = get_args(node)
        if get_origin(node) is Annotated:
            stack.append(args[0])
        elif args and get_origin(node) is not Literal:
            stack.extend(args)
        else:
            kinds.add(node)
    return bool(kinds & {int, float}) and bool not in kinds and Any not in kinds


@dataclass(frozen=True)
class Marker:
    """Tags a field for the semantic checks (``site``, ``steps`` or ``branch``)."""

    kind: str


SITE = Marker("site")
STEPS = Marker("steps")
BRANCH = Marker("branch")


def _check_site(value: str) -> str:
    try:
        Site.parse(value)
    except SiteError as error:
        raise PydanticCustomError("site_syntax", "{reason}", {"reason": str(error)}) from None
    return value.strip()


def _check_steps(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int, list)):
        raise PydanticCustomError(
            "steps_syntax",
            "steps must be 'all', an index like 3, a range like '0:10' or '5:', or a list like [0, 2, 4]",
        )
    try:
        Steps.parse(value)
    except SelectionError as error:
        raise PydanticCustomError("steps_syntax", "{reason}", {"reason": str(error)}) from None
    return value


#: A canonical site string such as ``'cross.7.head.3'``; checked against the model.
SiteStr: TypeAlias = Annotated[str, AfterValidator(_check_site), SITE]

#: Denoising steps: ``'all'``, an index, a range ``'a:b'`` / ``'a:'``, or a list.
StepWindow: TypeAlias = Annotated[str | int | list[int], BeforeValidator(_check_steps), STEPS]

#: A classifier-free-guidance branch.
BranchName: TypeAlias = Annotated[Literal["cond", "uncond", "both"], BRANCH]


class Ref(StrictModel):
    """A reference to an earlier step's results: ``{from: step_name, key: name}``.

    The value is looked up in the earlier step's summary (what its ``finalize``
    returned) under ``key``, which defaults to the name of the field holding the
    reference.
    """

    from_: str = Field(alias="from", description="Name of an earlier step whose summary holds the value.")
    key: str | None = Field(
        default=None,
        description="Key in that step's summary; defaults to the referring field's name.",
    )


def _ref_or_value(value: Any) -> str:
    if isinstance(value, Ref) or (isinstance(value, dict) and "from" in value):
        return "ref"
    return "value"


def Refable(inner: Any) -> Any:  # reads like a type
    """``inner`` or a :class:`Ref` to an earlier step's result (``{from: step}``).

    Example:
        ``sites: Refable(list[SiteStr])`` accepts ``['cross.1.head.0']`` or
        ``{from: locate}``.
    """
    return Annotated[
        Annotated[Ref, Tag("ref")] | Annotated[inner, Tag("value")],
        Discriminator(_ref_or_value),
    ]


#: Tags used by :func:`Refable`; error paths skip them.
REF_TAGS = ("ref", "value")


# Bounds on generation settings, checked when a spec is parsed (before any work runs).
MAX_STEPS = 10_000
MAX_SEEDS = 10_000
SEED_LIMIT = 2**63
MAX_GUIDANCE = 1_000.0
MIN_DURATION_S = 0.1
MAX_DURATION_S = 3_600.0
MAX_NAME_LENGTH = 64


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError(
            "bool_not_number", "expected a number, got the boolean {value}", {"value": value}
        )
    return value


#: Denoising steps: an integer in ``[1, MAX_STEPS]`` (booleans and floats refused).
StepCount: TypeAlias = Annotated[StrictInt, Field(ge=1, le=MAX_STEPS)]

#: A seed: an integer in ``[0, 2**63)``; larger values would alias in torch's generator.
Seed: TypeAlias = Annotated[StrictInt, Field(ge=0, lt=SEED_LIMIT)]

#: A classifier-free guidance scale: a finite number in ``[0, MAX_GUIDANCE]``.
Guidance: TypeAlias = Annotated[
    float, BeforeValidator(_no_bool), Field(ge=0, le=MAX_GUIDANCE, allow_inf_nan=False)
]

#: Audio length in seconds: finite, in ``[MIN_DURATION_S, MAX_DURATION_S]`` (and within
#: the model's own maximum, checked against the model).
Duration: TypeAlias = Annotated[
    float,
    BeforeValidator(_no_bool),
    Field(ge=MIN_DURATION_S, le=MAX_DURATION_S, allow_inf_nan=False),
]


def _check_batch_size(value: Any) -> Any:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise PydanticCustomError(
        "batch_size",
        "batch_size must be 'auto' (the largest batch that fits in free memory) or an integer >= 1",
    )


#: ``'auto'`` (the default: the largest batch that fits, :mod:`interp.batching`) or an int >= 1.
BatchSizeSetting: TypeAlias = Annotated[int | Literal["auto"], BeforeValidator(_check_batch_size)]


def distinct_seeds(seeds: list[int] | None) -> list[int] | None:
    """Refuse repeated seeds (in linear time: specs may list thousands)."""
    if seeds is None:
        return None
    seen: set[int] = set()
    duplicates = sorted({s for s in seeds if s in seen or seen.add(s)})  # type: ignore[func-returns-value]
    if duplicates:
        raise ValueError(f"seeds must be distinct; {duplicates[:10]} appear more than once")
    return seeds


#: Spec keys renamed in the vocabulary of the Python API (old key -> new key).
RENAMED_GENERATION_KEYS = {"steps": "num_steps", "guidance": "guidance_scale"}


def renamed_generation_keys(data: Any) -> Any:
    """Refuse the old generation keys with an error that names the new keys."""
    if isinstance(data, dict):
        old = [key for key in RENAMED_GENERATION_KEYS if key in data]
        if old:
            raise PydanticCustomError(
                "renamed_key",
                "{renamed} (the names GenerationRequest uses; 'steps' now only means the "
                "experiment's list of steps and the denoising-step windows of edits): write "
                "{fix}",
                {
                    "renamed": "; ".join(f"{k!r} was renamed to {RENAMED_GENERATION_KEYS[k]!r}" for k in old),
                    "fix": ", ".join(f"{RENAMED_GENERATION_KEYS[k]}: {data[k]!r}" for k in old),
                },
            )
    return data
