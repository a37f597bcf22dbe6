"""The component registry: the open vocabulary of what a site reads or writes in an
attention module.

A :class:`SiteComponent` says, once, everything the core needs to know about one kind of
site: its name (the third part of ``cross.7.head.3``), where it hooks (:class:`Hook`:
which module of the attention block, and which of its input, output or a keyword
argument), how the hooked tensor is viewed (an einops pattern), its named axes, and
whether a site of it selects one index along an axis (``head.3``). The catalog, the
runner and patching consult this registry; nothing switches on component names.

The built-in components, in listing order::

    text    keyword argument carrying the text input      [batch ctx d_ctx]  (cross only)
    heads   input of the output projection, per head      [batch seq head d_head]
    head    the same, one head's slice                    [batch seq d_head]
    out     output of the attention module                [batch seq d_model]
    mask    the text attention mask, as an additive bias  [batch ctx]        (cross, read only)
    queries output of the query projection, per head      [batch seq head d_head]
    keys    output of the key projection, per kv head     [batch ctx kv_head d_head] (cross only)
    key     the same, one key/value head's slice          [batch ctx d_head]  (cross only)
    values  output of the value projection, per kv head   [batch ctx kv_head d_head] (cross only)
    value   the same, one key/value head's slice          [batch ctx d_head]  (cross only)

Add one with :func:`register_component`; see ``docs/sites.md``.

>>> heads = get_component("heads")
>>> heads.hook, heads.view
(Hook(target='out_proj', port='input', rank=10), 'batch seq (head d_head) -> batch seq head d_head')
>>> import torch
>>> heads.to_view(torch.zeros(2, 5, 12), {"head": 3, "d_head": 4}).shape
torch.Size([2, 5, 3, 4])
"""

from dataclasses import dataclass
from typing import Literal

import torch
from einops import rearrange
from torch import Tensor

from interp.errors import SiteError

Port = Literal["input", "output", "text", "mask"]
#: Ports that are keyword arguments of the attention module, named by its
#: :class:`~interp.catalog.AttentionModule` (``text_argument``, ``mask_argument``).
KEYWORD_PORTS = ("text", "mask")
#: Ports that can be read but not written (the mask is derived: see :func:`context_bias`).
READ_ONLY_PORTS = ("mask",)

#: Axis name -> attribute of :class:`interp.catalog.AttentionModule` giving its size.
AXIS_SIZES: dict[str, str] = {
    "head": "n_heads",
    "kv_head": "n_kv_heads",
    "d_head": "d_head",
    "d_model": "d_model",
    "d_ctx": "d_context",
}
#: Axes whose size depends on the input, not on the module.
FREE_AXES = ("batch", "seq", "ctx")


@dataclass(frozen=True)
class Hook:
    """Where a component's tensor is fetched and written back.

    Attributes:
        target: ``"module"`` (the attention module itself), ``"out_proj"`` (its output
            projection, :attr:`~interp.catalog.AttentionModule.out_proj`) or a dotted
            path relative to the attention module (e.g. ``"to_q"``).
        port: ``"input"`` (first positional argument), ``"output"`` (the output, or its
            first element if a tuple), ``"text"`` (the keyword argument named by
            :attr:`~interp.catalog.AttentionModule.text_argument`) or ``"mask"`` (the
            keyword argument named by
            :attr:`~interp.catalog.AttentionModule.mask_argument`, read as an additive
            bias over the context positions: :func:`context_bias`; read only).
        rank: Position of this hook among the hooks of one attention module in the order
            the model runs them (module input < inner modules < module output). Hooks
            of equal rank must be the same hook.
    """

    target: str
    port: Port
    rank: int

    def __post_init__(self) -> None:
        if self.port not in ("input", "output", *KEYWORD_PORTS):
            raise SiteError(f"Hook port must be 'input', 'output', 'text' or 'mask', got {self.port!r}.")


@dataclass(frozen=True)
class SiteComponent:
    """One kind of site in an attention module.

    Attributes:
        name: The component's name in site strings (lowercase letters only).
        hook: Where its tensor is fetched and written.
        axes: Named axes of the site tensor (one axis vocabulary, see
            :mod:`interp.types`), e.g. ``"batch seq head d_head"``.
        view: einops pattern from the hooked tensor to the view (the view's axes are
            ``axes``, plus ``index`` when the component selects one index), or ``None``
            when the hooked tensor is the view. Sizes come from the module's geometry.
        index: Axis of the view that a site selects one index of (``"head"`` for
            ``cross.7.head.3``), or ``None`` when a site covers the whole tensor.
        attentions: Attention kinds that have this component.
        description: Where the component hooks, in words, for listings.
    """

    name: str
    hook: Hook
    axes: str
    description: str
    view: str | None = None
    index: str | None = None
    attentions: tuple[str, ...] = ("self", "cross")

    def __post_init__(self) -> None:
        if not self.name.isascii() or not self.name.isalpha() or not self.name.islower():
            raise SiteError(f"A component name is lowercase letters only, got {self.name!r}.")
        unknown = [a for a in self.axes.split() if a not in AXIS_SIZES and a not in FREE_AXES]
        if unknown:
            raise SiteError(
                f"Component {self.name!r} has axes {unknown} outside the axis vocabulary "
                f"{[*FREE_AXES, *AXIS_SIZES]}."
            )
        if self.view is not None and self.view.split("->")[-1].split() != self.view_axes:
            raise SiteError(
                f"Component {self.name!r}: its view {self.view!r} must produce the axes "
                f"{' '.join(self.view_axes)!r} (its axes, with the index axis) by name."
            )

    @property
    def view_axes(self) -> list[str]:
        """Axes of the view before the site's index is selected."""
        axes = self.axes.split()
        if self.index is not None:
            position = next((axes.index(a) + 1 for a in ("seq", "ctx") if a in axes), 1)
            axes.insert(position, self.index)
        return axes

    def to_view(self, x: Tensor, sizes: dict[str, int]) -> Tensor:
        """The hooked tensor viewed with :attr:`view_axes` (a no-op without a pattern)."""
        if self.view is None:
            return x
        return rearrange(x, self.view, **_pattern_sizes(self.view, sizes))

    def from_view(self, view: Tensor, sizes: dict[str, int]) -> Tensor:
        """Inverse of :meth:`to_view`: the tensor to write back to the hook."""
        if self.view is None:
            return view
        left, right = self.view.split("->")
        return rearrange(view, f"{right} -> {left}", **_pattern_sizes(self.view, sizes))

    def index_position(self) -> int:
        """Position of :attr:`index` among :attr:`view_axes`."""
        if self.index is None:
            raise SiteError(f"Component {self.name!r} selects no index.")
        return self.view_axes.index(self.index)


def _pattern_sizes(pattern: str, sizes: dict[str, int]) -> dict[str, int]:
    names = set(pattern.replace("(", " ").replace(")", " ").replace("->", " ").split())
    return {name: size for name, size in sizes.items() if name in names}


_REGISTRY: dict[str, SiteComponent] = {}


def register_component(component: SiteComponent) -> SiteComponent:
    """Add a component to the vocabulary; listing order is registration order.

    Raises:
        SiteError: If a component of that name is already registered.
    """
    if component.name in _REGISTRY:
        raise SiteError(
            f"A site component named {component.name!r} is already registered "
            f"({_REGISTRY[component.name].description}); choose another name."
        )
    _REGISTRY[component.name] = component
    return component


def unregister_component(name: str) -> None:
    """Remove a component (for tests and plugins that replace their own)."""
    get_component(name)
    del _REGISTRY[name]


def get_component(name: str) -> SiteComponent:
    """The registered component called ``name``.

    Raises:
        SiteError: Naming the valid components.
    """
    found = _REGISTRY.get(name)
    if found is None:
        raise SiteError(f"Unknown site component {name!r}; valid components are {component_names()}.")
    return found


def component_names() -> list[str]:
    """Names of the registered components, in listing order."""
    return list(_REGISTRY)


def whole_of(component: SiteComponent) -> SiteComponent:
    """The component covering the whole tensor that ``component`` selects an index of
    (same hook and view, no index); a component without an index is its own whole.

    Raises:
        SiteError: If no registered component covers that tensor whole.
    """
    if component.index is None:
        return component
    for other in _REGISTRY.values():
        if other.index is None and other.hook == component.hook and other.view == component.view:
            return other
    raise SiteError(
        f"Component {component.name!r} selects a {component.index} of a tensor that no "
        f"registered component covers whole; register one with the same hook and view."
    )


def indexed_part(component: SiteComponent) -> SiteComponent | None:
    """The registered component selecting one index of ``component``'s whole tensor, if any."""
    for other in _REGISTRY.values():
        if other.index is not None and other.hook == component.hook and other.view == component.view:
            return other
    return None


_HEADS_VIEW = "batch seq (head d_head) -> batch seq head d_head"

register_component(
    SiteComponent(
        "text",
        Hook("module", "text", 0),
        "batch ctx d_ctx",
        "keyword argument carrying the text input of the module",
        attentions=("cross",),
    )
)
register_component(
    SiteComponent(
        "heads",
        Hook("out_proj", "input", 10),
        "batch seq head d_head",
        "input of the output projection, viewed per head",
        view=_HEADS_VIEW,
    )
)
register_component(
    SiteComponent(
        "head",
        Hook("out_proj", "input", 10),
        "batch seq d_head",
        "input of the output projection, one head's slice",
        view=_HEADS_VIEW,
        index="head",
    )
)
register_component(
    SiteComponent("out", Hook("module", "output", 20), "batch seq d_model", "output of the attention module")
)
register_component(
    SiteComponent(
        "mask",
        Hook("module", "mask", 1),
        "batch ctx",
        "keyword argument carrying the text attention mask, as an additive bias (read only)",
        attentions=("cross",),
    )
)
register_component(
    SiteComponent(
        "queries",
        Hook("to_q", "output", 4),
        "batch seq head d_head",
        "output of the query projection, viewed per head",
        view=_HEADS_VIEW,
    )
)
# Keys and values of cross-attention are per key/value head (fewer than the query
# heads under grouped-query attention: query head h reads kv head h // (heads / kv_heads)).
_KV_VIEW = "batch ctx (kv_head d_head) -> batch ctx kv_head d_head"
for _name, _target, _rank in (("key", "to_k", 5), ("value", "to_v", 6)):
    register_component(
        SiteComponent(
            f"{_name}s",
            Hook(_target, "output", _rank),
            "batch ctx kv_head d_head",
            f"output of the {_name} projection over the text, viewed per key/value head",
            view=_KV_VIEW,
            attentions=("cross",),
        )
    )
    register_component(
        SiteComponent(
            _name,
            Hook(_target, "output", _rank),
            "batch ctx d_head",
            f"output of the {_name} projection over the text, one key/value head's slice",
            view=_KV_VIEW,
            index="kv_head",
            attentions=("cross",),
        )
    )


def context_bias(mask: Tensor | None, text: Tensor) -> Tensor:
    """The text attention mask an attention module receives, as an additive bias over
    the context positions ``[batch, ctx]`` (``0``: attended, ``-inf`` or a large negative
    number: masked out).

    Models pass the mask in several forms: none at all (every position attended), a
    boolean or 0/1 keep-mask ``[batch, ctx]`` (``True``: attend), or an additive float
    bias ``[batch, ctx]`` / ``[batch, 1, ctx]`` (diffusers' UNets turn their
    ``encoder_attention_mask`` into ``(1 - mask) * -10000``).

    Args:
        mask: The module's mask keyword argument.
        text: Its text input ``[batch, ctx, d_ctx]`` (gives the shape when there is no mask).
    """
    batch, ctx = text.shape[0], text.shape[1]
    if mask is None:
        return torch.zeros(batch, ctx, dtype=torch.float32, device=text.device)
    if mask.dim() == 3 and mask.shape[1] == 1:
        mask = mask[:, 0]
    if mask.dim() != 2 or tuple(mask.shape) != (batch, ctx):
        raise SiteError(
            f"The text attention mask has shape {tuple(mask.shape)}; expected [batch, ctx] = "
            f"[{batch}, {ctx}] or [batch, 1, ctx] (a per-query mask is not supported)."
        )
    if mask.dtype == torch.bool:
        return torch.zeros(batch, ctx, device=text.device).masked_fill(~mask, float("-inf"))
    return mask.float()
