"""Named sources of ready counterfactual prompt pairs.

A source is a function ``(concepts, per_concept, seed) -> list[PromptPair]``. The core
ships ``tada`` (the paper's 21 concepts); model packages add their own under the
entry-point group ``tada_interp.pairs`` (SynthMusic registers ``synthmusic``).
"""

from collections.abc import Callable, Sequence

from interp.errors import TadaError, did_you_mean
from interp.plugins import load_entry_points
from interp.prompts import PromptPair, tada_pairs

PairSource = Callable[[Sequence[str] | None, int, int], list[PromptPair]]
ENTRY_POINT_GROUP = "tada_interp.pairs"


def _tada(concepts: Sequence[str] | None, per_concept: int, seed: int) -> list[PromptPair]:
    return tada_pairs(list(concepts) if concepts else None, per_concept)


_SOURCES: dict[str, PairSource] = {"tada": _tada}
_loaded = False


def sources() -> dict[str, PairSource]:
    """All pair sources, plug-ins included."""
    global _loaded
    if not _loaded:
        _loaded = True
        for point, source in load_entry_points(ENTRY_POINT_GROUP, "pair source"):
            if point.name in _SOURCES:
                raise TadaError(f"Two pair sources are named {point.name!r}; names must be unique.")
            _SOURCES[point.name] = source
    return dict(_SOURCES)


def pairs_from(
    name: str, concepts: Sequence[str] | None = None, per_concept: int = 8, seed: int = 0
) -> list[PromptPair]:
    """Pairs from the named source (e.g. ``'tada'``, ``'synthmusic'``)."""
    found = sources()
    if name not in found:
        raise TadaError(
            f"Unknown pair source {name!r}.{did_you_mean(name, list(found))} Valid sources: {sorted(found)}."
        )
    if per_concept < 1:
        raise TadaError(f"per_concept must be >= 1, got {per_concept}.")
    return found[name](concepts, per_concept, seed)
