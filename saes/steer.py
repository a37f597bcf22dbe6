"""Steer with SAE features: add their decoder directions, or clamp them inside the SAE.

Both are steerers (``edits(alpha) -> list[Edit]``, see :mod:`interp.steering.steer`), so
:func:`interp.steering.evaluate_steering` and :func:`~interp.steering.sweep_alpha` run
them like CAA.

* :class:`SAEFeatureSteerer` adds ``alpha x sum of the unit decoder directions`` of the
  selected features (per step, TADA's SAE steering) at the SAE's site.
* :class:`SAEClampSteerer` encodes the activation with the SAE, changes the chosen
  features' activations, decodes, and keeps the SAE's error term:
  ``x' = x + decode(f') - decode(f)``, which equals ``decode(f') + (x - decode(f))`` and
  is exactly ``x`` when ``f' = f`` (alpha = 0).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from interp.components import FREE_AXES
from interp.edits import Add, Apply, Edit
from interp.errors import TadaError
from interp.selection import Branch, Steps, StepsLike
from interp.sites import as_site
from interp.steering.steer import renormalized, select_steps
from saes.features import FeatureSelection, sae_site
from saes.layout import as_sae


def decoder_directions(sae: nn.Module) -> Tensor:
    """Unit-norm decoder rows ``[d_sae, d_in]`` (the features' directions)."""
    weights = as_sae(sae).W_dec.detach().float()
    return weights / weights.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _site_shape(sae: nn.Module, site: str, shape: Sequence[int] | None) -> tuple[int, ...]:
    if shape is not None:
        return tuple(shape)
    sae = as_sae(sae)
    own_axes = [a for a in as_site(site).axes.split() if a not in FREE_AXES]
    if len(own_axes) > 1:
        raise TadaError(
            f"SAE at {site}: a site with axes {own_axes} needs shape=({', '.join(own_axes)}) to lay the "
            f"{sae.cfg.d_in}-wide decoder directions out per head."
        )
    return (int(sae.cfg.d_in),)


@dataclass(frozen=True, eq=False)
class SAEFeatureSteerer:
    """Add ``alpha x`` the sum of the selected features' unit decoder directions.

    Attributes:
        sae: An sae-lens SAE trained at ``selection.site``.
        selection: Features per step (from :func:`saes.features.concept_features`).
        steps: Steps to steer (default: the selection's steps).
        branch: CFG branch (default ``cond``).
        renormalize: Rescale each steered activation to its original norm per position.
        shape: The site's own axes when not ``[d_in]`` (``(head, d_head)`` for ``heads``).
    """

    sae: nn.Module
    selection: FeatureSelection
    steps: StepsLike = None
    branch: Branch | str = "cond"
    renormalize: bool = False
    shape: Sequence[int] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "branch", Branch.parse(self.branch).value)
        object.__setattr__(self, "shape", _site_shape(self.sae, self.selection.site, self.shape))
        select_steps(self.steps, self.selection.steps)

    def direction(self, step: int) -> Tensor:
        """Sum of the unit decoder directions selected at ``step``, in site shape."""
        rows = decoder_directions(self.sae)[self.selection.at(step)]
        assert self.shape is not None  # set by __post_init__
        return rows.sum(dim=0).reshape(self.shape)

    def edits(self, alpha: float) -> list[Edit]:
        """One edit at the SAE's site: ``x + alpha * direction(step)``."""
        chosen = select_steps(self.steps, self.selection.steps)
        values = {s: float(alpha) * self.direction(s) for s in chosen}
        op = Apply(_renormalized_add(values)) if self.renormalize else Add(values)
        return [Edit(self.selection.site, op, steps=Steps.of(chosen), branch=self.branch)]

    def describe(self) -> dict[str, Any]:
        return {
            "method": "sae",
            "sites": [self.selection.site],
            "steps": str(Steps.of(select_steps(self.steps, self.selection.steps))),
            "branch": self.branch,
            "renormalize": self.renormalize,
            "k": int(self.selection.indices.shape[1]),
            "score": self.selection.method,
            "concept": self.selection.concept,
            "d_sae": int(as_sae(self.sae).cfg.d_sae),
        }


def _renormalized_add(values: Mapping[int, Tensor]):  # a closure
    def fn(x: Tensor, step: int) -> Tensor:
        return renormalized(x, x + values[step].to(dtype=x.dtype, device=x.device))

    return fn


@dataclass(frozen=True, eq=False)
class SAEClampSteerer:
    """Change chosen features' activations inside the SAE, keeping the error term.

    With ``mode='set'`` a feature's activation ``f`` becomes ``f + alpha (target - f)``:
    alpha = 1 clamps it to ``target`` (TADA-style clamping), 0 leaves it, negative
    values push it away. With ``mode='add'`` it becomes ``f + alpha * target``.

    Attributes:
        sae: An sae-lens SAE trained at ``site``.
        features: Feature indices, one list for every step, or a mapping step -> list.
        site: Site of the SAE (default: its ``hook_name``).
        target: Activation value(s) to clamp to / add, one per feature or one for all.
        mode: ``'set'`` or ``'add'``.
        steps: Steps to steer (default all, or the mapping's steps).
        branch: CFG branch (default ``cond``).
        shape: The site's own axes when not ``[d_in]``.
    """

    sae: nn.Module
    features: Sequence[int] | Mapping[int, Sequence[int]]
    site: str | None = None
    target: float | Sequence[float] = 1.0
    mode: Literal["set", "add"] = "set"
    steps: StepsLike = None
    branch: Branch | str = "cond"
    shape: Sequence[int] | None = None
    _site: str = field(init=False, default="")

    def __post_init__(self) -> None:
        if self.mode not in ("set", "add"):
            raise TadaError(f"Unknown clamp mode {self.mode!r}; valid: ['set', 'add'].")
        object.__setattr__(self, "branch", Branch.parse(self.branch).value)
        object.__setattr__(self, "_site", sae_site(self.sae, self.site))
        object.__setattr__(self, "shape", _site_shape(self.sae, self._site, self.shape))
        n = int(as_sae(self.sae).cfg.d_sae)
        lists = self.features.values() if isinstance(self.features, Mapping) else [self.features]
        bad = sorted({int(f) for fs in lists for f in fs if not 0 <= int(f) < n})
        if bad or not all(len(fs) for fs in lists):
            raise TadaError(f"Feature indices must be non-empty lists in 0..{n - 1}; bad: {bad}.")

    @classmethod
    def from_selection(cls, sae: nn.Module, selection: FeatureSelection, **kwargs: Any) -> "SAEClampSteerer":
        """Clamp the features of a selection, per step."""
        features = {s: selection.at(s) for s in selection.steps}
        return cls(sae, features, site=selection.site, **kwargs)

    def _steps(self) -> Steps:
        if isinstance(self.features, Mapping):
            return Steps.of(select_steps(self.steps, sorted(self.features)))
        return Steps.parse(self.steps)

    def _features(self, step: int) -> list[int]:
        if isinstance(self.features, Mapping):
            return [int(f) for f in self.features[step]]
        return [int(f) for f in self.features]

    def edits(self, alpha: float) -> list[Edit]:
        """One edit at the SAE's site that clamps inside the SAE (see the class)."""
        sae, mode, alpha = as_sae(self.sae), self.mode, float(alpha)

        @torch.no_grad()
        def clamp(x: Tensor, step: int) -> Tensor:
            index = torch.as_tensor(self._features(step), device=sae.device)
            vectors = x.reshape(*x.shape[:2], -1).to(device=sae.device, dtype=sae.dtype)
            features = sae.encode(vectors)
            target = torch.as_tensor(self.target, dtype=features.dtype, device=features.device)
            chosen = features[..., index]
            delta = alpha * (target - chosen) if mode == "set" else alpha * target.expand_as(chosen)
            changed = features.clone()
            changed[..., index] = chosen + delta
            shift = sae.decode(changed) - sae.decode(features)
            return x + shift.reshape(x.shape).to(device=x.device, dtype=x.dtype)

        return [Edit(self._site, Apply(clamp), steps=self._steps(), branch=self.branch)]

    def describe(self) -> dict[str, Any]:
        return {
            "method": "sae-clamp",
            "sites": [self._site],
            "steps": str(self._steps()),
            "branch": self.branch,
            "mode": self.mode,
            "target": self.target if isinstance(self.target, (int, float)) else list(self.target),
            "features": (
                {str(k): list(v) for k, v in self.features.items()}
                if isinstance(self.features, Mapping)
                else list(self.features)
            ),
        }
