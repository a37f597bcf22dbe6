"""Building blocks shared by every spec model: a strict base model and typed fields.

Fields that hold sites, step windows or CFG branches carry a :class:`Marker` in their
``Annotated`` metadata. Validation checks their syntax when the spec is parsed; the
semantic pass (:mod:`interp.experiments.checks`) finds them by marker, in any method,
and checks them against the model's real sites, the schedule and the guidance setting.
Plug-in methods get those checks for free by using these types.
"""

from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
)
from pydantic_core import PydanticCustomError

from interp.errors import SelectionError, SiteError
from interp.selection import Steps
from interp.sites import Site


class StrictModel(BaseModel):
    """Base of all spec models: unknown keys are errors, never silently dropped."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=False)


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
            "steps must be 'all', an index like 3, a range like '0:10' or '5:', or a list "
            "like [0, 2, 4]",
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

    from_: str = Field(
        alias="from", description="Name of an earlier step whose summary holds the value."
    )
    key: str | None = Field(
        default=None,
        description="Key in that step's summary; defaults to the referring field's name.",
    )


def _ref_or_value(value: Any) -> str:
    if isinstance(value, Ref) or (isinstance(value, dict) and "from" in value):
        return "ref"
    return "value"


def Refable(inner: Any) -> Any:  # noqa: N802 - reads like a type
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
