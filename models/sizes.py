"""Parameter counts of every component a loaded model holds, without loading weights.

``tada plan`` sizes a run's resident memory from these counts (the whole pipeline, not
only the denoiser, and the metric's scorer). Each count comes from the component's
structure built on the ``meta`` device, from the configs that would be loaded:

* a ``save_pretrained`` directory: every ``diffusers`` or ``transformers`` module named
  in its ``model_index.json``, from the component's own ``config.json`` (a rehearsed
  full-size directory, a downloaded checkpoint, SynthMusic's checkpoints); a flat
  ``transformers`` checkpoint (``config.json`` with ``architectures``, the CLAP scorer's);
* a model name or hub id: the rehearsal recipe the project ships for it
  (:func:`models.rehearse.rehearsal_components` on ``meta``).

Families expose it as ``component_parameters(source)`` (:func:`interp.registry.component_parameters`).
"""

import importlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interp.errors import ModelNotFoundError


def module_parameters(module: nn.Module) -> int:
    """Parameters of ``module`` (tied ones once)."""
    return sum(p.numel() for p in module.parameters())


def directory_parameters(path: str | Path) -> dict[str, int]:
    """Component -> parameters of a ``save_pretrained`` directory (its modules built on
    ``meta`` from their configs); a flat ``transformers`` checkpoint is one component,
    ``model``.

    Raises:
        ModelNotFoundError: ``path`` holds neither ``model_index.json`` nor a model's
            ``config.json``, or a component's class cannot be found.
    """
    path = Path(path)
    index = path / "model_index.json"
    if not index.is_file():
        if (path / "config.json").is_file():
            return {"model": _flat_parameters(path)}
        raise ModelNotFoundError(
            f"{str(path)!r} holds neither a model_index.json nor a config.json: its components "
            f"cannot be counted; give a save_pretrained directory."
        )
    counts = {}
    for name, entry in sorted(json.loads(index.read_text()).items()):
        if name.startswith("_") or not isinstance(entry, list) or None in entry:
            continue
        component_class = _component_class(path, name, *entry)
        if isinstance(component_class, type) and issubclass(component_class, nn.Module):
            counts[name] = module_parameters(_on_meta(component_class, path / name))
    return counts


def recipe_parameters(model: str) -> dict[str, int]:
    """Component -> parameters of a model's shipped rehearsal recipe, built on ``meta``."""
    return dict(_recipe_parameters(model))


@cache
def _recipe_parameters(model: str) -> dict[str, int]:
    from models.rehearse import rehearsal_components

    return {
        name: module_parameters(component)
        for name, component in rehearsal_components(model, "meta")
        if isinstance(component, nn.Module)
    }


def pipeline_parameters(aliases: dict[str, str], source: str) -> dict[str, int]:
    """Component -> parameters of the pipeline ``source`` names: a directory, or a short
    name / hub id of ``aliases`` (a family's) with a rehearsal recipe.

    Raises:
        ModelNotFoundError: Neither a directory nor a name with a recipe.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return directory_parameters(path)
    from models.rehearse import RECIPES

    names = [short for short, hub in aliases.items() if source in (short, hub)]
    for name in names:
        if name in RECIPES:
            return recipe_parameters(name)
        if Path(aliases[name]).is_dir():  # a name for a local checkpoint (SynthMusic's)
            return directory_parameters(aliases[name])
    raise ModelNotFoundError(
        f"No shipped recipe to count the components of {source!r} (recipes: {', '.join(RECIPES)}); "
        f"give a save_pretrained directory."
    )


def _component_class(path: Path, name: str, library: str, class_name: str) -> Any:
    try:
        return getattr(importlib.import_module(library), class_name)
    except (ImportError, AttributeError):
        pass
    if library not in ("diffusers", "transformers"):  # a diffusers pipeline module's class
        try:
            return getattr(importlib.import_module(f"diffusers.pipelines.{library}"), class_name)
        except (ImportError, AttributeError):
            pass
    raise ModelNotFoundError(
        f"Component {name!r} of {str(path)!r} is a {library}.{class_name}, which cannot be imported "
        f"here; its parameters cannot be counted."
    )


def _on_meta(component_class: type, directory: Path) -> nn.Module:
    """``component_class`` built on ``meta`` from the config in ``directory``."""
    with torch.device("meta"):
        if hasattr(component_class, "load_config"):  # diffusers
            config = component_class.load_config(directory)  # pyright: ignore[reportAttributeAccessIssue]  # hasattr above
            return component_class.from_config(  # pyright: ignore[reportAttributeAccessIssue]  # diffusers models have it
                {k: v for k, v in config.items() if not k.startswith("_")}
            )
        config = component_class.config_class.from_pretrained(directory)  # pyright: ignore[reportAttributeAccessIssue]  # transformers models have it
        return component_class(config)


def _flat_parameters(path: Path) -> int:
    """Parameters of a flat ``transformers`` checkpoint (its ``architectures``' class)."""
    import transformers

    config = json.loads((path / "config.json").read_text())
    names = config.get("architectures") or []
    component_class = getattr(transformers, names[0], None) if names else None
    if component_class is None:
        raise ModelNotFoundError(
            f"{str(path / 'config.json')!r} names no transformers model class ('architectures'); "
            f"its parameters cannot be counted."
        )
    return module_parameters(_on_meta(component_class, path))
