"""What tada prints besides its own lines.

Third-party output a user cannot act on (diffusers' and transformers' loading bars and
info logs, torchsde's ``Should have tb>=t0``, transformers' ``past_key_values``
FutureWarning, torch's ``weight_norm`` deprecation) is hidden by :func:`quiet_libraries`
unless the user asks for it (``tada -v``). Warnings that matter are raised as
:class:`TadaWarning` in our words and printed as ``tada: warning: ...``:

* a model running in float32 on a GPU (:func:`warn_precision`),
* a prompt longer than the text encoder reads (:func:`warn_truncated`).

This module never imports diffusers or transformers: it sets their environment
variables before they load and adjusts their loggers once they are in ``sys.modules``.
"""

import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

_HIDDEN_WARNINGS = (
    # (message regex, category, module regex)
    (r".*", Warning, r"torchsde\..*"),  # "Should have tb>=t0" and friends
    (r".*past_key_values.*", FutureWarning, r""),
    (r".*weight_norm.* is deprecated", FutureWarning, r""),
)
_state = {"quiet": False}
_warned_prompts: set[tuple[int, str]] = set()


class TadaWarning(UserWarning):
    """A warning of tada's own that the user can act on."""


def _format(message: Any, category: type, filename: str, lineno: int, line: str | None = None) -> str:
    if issubclass(category, TadaWarning):
        return f"tada: warning: {message}\n"
    return _default_format(message, category, filename, lineno, line)


_default_format = warnings.formatwarning


def quiet_libraries(verbose: bool = False) -> None:
    """Hide third-party noise (unless ``verbose``) and print our warnings as ``tada: warning:``."""
    warnings.formatwarning = _format
    if verbose:
        return
    _state["quiet"] = True
    for name, value in (("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TRANSFORMERS_VERBOSITY", "error"),
                        ("DIFFUSERS_VERBOSITY", "error"), ("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")):  # fmt: skip
        os.environ.setdefault(name, value)
    for message, category, module in _HIDDEN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    quiet_loaded_libraries()


def quiet_loaded_libraries() -> None:
    """Apply :func:`quiet_libraries` to diffusers / transformers if they are imported by now
    (their progress-bar switches are not read from the environment). Called by the model
    registry before it loads a model."""
    if not _state["quiet"]:
        return
    for name in ("diffusers", "transformers"):
        library = sys.modules.get(name)
        logging = getattr(getattr(library, "utils", None), "logging", None)
        if logging is not None:
            logging.set_verbosity_error()
            logging.disable_progress_bar()


def warn_precision(adapter: Any) -> None:
    """Warn when a model's denoiser runs in float32 on a GPU (half the speed, twice the memory)."""
    import torch

    parameter = next(adapter.denoiser.parameters(), None)
    if parameter is not None and parameter.device.type == "cuda" and parameter.dtype == torch.float32:
        warnings.warn(
            f"{adapter.name!r} runs in float32 on {parameter.device}: about twice the memory "
            f"and half the speed of half precision. Set model.dtype: float16 (or bfloat16) in "
            f"the spec unless you need float32 numbers.",
            TadaWarning, stacklevel=2,
        )  # fmt: skip


def warn_truncated(adapter: Any, prompts: Sequence[str]) -> None:
    """Warn once per prompt that is longer than the model's tokenizer reads."""
    tokenizer = getattr(getattr(adapter, "pipeline", None), "tokenizer", None)
    limit = getattr(tokenizer, "model_max_length", None)
    if not callable(tokenizer) or not isinstance(limit, int) or limit > 100_000:
        return
    for prompt in dict.fromkeys(prompts):
        key = (id(tokenizer), prompt)
        if key in _warned_prompts:
            continue
        _warned_prompts.add(key)
        n_tokens = len(tokenizer(prompt, truncation=False)["input_ids"])  # pyright: ignore[reportIndexIssue]  # callable() types the result as object; a tokenizer returns a BatchEncoding
        if n_tokens > limit:
            shown = prompt if len(prompt) <= 60 else prompt[:57] + "..."
            warnings.warn(
                f"The prompt {shown!r} has {n_tokens} tokens; {adapter.name!r} reads only the "
                f"first {limit}, the rest is ignored. Shorten the prompt.",
                TadaWarning, stacklevel=2,
            )  # fmt: skip
