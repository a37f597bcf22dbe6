"""Intervention sites: where in a denoiser an activation can be read or written.

A site is a frozen value with one canonical string form that round-trips exactly::

    cross.7.head.3   per-head output of cross-attention layer 7, head 3  [batch seq d_head]
    cross.7.heads    all heads of that layer, viewed per head           [batch seq head d_head]
    cross.7.out      output of the attention module (after to_out)      [batch seq d_model]
    cross.7.text     text input feeding keys and values (TADA's site)   [batch ctx d_ctx]
    self.0.head.5    the same components for self-attention (no ``text``)

``layer`` counts attention modules of one kind (self or cross) in execution order.
Denoising steps and the CFG branch are not part of a site: they belong to the edit or
read that uses it (see :mod:`interp.edits`).
"""

import re
from dataclasses import dataclass
from typing import Literal, get_args

from interp.errors import SiteError

Attention = Literal["self", "cross"]
Component = Literal["head", "heads", "out", "text"]

ATTENTIONS: tuple[str, ...] = get_args(Attention)
COMPONENTS: tuple[str, ...] = get_args(Component)

#: Named axes of the tensor each component exposes, in order.
COMPONENT_AXES: dict[str, str] = {
    "head": "batch seq d_head",
    "heads": "batch seq head d_head",
    "out": "batch seq d_model",
    "text": "batch ctx d_ctx",
}

_SITE_PATTERN = re.compile(
    r"^(?P<attention>[a-z]+)\.(?P<layer>-?[0-9]+)\.(?P<component>[a-z]+)(?:\.(?P<head>-?[0-9]+))?$",
    re.ASCII,
)

SITE_GRAMMAR = (
    "'<attention>.<layer>.<component>[.<head>]' with attention in {self, cross}, "
    "component in {head, heads, out, text}; e.g. 'cross.7.head.3', 'cross.7.text', "
    "'self.0.out'"
)


@dataclass(frozen=True, order=True)
class Site:
    """One intervention point of a denoiser.

    Attributes:
        attention: ``"self"`` or ``"cross"`` attention.
        layer: Index of the attention module among those of the same kind, in
            execution order.
        component: ``"head"`` (one head's output), ``"heads"`` (all heads of the
            layer), ``"out"`` (the module's output) or ``"text"`` (cross-attention
            text input).
        head: Head index for ``component == "head"``, else ``None``.
    """

    attention: Attention
    layer: int
    component: Component
    head: int | None = None

    def __post_init__(self) -> None:
        if self.attention not in ATTENTIONS:
            raise SiteError(
                f"Unknown attention kind {self.attention!r}; valid kinds are {list(ATTENTIONS)}."
            )
        if self.component not in COMPONENTS:
            raise SiteError(
                f"Unknown site component {self.component!r}; valid components are "
                f"{list(COMPONENTS)}."
            )
        if not isinstance(self.layer, int) or self.layer < 0:
            raise SiteError(f"Site layer must be a non-negative integer, got {self.layer!r}.")
        if self.component == "head":
            if not isinstance(self.head, int) or self.head < 0:
                raise SiteError(
                    f"A 'head' site needs a non-negative head index, got {self.head!r} "
                    f"(write e.g. '{self.attention}.{self.layer}.head.0')."
                )
        elif self.head is not None:
            raise SiteError(
                f"Component {self.component!r} covers the whole layer and takes no head "
                f"index (got head={self.head}); use component 'head' for one head."
            )
        if self.component == "text" and self.attention != "cross":
            raise SiteError(
                f"Only cross-attention has a text input; 'self.{self.layer}.text' does not "
                f"exist (use 'cross.<layer>.text')."
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
        if match["component"] not in COMPONENTS:
            raise SiteError(
                f"Unknown site component {match['component']!r} in {text!r}; valid components "
                f"are {list(COMPONENTS)}."
            )
        head = match["head"]
        return cls(
            attention=match["attention"],  # type: ignore[arg-type]
            layer=int(match["layer"]),
            component=match["component"],  # type: ignore[arg-type]
            head=None if head is None else int(head),
        )

    @property
    def name(self) -> str:
        """The canonical string form, e.g. ``'cross.7.head.3'``."""
        base = f"{self.attention}.{self.layer}.{self.component}"
        return base if self.head is None else f"{base}.{self.head}"

    @property
    def axes(self) -> str:
        """Named axes of the tensor at this site (see :data:`COMPONENT_AXES`)."""
        return COMPONENT_AXES[self.component]

    @property
    def module_key(self) -> tuple[str, int]:
        """The attention module this site lives in, as ``(attention, layer)``."""
        return (self.attention, self.layer)

    def __str__(self) -> str:
        return self.name


def as_site(site: "Site | str") -> Site:
    """Accept a :class:`Site` or its canonical string."""
    return site if isinstance(site, Site) else Site.parse(site)
