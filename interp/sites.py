"""Intervention sites: where in a denoiser an activation can be read or written.

A site is a frozen value with one canonical string form that round-trips exactly::

    cross.7.head.3   per-head output of cross-attention layer 7, head 3  [batch seq d_head]
    cross.7.heads    all heads of that layer, viewed per head           [batch seq head d_head]
    cross.7.out      output of the attention module (after to_out)      [batch seq d_model]
    cross.7.text     text input feeding keys and values (TADA's site)   [batch ctx d_ctx]
    cross.7.key.1    key projection over the text, key/value head 1     [batch ctx d_head]
    self.0.head.5    the same components for self-attention (no ``text``)

The components (``head``, ``heads``, ``out``, ``text``, ``mask``, ``queries``, ``keys``,
``key``, ``values``, ``value``, and any a plugin registers) are
an open vocabulary: see :mod:`interp.components`. ``layer`` counts attention modules of
one kind (self or cross) in execution order.

For what the vocabulary does not cover, a :class:`ModuleSite` reaches any module of the
denoiser by its dotted path::

    module.transformer_blocks.3.ff.output    output of that module     [batch *rest]
    module.transformer_blocks.3.norm1.input  its first positional input

Denoising steps and the CFG branch are not part of a site: they belong to the edit or
read that uses it (see :mod:`interp.edits`).

>>> site = Site.parse("cross.7.head.3")
>>> site, site.axes, site.whole().name
(Site(attention='cross', layer=7, component='head', head=3), 'batch seq d_head', 'cross.7.heads')
>>> as_any_site("module.transformer_blocks.3.ff.output")
ModuleSite(path='transformer_blocks.3.ff', port='output')
"""

import re
from dataclasses import dataclass
from typing import Literal, get_args

from interp.components import SiteComponent, component_names, get_component, whole_of
from interp.errors import SiteError

Attention = Literal["self", "cross"]
#: A component name; the valid ones are those registered in :mod:`interp.components`.
Component = str
ModulePort = Literal["input", "output"]

ATTENTIONS: tuple[str, ...] = get_args(Attention)
MODULE_PORTS: tuple[str, ...] = get_args(ModulePort)

_SITE_PATTERN = re.compile(
    r"^(?P<attention>[a-z]+)\.(?P<layer>-?[0-9]+)\.(?P<component>[a-z]+)(?:\.(?P<head>-?[0-9]+))?$",
    re.ASCII,
)
_MODULE_PATTERN = re.compile(
    r"^module\.(?P<path>[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)\.(?P<port>input|output)$", re.ASCII
)

SITE_GRAMMAR = (
    "'<attention>.<layer>.<component>[.<head>]' with attention in {self, cross}, "
    "component a registered one (head, heads, out, text, mask, queries, keys, key, values, "
    "value, ...); e.g. 'cross.7.head.3', 'cross.7.text', 'cross.7.key.1', 'self.0.out'"
)
MODULE_SITE_GRAMMAR = (
    "'module.<dotted module path>.<input|output>', e.g. 'module.transformer_blocks.3.ff.output'"
)


@dataclass(frozen=True, order=True)
class Site:
    """One intervention point of an attention module.

    Attributes:
        attention: ``"self"`` or ``"cross"`` attention.
        layer: Index of the attention module among those of the same kind, in
            execution order.
        component: A registered component name (:mod:`interp.components`): ``"head"``
            (one head's output), ``"heads"`` (all heads of the layer), ``"out"`` (the
            module's output), ``"text"`` (cross-attention text input), ...
        head: The index a component such as ``head`` selects, else ``None``.
    """

    attention: Attention
    layer: int
    component: Component
    head: int | None = None

    def __post_init__(self) -> None:
        if self.attention not in ATTENTIONS:
            raise SiteError(f"Unknown attention kind {self.attention!r}; valid kinds are {list(ATTENTIONS)}.")
        spec = get_component(self.component)
        if not isinstance(self.layer, int) or self.layer < 0:
            raise SiteError(f"Site layer must be a non-negative integer, got {self.layer!r}.")
        if spec.index is not None:
            if not isinstance(self.head, int) or self.head < 0:
                raise SiteError(
                    f"A {self.component!r} site needs a non-negative {spec.index} index, got "
                    f"{self.head!r} (write e.g. '{self.attention}.{self.layer}.{self.component}.0')."
                )
        elif self.head is not None:
            raise SiteError(
                f"Component {self.component!r} covers the whole layer and takes no head "
                f"index (got head={self.head}); use component 'head' for one head."
            )
        if self.attention not in spec.attentions:
            kinds = "/".join(spec.attentions)
            noun = "output" if spec.hook.port == "output" else "input"
            raise SiteError(
                f"Only {kinds}-attention has a {self.component} {noun}; "
                f"'{self.attention}.{self.layer}.{self.component}' does not exist (use "
                f"'{spec.attentions[0]}.<layer>.{self.component}')."
            )

    @classmethod
    def parse(cls, text: str) -> "Site":
        """Parse a canonical site string such as ``'cross.7.head.3'``.

        Raises:
            SiteError: If the string does not follow the grammar.
        """
        if not isinstance(text, str):
            raise SiteError(f"A site must be a string like 'cross.7.head.3', got {text!r}.")
        match = _SITE_PATTERN.match(text.strip())
        if match is None:
            raise SiteError(f"Malformed site {text!r}: expected {SITE_GRAMMAR}.")
        if match["attention"] not in ATTENTIONS:
            raise SiteError(
                f"Unknown attention kind {match['attention']!r} in {text!r}; valid kinds are "
                f"{list(ATTENTIONS)}."
            )
        if match["component"] not in component_names():
            raise SiteError(
                f"Unknown site component {match['component']!r} in {text!r}; valid components "
                f"are {component_names()}."
            )
        head = match["head"]
        return cls(
            attention=match["attention"],  # pyright: ignore[reportArgumentType]
            layer=int(match["layer"]),
            component=match["component"],
            head=None if head is None else int(head),
        )

    @property
    def spec(self) -> SiteComponent:
        """The registered component of this site."""
        return get_component(self.component)

    @property
    def name(self) -> str:
        """The canonical string form, e.g. ``'cross.7.head.3'``."""
        base = f"{self.attention}.{self.layer}.{self.component}"
        return base if self.head is None else f"{base}.{self.head}"

    @property
    def axes(self) -> str:
        """Named axes of the tensor at this site (the component's axes)."""
        return self.spec.axes

    @property
    def module_key(self) -> tuple[str, int]:
        """The attention module this site lives in, as ``(attention, layer)``."""
        return (self.attention, self.layer)

    def whole(self) -> "Site":
        """The site of the component's whole tensor (``cross.1.head.2`` -> ``cross.1.heads``);
        see :func:`interp.components.whole_of`."""
        whole = whole_of(self.spec)
        return self if whole.name == self.component else Site(self.attention, self.layer, whole.name)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, order=True)
class ModuleSite:
    """The escape hatch: the input or output of any module of the denoiser, by path.

    The canonical string is ``module.<path>.<port>``, e.g.
    ``module.transformer_blocks.3.ff.output``; it round-trips exactly. ``input`` is the
    module's first positional argument, ``output`` its output (the first element of a
    tuple). The tensor is exposed whole, batch first (``batch *rest``); the path is
    checked against the loaded denoiser when a generation is planned.

    Attributes:
        path: Dotted path of the module inside the denoiser.
        port: ``"input"`` or ``"output"``.
    """

    path: str
    port: ModulePort

    def __post_init__(self) -> None:
        if self.port not in MODULE_PORTS:
            raise SiteError(f"Module site port must be one of {list(MODULE_PORTS)}, got {self.port!r}.")
        if not isinstance(self.path, str) or _MODULE_PATTERN.match(f"module.{self.path}.{self.port}") is None:
            raise SiteError(
                f"Module path {self.path!r} is not a dotted path of module names such as "
                f"'transformer_blocks.3.ff'."
            )

    @classmethod
    def parse(cls, text: str) -> "ModuleSite":
        """Parse ``'module.<path>.<input|output>'``."""
        match = _MODULE_PATTERN.match(text.strip())
        if match is None:
            raise SiteError(f"Malformed module site {text!r}: expected {MODULE_SITE_GRAMMAR}.")
        return cls(match["path"], match["port"])  # pyright: ignore[reportArgumentType]

    @property
    def name(self) -> str:
        """The canonical string form, e.g. ``'module.transformer_blocks.3.ff.output'``."""
        return f"module.{self.path}.{self.port}"

    @property
    def axes(self) -> str:
        """The module's tensor is exposed whole: ``batch *rest``."""
        return "batch *rest"

    def whole(self) -> "ModuleSite":
        """A module site is its own whole tensor."""
        return self

    def __str__(self) -> str:
        return self.name


#: Any site: an attention component or a module reached by path.
AnySite = Site | ModuleSite


def as_site(site: "Site | str") -> Site:
    """Accept a :class:`Site` or its canonical string.

    Raises:
        SiteError: For a malformed string, or a ``module.`` site, which only
            :class:`~interp.edits.Edit` and :class:`~interp.edits.Read` accept.
    """
    if isinstance(site, Site):
        return site
    if isinstance(site, ModuleSite) or (isinstance(site, str) and site.strip().startswith("module.")):
        raise SiteError(
            f"{str(site)!r} is a module site (the escape hatch); only Edit and Read (interp.run) "
            f"accept those. Sweeps, caches and steering take attention sites such as "
            f"'cross.7.head.3'."
        )
    return Site.parse(site)


def as_any_site(site: "Site | ModuleSite | str") -> AnySite:
    """Accept any site value or its canonical string; ``module.<path>.<port>`` strings
    give a :class:`ModuleSite`."""
    if isinstance(site, (Site, ModuleSite)):
        return site
    if isinstance(site, str) and site.strip().startswith("module."):
        return ModuleSite.parse(site)
    return Site.parse(site)
