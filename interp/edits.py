"""Edits and reads: what to do at a site, at which steps, on which CFG branch.

*Select, then act*: a :class:`~interp.sites.Site` says where, an :class:`Operation` says
what, and :class:`Edit` / :class:`Read` bind them to denoising steps, a CFG branch and
(optionally) a subset of samples. These are plain values; :func:`interp.runner.run` is
the one place that executes them inside a traced generation.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from interp.errors import EditError
from interp.selection import Branch, Steps, StepsLike
from interp.sites import Site, as_site


def _pick(value: Tensor | Mapping[int, Tensor], step: int, what: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if step not in value:
        raise EditError(
            f"{what} has per-step values for steps {sorted(value)} but is applied at step "
            f"{step}; give a value for every selected step or restrict the edit's steps."
        )
    return value[step]


def _fit(value: Tensor, target: Tensor, what: str, where: str) -> Tensor:
    """Check that ``value`` broadcasts to ``target``'s shape without changing it."""
    try:
        shape = torch.broadcast_shapes(value.shape, target.shape)
    except RuntimeError:
        shape = None
    if shape != target.shape:
        raise EditError(
            f"{what} at {where}: a tensor of shape {tuple(value.shape)} does not fit the "
            f"selected activation of shape {tuple(target.shape)}. Give exactly that shape, "
            f"or trailing axes of it to broadcast (e.g. {tuple(target.shape[-1:])} for one "
            f"vector at every position)."
        )
    return value.to(device=target.device, dtype=target.dtype)


class Operation(ABC):
    """What an edit does to the selected slice of an activation."""

    @abstractmethod
    def apply(self, x: Tensor, step: int, where: str) -> Tensor:
        """Return the new value of ``x`` (the selected rows of the site tensor)."""


@dataclass(frozen=True, eq=False)
class Replace(Operation):
    """Replace the activation by a tensor (or one tensor per step)."""

    value: Tensor | Mapping[int, Tensor]

    def apply(self, x: Tensor, step: int, where: str) -> Tensor:
        new = _fit(_pick(self.value, step, "Replace"), x, "Replace", where)
        return new.expand_as(x).clone()


@dataclass(frozen=True, eq=False)
class Add(Operation):
    """Add a tensor (e.g. a steering vector), broadcast over leading axes."""

    value: Tensor | Mapping[int, Tensor]

    def apply(self, x: Tensor, step: int, where: str) -> Tensor:
        return x + _fit(_pick(self.value, step, "Add"), x, "Add", where)


@dataclass(frozen=True)
class Scale(Operation):
    """Multiply the activation by a constant."""

    factor: float

    def apply(self, x: Tensor, step: int, where: str) -> Tensor:
        return x * self.factor


@dataclass(frozen=True)
class Zero(Operation):
    """Set the activation to zero (zero-ablation)."""

    def apply(self, x: Tensor, step: int, where: str) -> Tensor:
        return torch.zeros_like(x)


@dataclass(frozen=True, eq=False)
class Apply(Operation):
    """Apply an arbitrary function ``fn(x, step) -> new x`` of the same shape."""

    fn: Callable[[Tensor, int], Tensor]

    def apply(self, x: Tensor, step: int, where: str) -> Tensor:
        new = self.fn(x, step)
        if not isinstance(new, Tensor) or new.shape != x.shape:
            got = tuple(new.shape) if isinstance(new, Tensor) else type(new).__name__
            raise EditError(
                f"Apply at {where}: the function returned {got}, expected a tensor of "
                f"shape {tuple(x.shape)}."
            )
        return new


@dataclass(frozen=True, eq=False)
class Edit:
    """Apply ``op`` at ``site`` on the chosen steps, branch and samples."""

    site: Site | str
    op: Operation
    steps: StepsLike = field(default_factory=Steps.all)
    branch: Branch | str = Branch.BOTH
    samples: tuple[int, ...] | list[int] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "site", as_site(self.site))
        object.__setattr__(self, "steps", Steps.parse(self.steps))
        object.__setattr__(self, "branch", Branch.parse(self.branch))
        if self.samples is not None:
            object.__setattr__(self, "samples", tuple(self.samples))


@dataclass(frozen=True, eq=False)
class Read:
    """Record the activation at ``site`` on the chosen steps, branch and samples.

    The result is stacked over the selected steps: ``[step, rows, ...site axes]``,
    rows being the selected samples' rows of the branch (``both``: uncond then cond).
    ``reduce`` maps each step's tensor before it is stored (e.g. a mean over ``seq``).
    Reads see the value after any edit at the same site and step.
    """

    site: Site | str
    steps: StepsLike = field(default_factory=Steps.all)
    branch: Branch | str = Branch.BOTH
    samples: tuple[int, ...] | list[int] | None = None
    reduce: Callable[[Tensor], Tensor] | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "site", as_site(self.site))
        object.__setattr__(self, "steps", Steps.parse(self.steps))
        object.__setattr__(self, "branch", Branch.parse(self.branch))
        if self.samples is not None:
            object.__setattr__(self, "samples", tuple(self.samples))
        if self.key is None:
            object.__setattr__(self, "key", self.site.name)
