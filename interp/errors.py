"""Exceptions raised by tada-interp.

Every error derives from :class:`TadaError` and also from the builtin exception that
matches its meaning, so ``except ValueError`` keeps working for callers who do not know
this package. Messages say what failed, the value given, the valid choices and how to
fix it.
"""


class TadaError(Exception):
    """Base class of every error this package raises on purpose."""


class SiteError(TadaError, ValueError):
    """A site string or site object is malformed or does not exist in the model."""


class SelectionError(TadaError, ValueError):
    """A denoising-step or CFG-branch selection is invalid for the generation."""


class EditError(TadaError, ValueError):
    """An edit cannot be applied, e.g. a tensor of the wrong shape."""


class ModelNotFoundError(TadaError, LookupError):
    """A model name, hub id or path cannot be resolved to loadable weights."""


class DeviceError(TadaError, RuntimeError):
    """A torch device is malformed or not available on this machine."""


class UnsupportedModelError(TadaError, TypeError):
    """A model loads but its architecture is not supported by any adapter."""


def did_you_mean(value: str, choices: list[str], limit: int = 3) -> str:
    """Return a short hint naming the closest valid choices, or an empty string."""
    import difflib

    close = difflib.get_close_matches(value, choices, n=limit, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
