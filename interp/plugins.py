"""The one entry-point loader: every plug-in group (models, methods, metrics, scorers,
pair sources, CLI commands) is read through :func:`load_entry_points`."""

import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from interp.errors import TadaError


def load_entry_points(
    group: str, kind: str, *, skip_broken: bool = False
) -> Iterator[tuple[EntryPoint, Any]]:
    """``(entry point, loaded object)`` for each entry point of ``group``, by name.

    Args:
        group: Entry-point group, e.g. ``'tada_interp.metrics'``.
        kind: What the group holds, for the error message (``'metric'``).
        skip_broken: Print one ``tada: warning`` line for a plug-in that fails to import
            and go on (the CLI must start even with a broken plug-in installed).

    Raises:
        TadaError: If two entry points share a name, or one fails to import (naming it,
            its target and the error, so a broken plug-in is easy to find).
    """
    seen: set[str] = set()
    for point in sorted(entry_points(group=group), key=lambda p: (p.name, p.value)):
        if point.name in seen:
            raise TadaError(
                f"Two {kind} plug-ins are named {point.name!r} (group {group}); "
                f"names must be unique. Uninstall one of the packages providing it."
            )
        seen.add(point.name)
        try:
            loaded = point.load()
        except Exception as error:
            if skip_broken:
                print(
                    f"tada: warning: skipped {kind} plug-in {point.name!r} ({point.value}): "
                    f"{type(error).__name__}: {error}",
                    file=sys.stderr,
                )
                continue
            raise TadaError(
                f"Could not load the {kind} plug-in {point.name!r} ({point.value}): "
                f"{type(error).__name__}: {error}. Fix or uninstall the package providing it."
            ) from None
        yield point, loaded
