"""Loading models by name or path through adapter families found as plugins.

The core knows no model: adapter families register themselves under the entry-point
group ``tada_interp.models`` (this project's own live in ``models/``). Each family is an
object with:

* ``family``: a short name, e.g. ``'stable-audio'``;
* ``aliases``: short model names -> hub ids it can load (``'stable-audio-open-1.0'``);
* ``pipeline_classes``: ``_class_name`` values of ``model_index.json`` it handles;
* ``load(source, weights, device, dtype) -> ModelAdapter``;
* optionally ``component_parameters(source) -> {component: parameters}``: every module
  the loaded pipeline holds, counted without weights (``tada plan``'s resident memory).
"""

import json
import os
from functools import cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from interp.adapter import ModelAdapter
from interp.errors import DeviceError, ModelNotFoundError, UnsupportedModelError, did_you_mean
from interp.plugins import load_entry_points

ENTRY_POINT_GROUP = "tada_interp.models"


@runtime_checkable
class ModelFamily(Protocol):
    """What an adapter family plugin provides (see the module docstring)."""

    family: str
    aliases: dict[str, str]
    pipeline_classes: tuple[str, ...]

    def load(self, source: str, weights: bool, device: str, dtype: Any) -> ModelAdapter: ...


@cache
def families() -> tuple[ModelFamily, ...]:
    """All installed adapter families, loaded from entry points."""
    found = []
    names = set()
    for point, family in load_entry_points(ENTRY_POINT_GROUP, "model family"):
        if family.family in names:
            raise UnsupportedModelError(
                f"Two adapter families are both named {family.family!r} "
                f"(entry point {point.value}); family names must be unique."
            )
        names.add(family.family)
        found.append(family)
    return tuple(found)


def known_names() -> dict[str, str]:
    """Short model name -> hub id, over all families."""
    return {alias: hub for fam in families() for alias, hub in fam.aliases.items()}


def _family_for_directory(path: Path) -> ModelFamily:
    index = path / "model_index.json"
    if not index.is_file():
        raise UnsupportedModelError(
            f"{str(path)!r} is a directory but has no model_index.json; give a diffusers "
            f"save_pretrained directory, or a model name: {sorted(known_names())}."
        )
    class_name = json.loads(index.read_text()).get("_class_name")
    for fam in families():
        if class_name in fam.pipeline_classes:
            return fam
    supported = sorted(c for fam in families() for c in fam.pipeline_classes)
    raise UnsupportedModelError(
        f"{str(path)!r} holds a {class_name!r}, which no adapter supports; supported pipelines: {supported}."
    )


def resolve(name_or_path: str) -> tuple[ModelFamily, str]:
    """The family that handles a model name, hub id or local directory, and the source."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return _family_for_directory(path), str(path)
    for fam in families():
        if name_or_path in fam.aliases:
            return fam, name_or_path
        if name_or_path in fam.aliases.values():
            return fam, name_or_path
    if path.suffix or "/" in name_or_path and not name_or_path.count("/") == 1:
        raise ModelNotFoundError(
            f"No model directory at {name_or_path!r}. Give an existing diffusers "
            f"save_pretrained directory or one of the model names {sorted(known_names())}."
        )
    raise ModelNotFoundError(
        f"Unknown model {name_or_path!r}.{did_you_mean(name_or_path, list(known_names()))} "
        f"Known names: {sorted(known_names())}; a local diffusers directory also works."
    )


def load_model(
    name_or_path: str, *, weights: bool = True, device: str = "cpu", dtype: Any = None
) -> ModelAdapter:
    """Load a model and wrap it in its adapter.

    Args:
        name_or_path: A short name (``'synthmusic-dit'``, ``'stable-audio-open-1.0'``,
            ...), a hub id, or a local diffusers ``save_pretrained`` directory.
        weights: ``False`` builds the full-size architecture on the ``meta`` device
            from configs shipped with the project: structure only, no download.
        device: Torch device for the weights.
        dtype: Torch dtype for the weights (``None``: the checkpoint's).

    Raises:
        ModelNotFoundError: Unknown name, missing directory, or weights that cannot
            be found offline (the message says how to supply them).
        UnsupportedModelError: A directory holding an unsupported pipeline.
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise ModelNotFoundError(
            f"load_model needs a model name, hub id or directory, got {name_or_path!r}; "
            f"`tada sites --help` and docs/models list the names."
        )
    if weights:
        check_device(device)
    from interp.quiet import quiet_loaded_libraries, warn_precision

    family, source = resolve(str(name_or_path))
    quiet_loaded_libraries()
    adapter = family.load(source, weights=weights, device=device, dtype=dtype)
    warn_precision(adapter)
    return adapter


def component_parameters(name_or_path: str) -> dict[str, int] | None:
    """Component -> parameters of every module a model's loaded pipeline holds, counted
    without weights by its family (``None`` when the family cannot count them).

    Raises:
        ModelNotFoundError: Unknown name or missing directory, or components that cannot
            be counted (the message says which).
    """
    family, source = resolve(str(name_or_path))
    count = getattr(family, "component_parameters", None)
    return None if count is None else dict(count(source))


def check_device(device: Any) -> None:
    """Raise a clear error when torch cannot use ``device`` on this machine.

    Raises:
        DeviceError: Malformed device, or CUDA / MPS asked for where it is unavailable.
    """
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"Unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'mps'.") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(
                f"Device {device!r} asks for a CUDA GPU, but torch finds none on this machine; "
                f"use device 'cpu' here, or run on a machine with a GPU."
            )
        if parsed.index is not None and parsed.index >= count:
            raise DeviceError(
                f"Device {device!r} does not exist: this machine has {count} CUDA GPU(s), "
                f"cuda:0 to cuda:{count - 1}."
            )
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"Device {device!r} (Apple MPS) is not available on this machine; use 'cpu'.")
    elif parsed.type not in ("cpu", "cuda", "mps", "meta"):
        raise DeviceError(f"Unsupported device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'mps'.")
