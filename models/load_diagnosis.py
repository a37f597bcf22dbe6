"""Which component of a local pipeline directory fails to load, and why.

``DiffusionPipeline.from_pretrained`` reports a failing component with an error that
often names neither the component nor its cause. After such a failure this module
loads the directory's components one at a time, as ``model_index.json`` lists them, and
returns the first one that fails with its own error.
"""

import importlib
import json
from pathlib import Path
from typing import Any


def first_failing_component(directory: str | Path, dtype: Any = None) -> str | None:
    """A sentence naming the first component of ``directory`` that fails to load.

    Returns:
        ``"component 'tokenizer' (T5TokenizerFast from transformers) failed: ValueError: ..."``,
        a sentence about ``model_index.json`` itself when it is missing or unreadable,
        or ``None`` when every component loads on its own (the pipeline failed for
        another reason).
    """
    index_path = Path(directory) / "model_index.json"
    if not index_path.is_file():
        return "it has no model_index.json (not a save_pretrained directory of a pipeline)"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError) as error:
        return f"its model_index.json is unreadable ({type(error).__name__}: {_first_line(error)})"
    for name, entry in index.items():
        if name.startswith("_") or not isinstance(entry, list) or len(entry) != 2:
            continue
        library, class_name = entry
        if library is None or class_name is None:
            continue
        problem = _load_one(Path(directory) / name, library, class_name, dtype)
        if problem is not None:
            return f"component {name!r} ({class_name} from {library}) failed: {problem}"
    return None


def _load_one(path: Path, library: str, class_name: str, dtype: Any) -> str | None:
    """``None`` when ``class_name.from_pretrained(path)`` works, else its error in one line."""
    try:
        component_class = getattr(_import_library(library), class_name)
    except (ImportError, AttributeError) as error:
        return f"{type(error).__name__}: {_first_line(error)}"
    if not path.exists():
        return f"its folder {path} is missing"
    loader = getattr(component_class, "from_pretrained", None)
    if loader is None:
        return None
    kwargs: dict[str, Any] = {}
    if dtype is not None and _takes_dtype(component_class):
        kwargs["torch_dtype"] = dtype
    try:
        loader(str(path), local_files_only=True, **kwargs)
    except Exception as error:
        return f"{type(error).__name__}: {_first_line(error)}"
    return None


def _import_library(library: str) -> Any:
    """A library by name, or a pipeline-local module (``stable_audio``) of diffusers."""
    try:
        return importlib.import_module(library)
    except ImportError:
        return importlib.import_module(f"diffusers.pipelines.{library}")


def _takes_dtype(component_class: type) -> bool:
    import torch

    return issubclass(component_class, torch.nn.Module)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else repr(error))[:300]
