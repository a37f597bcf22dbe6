"""Rehearsal without weights: a real pipeline at full size with random weights.

``rehearse("stable-audio-open-1.0", directory)`` builds every component of the model's
real pipeline at its real size from the configs the project ships
(``models/configs/<model>/rehearsal.json`` names, per component, its class and config
file), with random weights and an offline word-level tokenizer, and saves them as a
``save_pretrained`` directory that :func:`interp.load_model` loads like a downloaded
checkpoint. Components are built and saved one at a time, directly in the requested
dtype, so the peak memory is that of the largest component at that dtype, not of the
pipeline.

:func:`rehearsal_components` builds the same components on the ``meta`` device:
structure and parameter counts without memory.
"""

import importlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interp.errors import ModelNotFoundError
from models.hub import CONFIG_DIR

#: Every shipped recipe: the pipelines below and scorers (``larger-clap-music``).
RECIPES = tuple(sorted(p.parent.name for p in CONFIG_DIR.glob("*/rehearsal.json")))

#: Models a rehearsal can build, by the name :func:`interp.load_model` knows them: the
#: recipes of a diffusers pipeline (a ``"pipeline"`` class; the others are flat
#: ``transformers`` checkpoints such as the CLAP scorer's).
REHEARSABLE = tuple(
    name for name in RECIPES if "pipeline" in json.loads((CONFIG_DIR / name / "rehearsal.json").read_text())
)


@dataclass(frozen=True)
class RehearsedComponent:
    """One saved component: its name, class, parameter count and build+save seconds."""

    name: str
    class_name: str
    parameters: int
    seconds: float


def recipe(model: str) -> dict[str, Any]:
    """The rehearsal recipe of ``model`` (pipeline class and components).

    Raises:
        ModelNotFoundError: ``model`` has no shipped recipe; the message lists those that do.
    """
    path = CONFIG_DIR / model / "rehearsal.json"
    if not path.is_file():
        raise ModelNotFoundError(
            f"No rehearsal recipe for {model!r}; rehearsable models: {', '.join(RECIPES)}. "
            f"Pass one of these names (the short names of `tada sites`)."
        )
    return json.loads(path.read_text())


def rehearsal_components(
    model: str, device: str = "meta", seed: int = 0, dtype: torch.dtype = torch.float32
) -> Iterator[tuple[str, Any]]:
    """Yield ``(name, component)`` of ``model``'s pipeline, one at a time, at full size.

    Args:
        model: A name of :data:`REHEARSABLE`.
        device: ``"meta"`` for structure only, ``"cpu"`` for random weights.
        seed: Seed of the weight initialisation (each component reseeds from it).
        dtype: Dtype of the weights of torch components.
    """
    spec = recipe(model)
    for index, (name, entry) in enumerate(sorted(spec["components"].items())):
        torch.manual_seed(seed + index)
        yield name, _build(model, entry, device, dtype)


def rehearse(
    model: str, directory: str | Path, seed: int = 0, dtype: torch.dtype = torch.float32
) -> list[RehearsedComponent]:
    """Write a complete, loadable ``save_pretrained`` directory of ``model`` at full size.

    A pipeline's components go to one subdirectory each, named in ``model_index.json``;
    a recipe without a ``"pipeline"`` (a flat ``transformers`` checkpoint, such as the
    CLAP scorer's model, tokenizer and feature extractor) saves them all in ``directory``.

    Returns:
        One :class:`RehearsedComponent` per component, in the order built.
    """
    spec = recipe(model)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    flat = "pipeline" not in spec
    index: dict[str, Any] = (
        {} if flat else {"_class_name": spec["pipeline"], "_diffusers_version": _diffusers_version()}
    )
    built: list[RehearsedComponent] = []
    start = time.perf_counter()
    for name, component in rehearsal_components(model, "cpu", seed, dtype):
        if isinstance(component, nn.Module):
            component.eval()
        component.save_pretrained(out if flat else out / name)  # pyright: ignore[reportCallIssue]  # models, tokenizers and schedulers all have it
        index[name] = [_library_of(type(component)), type(component).__name__]
        parameters = sum(p.numel() for p in component.parameters()) if isinstance(component, nn.Module) else 0
        built.append(
            RehearsedComponent(name, type(component).__name__, parameters, time.perf_counter() - start)
        )
        start = time.perf_counter()
        del component
    if not flat:
        (out / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return built


def _build(model: str, entry: dict[str, Any], device: str, dtype: torch.dtype) -> Any:
    if "tokenizer" in entry:
        return _tokenizer(entry["tokenizer"], int(entry["max_length"]))
    component_class = _import(entry["class"])
    config = {k: v for k, v in _config(model, entry["config"]).items() if not k.startswith("_")}
    if not issubclass(component_class, nn.Module):
        return (
            component_class.from_config(config)
            if hasattr(component_class, "from_config")
            else component_class(**config)
        )
    with torch.device(device), _default_dtype(dtype):
        if hasattr(component_class, "from_config"):  # diffusers
            module = component_class.from_config(config)  # pyright: ignore[reportAttributeAccessIssue]  # hasattr above
        else:  # transformers
            module = component_class(component_class.config_class(**config))  # pyright: ignore[reportAttributeAccessIssue]  # transformers models have it
    if device != "meta" and dtype != next(module.parameters()).dtype:
        module = module.to(dtype)
    return module


@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Create floating-point weights in ``dtype`` directly: a 4.2B-parameter DiT built in
    float32 and then cast would need 17 GB before its 8 GB bfloat16 copy exists."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def _tokenizer(kind: str, max_length: int) -> Any:
    from models.tiny.audioldm2 import roberta_word_tokenizer, t5_word_tokenizer
    from models.tiny.text import word_tokenizer

    makers = {"t5": t5_word_tokenizer, "roberta": roberta_word_tokenizer, "word": word_tokenizer}
    return makers[kind](max_length=max_length)


def _config(model: str, name: str) -> dict[str, Any]:
    return json.loads((CONFIG_DIR / model / name).resolve().read_text())


def _import(dotted: str) -> type:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _library_of(component_class: type) -> str:
    """``model_index.json``'s library: ``diffusers``, ``transformers``, or a pipeline module."""
    parts = component_class.__module__.split(".")
    if parts[0] == "diffusers" and len(parts) > 2 and parts[1] == "pipelines":
        return parts[2]
    return parts[0]


def _diffusers_version() -> str:
    import diffusers

    return diffusers.__version__
