"""Loading pipelines from the hub cache or a local directory, with one clear error.

Weights are looked up in the local Hugging Face cache (or a ``save_pretrained``
directory) first; only if that fails and ``HF_HUB_OFFLINE`` is not set is a download
tried. Whatever goes wrong, the user gets one sentence saying what was tried and how to
supply weights, never a stack trace from the hub client.
"""

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interp.errors import ModelNotFoundError
from models.load_diagnosis import first_failing_component

CONFIG_DIR = Path(__file__).parent / "configs"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


def load_pipeline(pipeline_class: type, source: str, device: str, dtype: Any) -> Any:
    """``pipeline_class.from_pretrained(source)`` without surprises.

    Raises:
        ModelNotFoundError: if the weights are neither cached nor downloadable.
    """
    kwargs: dict[str, Any] = {}
    if dtype is not None:
        kwargs["torch_dtype"] = dtype
    is_dir = Path(source).is_dir()
    attempts = [True] if is_dir or _offline() else [True, False]
    last_error: Exception | None = None
    for local_only in attempts:
        try:
            pipe = pipeline_class.from_pretrained(source, local_files_only=local_only, **kwargs)
            return pipe.to(device)
        except Exception as error:  # every failure becomes one message
            last_error = error
    where = (
        f"the directory {source!r}"
        if is_dir
        else (
            f"the local Hugging Face cache ({os.environ.get('HF_HOME', '~/.cache/huggingface')})"
            + ("" if _offline() else " or the hub")
        )
    )
    reason = str(last_error).strip().splitlines()[0][:200] if last_error else "unknown error"
    culprit = first_failing_component(source, dtype) if is_dir else None
    if culprit is not None:
        raise ModelNotFoundError(
            f"Could not load {pipeline_class.__name__} from the directory {source!r}: {culprit}. "
            f"Fix or re-save that component (its folder holds what save_pretrained wrote), "
            f"or rebuild the directory (`tada rehearse` writes a complete one with random weights)."
        ) from None
    fix = (
        "check that it is a complete save_pretrained directory of this pipeline"
        if is_dir
        else f"download them where the hub is reachable (`huggingface-cli download "
        f"{source}`) and copy the cache here, or pass a local save_pretrained directory"
    )
    raise ModelNotFoundError(
        f"Could not load {pipeline_class.__name__} weights for {source!r} from {where} "
        f"({type(last_error).__name__}: {reason}); {fix}; to explore the structure without "
        f"weights use weights=False (CLI: --no-weights)."
    ) from None


def shipped_config(model: str, component: str) -> dict[str, Any]:
    """A config the project ships for building full-size models without weights."""
    path = CONFIG_DIR / model / f"{component}.json"
    if not path.is_file():
        raise ModelNotFoundError(
            f"No shipped config {path.name} for {model!r} (looked in {path.parent}); "
            f"structure-only loading is not available for this model."
        )
    return json.loads(path.read_text())


def on_meta(model_class: type, config: dict[str, Any]) -> nn.Module:
    """Instantiate a diffusers/transformers model from a config on the meta device."""
    clean = {k: v for k, v in config.items() if not k.startswith("_")}
    with torch.device("meta"):
        if hasattr(model_class, "from_config"):
            return model_class.from_config(clean)
        return model_class(**clean)
