"""Loading the model of a spec (cached per process) and listing its sites.

Structure-only builds (``weights=False``, on the meta device where the family supports
it) serve validation and ``tada sites --no-weights``; full loads serve runs. A small
cache keeps the last model with weights (and two structure-only builds), so consecutive
runs in one process (tests, notebooks) do not reload it.
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from interp.errors import TadaError

_CACHE: dict[tuple[Any, ...], Any] = {}
_CACHE_SIZE = 2


def source_of(name: str, base_dir: Path | None) -> str:
    """A model name as given, or a local directory resolved against ``base_dir``."""
    if base_dir is not None and not Path(name).is_absolute():
        candidate = Path(base_dir) / name
        if candidate.is_dir():
            return str(candidate)
    return name


def load(
    name: str,
    *,
    weights: bool = True,
    device: str = "cpu",
    dtype: str | None = None,
    base_dir: Path | None = None,
) -> Any:
    """The adapter for a model, from the cache when possible.

    Args:
        name: Model name, hub id or local directory.
        weights: ``False`` builds the structure only (validation, listings).
        device: Torch device.
        dtype: ``'float32'``, ``'float16'``, ``'bfloat16'`` or ``None``.
        base_dir: Directory that relative model paths are resolved against.
    """
    from interp.registry import load_model

    source = source_of(name, base_dir)
    key = (source, weights, device, dtype)
    full = (source, True, device, dtype)
    if not weights and full in _CACHE:
        return _CACHE[full]  # a loaded model also serves as its own structure
    if key not in _CACHE:
        torch_dtype = None
        if dtype is not None:
            import torch

            torch_dtype = getattr(torch, dtype)
        adapter = load_model(source, weights=weights, device=device, dtype=torch_dtype)
        if not weights and adapter.has_weights:
            key = full  # a family without a meta build gave a real model: reuse it for runs
        same_kind = [k for k in _CACHE if k[1] == key[1]]
        while len(same_kind) >= (1 if key[1] else _CACHE_SIZE):  # one model with weights
            _CACHE.pop(same_kind.pop(0))
        _CACHE[key] = adapter
    return _CACHE[key]


def clear_cache() -> None:
    """Forget cached models."""
    _CACHE.clear()


def sites_of(
    model: Any,
    *,
    weights: bool = True,
    components: Iterable[str] | None = None,
    attention: str | None = None,
) -> list[dict[str, Any]]:
    """Every site of a model as JSON-ready records (name, module, attention, layer, ...).

    Args:
        model: A loaded adapter, or a model name / hub id / local directory.
        weights: When ``model`` is a name: ``False`` builds the structure only.
        components: Restrict to these components (``head``, ``heads``, ``out``, ``text``).
        attention: Restrict to ``'self'`` or ``'cross'``.

    Example:
        >>> import interp
        >>> interp.sites_of("tiny-stable-audio")[0]["name"]
        'self.0.heads'
    """
    adapter = load(str(model), weights=weights) if isinstance(model, (str, Path)) else model
    catalog = getattr(adapter, "catalog", None)
    if catalog is None:
        raise TadaError(f"sites_of expects a model adapter or a model name, got {type(model).__name__}.")
    if attention not in (None, "self", "cross"):
        raise TadaError(f"Unknown attention kind {attention!r}; valid: ['self', 'cross'].")
    records = catalog.records() if components is None else catalog.records(components)
    return [r for r in records if attention is None or r["attention"] == attention]


SMALL_MODEL_PARAMETERS = 100_000_000


def set_threads(adapter: Any, threads: int | None, device: str) -> None:
    """Torch's CPU thread count for a run: ``threads`` if given, else 1 for small models
    on the CPU (faster there, and bit-identical across machines), else unchanged."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    elif device == "cpu":
        n = sum(p.numel() for p in adapter.denoiser.parameters())
        if n < SMALL_MODEL_PARAMETERS:
            torch.set_num_threads(1)
