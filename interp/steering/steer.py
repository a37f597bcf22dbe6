"""Applying steering: a steerer turns a strength alpha into edits; the runner runs them.

A *steerer* is anything with ``edits(alpha) -> list[Edit]`` and ``describe() -> dict``:
:class:`CAASteerer` here, the SAE steerers in :mod:`saes.steer`. ``alpha = 0`` must give
edits that change nothing (adding a zero vector), so the steered run at alpha 0 is the
unsteered generation bit for bit. :func:`sweep_alpha` runs one generation per alpha.

Example (needs a model, a request and vectors, so it is not run as a doctest)::

    steerer = CAASteerer(vectors, branch="cond", renormalize=True)
    for alpha, result in sweep_alpha(model, request, steerer, alpha_grid(8.0, 4)):
        print(alpha, result.output.latents.norm())
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from beartype import beartype
from torch import Tensor

from interp.adapter import GenerationRequest, ModelAdapter
from interp.edits import Add, Apply, Edit
from interp.errors import TadaError
from interp.runner import RunResult, run
from interp.selection import Branch, Steps, StepsLike
from interp.sites import Site
from interp.steering.caa import SteeringVectors


@runtime_checkable
class Steerer(Protocol):
    """Turns a steering strength into edits (see the module docstring)."""

    def edits(self, alpha: float) -> list[Edit]:
        """The edits that steer with strength ``alpha`` (identity at 0)."""
        ...

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (method, sites, steps, branch, settings)."""
        ...


def alpha_grid(max_alpha: float, points_per_side: int, include_zero: bool = True) -> list[float]:
    """A symmetric grid ``[-max, ..., 0, ..., max]`` with ``points_per_side`` per side."""
    if max_alpha <= 0 or points_per_side < 1:
        raise TadaError(
            f"alpha_grid needs max_alpha > 0 and points_per_side >= 1, got {max_alpha} and {points_per_side}."
        )
    side = np.linspace(0.0, max_alpha, points_per_side + 1)[1:]
    values = [-float(a) for a in side[::-1]] + ([0.0] if include_zero else [])
    return values + [float(a) for a in side]


def select_steps(selection: StepsLike, available: Sequence[int]) -> tuple[int, ...]:
    """The steps of ``selection`` among ``available`` (all of them for ``None``).

    Raises:
        TadaError: If an explicitly listed step has no vector.
    """
    parsed = Steps.parse(selection)
    if parsed.indices is not None:
        missing = [s for s in parsed.indices if s not in available]
        if missing:
            raise TadaError(
                f"Step(s) {missing} have no steering vector; vectors exist for steps "
                f"{list(available)}. Pick among them or average the vectors over steps."
            )
        return parsed.indices
    start = parsed.start or 0
    stop = parsed.stop
    chosen = tuple(s for s in available if s >= start and (stop is None or s < stop))
    if not chosen:
        raise TadaError(f"Steps {parsed} select none of the vector steps {list(available)}.")
    return chosen


def renormalized(x: Tensor, new: Tensor) -> Tensor:
    """``new`` rescaled to the L2 norm of ``x`` at every position.

    The norm runs over every axis after ``[rows, seq]`` (``d_model``, ``d_head`` or
    ``head x d_head``). Positions where ``new`` is zero are left as they are.
    """
    dims = tuple(range(2, x.dim()))
    before = x.float().norm(dim=dims, keepdim=True)  # float32: half-precision norms overflow
    after = new.float().norm(dim=dims, keepdim=True)
    scale = torch.where(after > 0, before / after.clamp_min(1e-30), torch.ones_like(after))
    return (new.float() * scale).to(new.dtype)


@dataclass(frozen=True, eq=False)
class CAASteerer:
    """Add ``alpha x vector`` at each site of a :class:`SteeringVectors`.

    Attributes:
        vectors: The steering vectors (per step, or averaged over steps).
        sites: Sites to steer (default: every site of ``vectors``).
        steps: Steps to steer (default: the vectors' steps; every step if averaged).
        branch: CFG branch to steer (default ``cond``: effective strength is
            guidance x alpha, as in TADA).
        renormalize: Rescale each steered activation to its original norm per position.
    """

    vectors: SteeringVectors
    sites: Sequence[Site | str] | None = None
    steps: StepsLike = None
    branch: Branch | str = "cond"
    renormalize: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "branch", Branch.parse(self.branch).value)
        if self.sites is not None:
            object.__setattr__(self, "sites", tuple(str(s) for s in self.sites))
        for site in self.sites or ():
            self.vectors._check_site(str(site))
        if not self.vectors.averaged:
            select_steps(self.steps, self.vectors.steps)

    def _steps(self) -> Steps:
        if self.vectors.averaged:
            return Steps.parse(self.steps)
        return Steps.of(select_steps(self.steps, self.vectors.steps))

    def _values(self, site: str, alpha: float, steps: Steps) -> Tensor | Mapping[int, Tensor]:
        if self.vectors.averaged:
            return alpha * self.vectors.at(site, 0)
        return {s: alpha * self.vectors.at(site, s) for s in steps.indices or ()}

    def edits(self, alpha: float) -> list[Edit]:
        """One edit per site: ``x + alpha v`` (then renormalized if asked)."""
        steps = self._steps()
        out = []
        for site in self.sites or tuple(self.vectors.sites):
            value = self._values(str(site), float(alpha), steps)
            if self.renormalize:
                op = Apply(_renormalized_add(value))
            else:
                op = Add(value)
            out.append(Edit(site, op, steps=steps, branch=self.branch))
        return out

    def describe(self) -> dict[str, Any]:
        """Method, sites, steps, branch and settings, JSON-ready."""
        return {
            "method": "caa",
            "sites": list(self.sites or self.vectors.sites),
            "steps": str(self._steps()),
            "branch": self.branch,
            "renormalize": self.renormalize,
            "normalized": self.vectors.normalized,
            "averaged": self.vectors.averaged,
            "concept": self.vectors.metadata.get("concept"),
        }


def _renormalized_add(value: Tensor | Mapping[int, Tensor]):  # a closure
    def fn(x: Tensor, step: int) -> Tensor:
        vector = value if isinstance(value, Tensor) else value[step]
        return renormalized(x, x + vector.to(dtype=x.dtype, device=x.device))

    return fn


@beartype
def sweep_alpha(
    adapter: ModelAdapter,
    request: GenerationRequest,
    steerer: Steerer,
    alphas: Sequence[float],
) -> Iterator[tuple[float, RunResult]]:
    """Run one steered generation per alpha, lazily (one result in memory at a time)."""
    if not alphas:
        raise TadaError("sweep_alpha needs at least one alpha.")
    for alpha in alphas:
        yield float(alpha), run(adapter, request, edits=steerer.edits(float(alpha)))
