"""Edits and reads: what to do at a site, at which steps, on which CFG branch.

*Select, then act*: a :class:`~interp.sites.Site` says where, an :class:`Operation` says
what, and :class:`Edit` / :class:`Read` bind them to denoising steps, a CFG branch and
(optionally) a subset of samples. These are plain values; :func:`interp.runner.run` is
the one place that executes them inside a traced generation.
"""

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from interp.errors import EditError
from interp.selection import Branch, Steps, StepsLike
from interp.sites import AnySite, ModuleSite, Site, as_any_site
from interp.types import EditValue, SiteTensor


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
    def apply(self, x: SiteTensor, step: int, where: str) -> SiteTensor:
        """Return the new value of ``x`` (the selected rows of the site tensor)."""


@dataclass(frozen=True, eq=False)
class Replace(Operation):
    """Replace the activation by a tensor (or one tensor per step)."""

    value: EditValue | Mapping[int, EditValue]

    def apply(self, x: SiteTensor, step: int, where: str) -> SiteTensor:
        new = _fit(_pick(self.value, step, "Replace"), x, "Replace", where)
        return new.expand_as(x).clone()


@dataclass(frozen=True, eq=False, init=False)
class ReplaceTokens(Operation):
    """Replace only some positions of the axis after the rows (the context tokens of a
    ``text``, ``keys``/``key`` or ``values``/``value`` site; the sequence positions of
    others) by the same positions of a tensor (or one tensor per step); every other
    position keeps its value bit for bit.

    Attributes:
        value: A tensor of the selected slice's full shape (or trailing axes of it), as
            for :class:`Replace`.
        positions: Indices along axis 1 of the selected slice; empty: an identity edit.
    """

    value: EditValue | Mapping[int, EditValue]
    positions: tuple[int, ...]

    def __init__(self, value: EditValue | Mapping[int, EditValue], positions: Sequence[int]) -> None:
        if isinstance(positions, (str, bytes)) or not all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in positions
        ):
            raise EditError(
                f"ReplaceTokens.positions must be token indices (integers >= 0), got {positions!r}."
            )
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "positions", tuple(sorted(set(positions))))

    def apply(self, x: SiteTensor, step: int, where: str) -> SiteTensor:
        if not self.positions:
            return x
        if x.dim() < 2 or max(self.positions) >= x.shape[1]:
            raise EditError(
                f"ReplaceTokens at {where}: positions {list(self.positions)} outside the "
                f"{x.shape[1] if x.dim() >= 2 else 0} positions of the activation of shape {tuple(x.shape)}."
            )
        new = _fit(_pick(self.value, step, "ReplaceTokens"), x, "ReplaceTokens", where).expand_as(x)
        index = torch.tensor(self.positions, device=x.device)
        out = x.clone()
        out[:, index] = new[:, index]
        return out


@dataclass(frozen=True, eq=False)
class Add(Operation):
    """Add a tensor (e.g. a steering vector), broadcast over leading axes."""

    value: EditValue | Mapping[int, EditValue]

    def apply(self, x: SiteTensor, step: int, where: str) -> SiteTensor:
        return x + _fit(_pick(self.value, step, "Add"), x, "Add", where)


@dataclass(frozen=True)
class Scale(Operation):
    """Multiply the activation by a constant."""

    factor: float

    def __post_init__(self) -> None:
        factor = self.factor
        if not isinstance(factor, (int, float)) or isinstance(factor, bool) or not math.isfinite(factor):
            raise EditError(f"Scale.factor must be a finite number, got {self.factor!r}.")

    def apply(self, x: SiteTensor, step: int, where: str) -> SiteTensor:
        return x * self.factor


@dataclass(frozen=True)
class Zero(Operation):
    """Set the activation to zero (zero-ablation)."""

    def apply(self, x: SiteTensor, step: int, where: str) -> SiteTensor:
        return torch.zeros_like(x)


@dataclass(frozen=True, eq=False)
class Apply(Operation):
    """Apply an arbitrary function ``fn(x, step) -> new x`` of the same shape."""

    fn: Callable[[Tensor, int], Tensor]

    def apply(self, x: SiteTensor, step: int, where: str) -> SiteTensor:
        new = self.fn(x, step)
        if not isinstance(new, Tensor) or new.shape != x.shape:
            got = tuple(new.shape) if isinstance(new, Tensor) else type(new).__name__
            raise EditError(
                f"Apply at {where}: the function returned {got}, expected a tensor of shape {tuple(x.shape)}."
            )
        return new


@dataclass(frozen=True, eq=False, init=False)
class Edit:
    """Apply ``op`` at ``site`` on the chosen steps, branch and samples.

    The constructor accepts the loose forms (a site string, ``steps="0:3"``,
    ``branch="cond"``, a list of samples); the fields always hold the normalized values.

    Attributes:
        site: Where (an attention site, or a module site: the escape hatch).
        op: What to do there.
        steps: Which denoising steps.
        branch: Which CFG branch.
        samples: Which samples (``None``: all).
    """

    site: AnySite
    op: Operation
    steps: Steps
    branch: Branch
    samples: tuple[int, ...] | None

    def __init__(
        self,
        site: Site | ModuleSite | str,
        op: Operation,
        steps: StepsLike = None,
        branch: Branch | str = Branch.BOTH,
        samples: Sequence[int] | None = None,
    ) -> None:
        if not isinstance(op, Operation):
            raise EditError(
                f"Edit.op must be an Operation such as Zero(), Scale(0.5), Add(vector), "
                f"Replace(tensor) or Apply(fn) (from interp.edits), got {op!r}."
            )
        object.__setattr__(self, "op", op)
        _bind(self, site, steps, branch, samples)


def _bind(
    item: "Edit | Read",
    site: Site | ModuleSite | str,
    steps: StepsLike,
    branch: Branch | str,
    samples: Sequence[int] | None,
) -> None:
    """Set the normalized site, steps, branch and samples of an edit or read."""
    object.__setattr__(item, "site", as_any_site(site))
    object.__setattr__(item, "steps", Steps.parse(steps))
    object.__setattr__(item, "branch", Branch.parse(branch))
    if samples is not None:
        if (
            isinstance(samples, (str, bytes))
            or not isinstance(samples, (tuple, list, range))
            or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in samples)
        ):
            raise EditError(
                f"samples must be None or a list of sample indices (integers >= 0), got {samples!r}."
            )
        samples = tuple(samples)
    object.__setattr__(item, "samples", samples)


@dataclass(frozen=True, eq=False, init=False)
class Read:
    """Record the activation at ``site`` on the chosen steps, branch and samples.

    The result is stacked over the selected steps: ``[step, rows, ...site axes]``,
    rows being the selected samples' rows of the branch (``both``: uncond then cond).
    ``reduce`` maps each step's tensor before it is stored (e.g. a mean over ``seq``).
    Reads see the value after any edit at the same site and step. The fields hold
    normalized values, as for :class:`Edit`; ``key`` defaults to the site's name.
    """

    site: AnySite
    steps: Steps
    branch: Branch
    samples: tuple[int, ...] | None
    reduce: Callable[[Tensor], Tensor] | None
    key: str

    def __init__(
        self,
        site: Site | ModuleSite | str,
        steps: StepsLike = None,
        branch: Branch | str = Branch.BOTH,
        samples: Sequence[int] | None = None,
        reduce: Callable[[Tensor], Tensor] | None = None,
        key: str | None = None,
    ) -> None:
        if reduce is not None and not callable(reduce):
            raise EditError(f"Read.reduce must be a function of a tensor or None, got {reduce!r}.")
        object.__setattr__(self, "reduce", reduce)
        _bind(self, site, steps, branch, samples)
        object.__setattr__(self, "key", self.site.name if key is None else key)
