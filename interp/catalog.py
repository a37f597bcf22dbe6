"""The catalog of a model's attention modules and the sites they offer.

Adapters describe each attention module of their denoiser with an
:class:`AttentionModule` (path, kind, head geometry read from the loaded weights); the
:class:`SiteCatalog` turns that into sites, validates site strings against the real
model, and selects sites penzai-style with :meth:`SiteCatalog.where`.
"""

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from interp.components import AXIS_SIZES, component_names, get_component
from interp.errors import SiteError, did_you_mean
from interp.sites import Site, as_site


@dataclass(frozen=True)
class AttentionModule:
    """Geometry and location of one attention module in a denoiser.

    Attributes:
        path: Dotted path of the module inside the denoiser, e.g.
            ``'transformer_blocks.3.attn2'``.
        attention: ``"self"`` or ``"cross"``.
        layer: Index among modules of the same kind, in execution order.
        n_heads: Number of query heads (= heads of the per-head output).
        d_head: Width of one head's output.
        n_kv_heads: Number of key/value heads (``< n_heads`` under GQA).
        d_model: Width of the module's output.
        d_context: Width of the text input for cross-attention, else ``None``.
        out_proj: Dotted path of the output projection whose input is the
            concatenation of head outputs, e.g. ``'transformer_blocks.3.attn2.to_out.0'``.
        text_argument: Name of the keyword argument carrying the text input
            (cross-attention only).
        mask_argument: Name of the keyword argument carrying the text attention mask
            (cross-attention only; the model may pass ``None`` there: no mask).
    """

    path: str
    attention: str
    layer: int
    n_heads: int
    d_head: int
    n_kv_heads: int
    d_model: int
    d_context: int | None
    out_proj: str
    text_argument: str | None = None
    mask_argument: str | None = None

    def keyword(self, port: str) -> str | None:
        """The keyword argument behind a keyword port (``text`` or ``mask``), if any."""
        return {"text": self.text_argument, "mask": self.mask_argument}.get(port)

    def kv_head_of(self, head: int) -> int:
        """The key/value head that query head ``head`` reads (grouped-query attention
        repeats each key/value head for ``n_heads / n_kv_heads`` consecutive query heads)."""
        return head // (self.n_heads // self.n_kv_heads)

    def sizes(self) -> dict[str, int]:
        """Size of every geometry axis (``head``, ``d_head``, ``d_model``, ``d_ctx``)."""
        return {axis: int(getattr(self, attr) or 0) for axis, attr in AXIS_SIZES.items()}

    def dims(self, component: str) -> dict[str, int]:
        """Sizes of the non-batch, non-sequence axes of a component's tensor."""
        sizes = self.sizes()
        return {axis: sizes[axis] for axis in get_component(component).axes.split() if axis in sizes}

    def hook_path(self, component: str) -> str:
        """Dotted path (inside the denoiser) of the module a component hooks."""
        target = get_component(component).hook.target
        if target == "module":
            return self.path
        if target == "out_proj":
            return self.out_proj
        return f"{self.path}.{target}"


class SiteCatalog:
    """All sites of one model, derived from its attention modules."""

    def __init__(self, modules: Sequence[AttentionModule]):
        self.modules: tuple[AttentionModule, ...] = tuple(modules)
        self._by_key = {(m.attention, m.layer): m for m in self.modules}
        if len(self._by_key) != len(self.modules):
            raise ValueError("Two attention modules share the same (attention, layer) key.")

    def count(self, attention: str) -> int:
        """Number of attention modules of one kind."""
        return sum(1 for m in self.modules if m.attention == attention)

    def module(self, attention: str, layer: int) -> AttentionModule:
        """The module behind ``(attention, layer)``, with a helpful error if absent."""
        found = self._by_key.get((attention, layer))
        if found is None:
            n = self.count(attention)
            valid = f"layers 0..{n - 1}" if n else "none (the model has no such attention)"
            raise SiteError(
                f"No {attention}-attention layer {layer} in this model; valid {attention} layers: {valid}."
            )
        return found

    def validate(self, site: Site | str) -> Site:
        """Check that a site exists in this model and return it as a :class:`Site`.

        Raises:
            SiteError: naming the valid layers, heads or components.
        """
        parsed = as_site(site)
        module = self.module(parsed.attention, parsed.layer)
        index = parsed.spec.index
        if index is not None and parsed.head is not None:
            count = module.sizes()[index]
            if parsed.head >= count:
                noun = index.replace("_", "/").replace("kv/", "key/value ")
                raise SiteError(
                    f"{noun.capitalize()} {parsed.head} out of range in {parsed.name}: "
                    f"{parsed.attention}-attention layer {parsed.layer} has {count} "
                    f"{noun}s, numbered 0..{count - 1}."
                )
        return parsed

    def sites(self, components: Iterable[str] | None = None) -> list[Site]:
        """Every site of the model for the given components (default: all registered),
        in execution order, components in registration order within a module."""
        names = component_names()
        wanted = set(names if components is None else components)
        unknown = wanted - set(names)
        if unknown:
            raise SiteError(f"Unknown component(s) {sorted(unknown)}; valid: {names}.")
        out: list[Site] = []
        for m in self.modules:
            for name in names:
                spec = get_component(name)
                if name not in wanted or m.attention not in spec.attentions:
                    continue
                if spec.index is None:
                    out.append(Site(m.attention, m.layer, name))  # pyright: ignore[reportArgumentType]
                else:
                    count = m.sizes()[spec.index]
                    out.extend(Site(m.attention, m.layer, name, i) for i in range(count))  # pyright: ignore[reportArgumentType]
        return out

    def where(
        self,
        *,
        attention: str | None = None,
        layer: int | Iterable[int] | None = None,
        component: str | Iterable[str] = "head",
        head: int | Iterable[int] | None = None,
    ) -> list[Site]:
        """Select sites by attention kind, layers, components and heads.

        Example:
            ``catalog.where(attention="cross", layer=range(2, 4))`` gives every head of
            cross-attention layers 2 and 3.
        """
        components = (component,) if isinstance(component, str) else tuple(component)
        layers = None if layer is None else ({layer} if isinstance(layer, int) else set(layer))
        heads = None if head is None else ({head} if isinstance(head, int) else set(head))
        if attention is not None and attention not in ("self", "cross"):
            raise SiteError(f"Unknown attention kind {attention!r}; valid: ['self', 'cross'].")
        if layers is not None and attention is not None:
            for value in layers:
                self.module(attention, value)
        selected = [
            s
            for s in self.sites(components)
            if (attention is None or s.attention == attention)
            and (layers is None or s.layer in layers)
            and (heads is None or s.head is None or s.head in heads)
        ]
        return selected

    def parse_many(self, names: Iterable[str | Site]) -> list[Site]:
        """Validate many site strings, reporting every bad one at once."""
        good: list[Site] = []
        errors: list[str] = []
        for name in names:
            try:
                good.append(self.validate(name))
            except SiteError as error:
                errors.append(str(error))
        if errors:
            raise SiteError("\n".join(errors))
        return good

    def records(self, components: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """One JSON-ready record per site (name, module, attention, layer, head, shape)."""
        records = []
        for site in self.sites(components):
            module = self.module(site.attention, site.layer)
            spec = site.spec
            where = spec.description
            keyword = module.keyword(spec.hook.port)
            if keyword is not None:
                where = f"keyword argument '{keyword}' of the module"
            records.append(
                {
                    "name": site.name,
                    "module": module.hook_path(site.component),
                    "attention": site.attention,
                    "layer": site.layer,
                    "component": site.component,
                    "head": site.head,
                    "shape": site.axes,
                    "dims": module.dims(site.component),
                    "where": where,
                }
            )
        return records

    def summary(self) -> dict[str, dict[str, int]]:
        """Counts per attention kind, for listings and docs."""
        result: dict[str, dict[str, int]] = {}
        for kind in ("self", "cross"):
            mods = [m for m in self.modules if m.attention == kind]
            result[kind] = {
                "layers": len(mods),
                "head_sites": sum(m.n_heads for m in mods),
            }
        return result

    def module_table(self) -> list[dict[str, Any]]:
        """The attention modules as plain dictionaries."""
        return [asdict(m) for m in self.modules]

    def suggest(self, text: str) -> str:
        """A did-you-mean hint for a mistyped site string."""
        return did_you_mean(text, [s.name for s in self.sites()])
