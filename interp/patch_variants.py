"""What one patched row patches: a :class:`Variant` (sites intervened on together, at
some context tokens and denoising steps), and the cached source values written there.

A sweep (:func:`interp.patching.sweep`) runs every variant as one row of a batched
generation; the values a row writes come from the source run's reads, sliced per step
and sample by :func:`cached_value`.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from interp.edits import Replace, ReplaceTokens
from interp.sites import Site, as_site


@dataclass(frozen=True)
class Variant:
    """A set of sites intervened on together, with a label for tables and plots.

    Attributes:
        label: Name in tables and plots.
        sites: The sites patched together.
        tokens: Patch only these positions of the axis after the rows (the context
            tokens of ``text``, ``keys``/``key``, ``values``/``value`` sites:
            :class:`~interp.edits.ReplaceTokens`); ``None``: every position.
        steps: The denoising steps this variant is patched at: ``None`` takes the sweep's
            ``steps``; an empty tuple patches nothing (the row is the unpatched target
            run, e.g. a window of zero steps).
    """

    label: str
    sites: tuple[Site, ...]
    tokens: tuple[int, ...] | None = None
    steps: tuple[int, ...] | None = None

    @classmethod
    def of(
        cls,
        sites: Sequence[Site | str],
        label: str | None = None,
        tokens: Sequence[int] | None = None,
        steps: Sequence[int] | None = None,
    ) -> "Variant":
        parsed = tuple(as_site(s) for s in sites)
        return cls(
            label or "+".join(s.name for s in parsed),
            parsed,
            None if tokens is None else tuple(tokens),
            None if steps is None else tuple(steps),
        )

    def replace(self, value: dict[int, Tensor]) -> Replace | ReplaceTokens:
        """The operation writing the cached ``value`` at this variant's positions."""
        return Replace(value) if self.tokens is None else ReplaceTokens(value, self.tokens)


def single_site_variants(sites: Sequence[Site | str]) -> list[Variant]:
    """One variant per site."""
    return [Variant.of([s]) for s in sites]


def stage_site(site: Site) -> Site:
    """The site whose read caches what ``site`` needs (a head lives in ``heads``)."""
    return site.whole()


def cached_value(
    cache: dict[str, Tensor],
    steps: tuple[int, ...],
    site: Site,
    sample: int,
    rows_per_sample: int,
    n_samples: int,
) -> dict[int, Tensor]:
    """Per-step slice of the source activation for ``site`` and one source sample."""
    stacked = cache[stage_site(site).name]  # [step, rows, ...]
    # rows of the read are ordered branch-major: (uncond samples..., cond samples...)
    rows = [sample + r * n_samples for r in range(rows_per_sample)]
    values = stacked[:, rows]
    if site.spec.index is not None and site.head is not None:
        values = values.select(site.spec.index_position() + 1, site.head)  # after the step axis
    return {step: values[i] for i, step in enumerate(steps)}
