"""The nnsight backend, contained: import it from here only.

nnsight mounts a ``.save`` method on *every* Python object when imported. That breaks
libraries that enumerate class attributes (``torchsde``, needed by Stable Audio's
scheduler, sorts them and crashes on the extra function). We import nnsight once, here,
undo that mount, and always call :func:`nnsight.save` explicitly instead.
"""

import nnsight
from nnsight import NNsight

try:  # the mount is an optional C extension; absent, there is nothing to undo
    from nnsight._c import unmount as _unmount

    if _unmount is not None and hasattr(object, "save"):
        _unmount("save")
except ImportError:  # pragma: no cover - depends on how nnsight was built
    pass

save = nnsight.save

__all__ = ["NNsight", "save", "wrap"]


def wrap(adapter):  # typed at the call site
    """The adapter's nnsight wrapper around its generation root, created once."""
    if adapter.traced is None:
        adapter.traced = NNsight(adapter.root)
    return adapter.traced
