"""How a site's tensor becomes SAE input vectors, and back.

An SAE sees one vector per (row, position): the site tensor ``[rows, seq, *dims]`` is
viewed as ``[rows, seq, d]`` with ``d`` the product of the site's own axes (``d_model``
for ``out``, ``d_head`` for ``head``, ``head x d_head`` for ``heads`` -- the concatenated
head outputs, exactly the input of the output projection -- and ``d_ctx`` for ``text``).
"""

import math
from typing import TYPE_CHECKING

from torch import Tensor, nn

from interp.adapter import ModelAdapter
from interp.errors import TadaError
from interp.sites import Site, as_site

if TYPE_CHECKING:  # sae-lens takes ~5 s to import: only the type checker reads it here
    from sae_lens import SAE, SAEConfig


def site_shape(adapter: ModelAdapter, site: Site | str) -> tuple[int, ...]:
    """The site's own axes (everything after ``[rows, seq]``), from the loaded model."""
    parsed = adapter.catalog.validate(site)
    module = adapter.catalog.module(parsed.attention, parsed.layer)
    return tuple(module.dims(parsed.component).values())


def site_width(adapter: ModelAdapter, site: Site | str) -> int:
    """Width ``d`` of the SAE input vectors of a site."""
    return math.prod(site_shape(adapter, site))


def to_vectors(x: Tensor) -> Tensor:
    """``[rows, seq, *dims] -> [rows, seq, d]`` (a view when possible)."""
    return x.reshape(*x.shape[:2], -1)


def from_vectors(v: Tensor, like: Tensor) -> Tensor:
    """``[rows, seq, d] -> like.shape``."""
    return v.reshape(like.shape)


def hook_name(site: Site | str) -> str:
    """The canonical site string, used as the SAE's ``hook_name``."""
    return as_site(site).name


def as_sae(sae: nn.Module) -> "SAE[SAEConfig]":
    """``sae`` as the sae-lens SAE it must be (its ``cfg``, ``encode``, ``W_dec`` ...).

    sae-lens is imported here, not at module level: whoever holds an SAE has imported it.
    """
    from sae_lens import SAE

    if not isinstance(sae, SAE):
        raise TadaError(
            f"Expected an sae-lens SAE (from saes.load_sae or saes.train_saes), got {type(sae).__name__}."
        )
    return sae
