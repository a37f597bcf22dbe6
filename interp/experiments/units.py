"""Units of work, result rows, and their crash-safe store on disk.

A method plans its step as a list of :class:`Unit` (stable string ids). Each finished
unit is written atomically (temp file + ``os.replace``) to ``units/<step>.<id>.json``
in the run directory; the results table is built from those files only, so an
interrupted run (Ctrl-C, ``kill -9``) never leaves a half-written result behind, and
rerunning skips every unit whose file exists with a matching fingerprint.
"""

import errno
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from interp.errors import TadaError

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$", re.ASCII)
#: Longest unit id: ``units/<step>.<id>.json`` must stay a valid file name (255 bytes).
MAX_ID_LENGTH = 150

#: The fixed columns of ``results.csv``, in order; row labels follow, sorted.
COLUMNS = (
    "step", "method", "unit", "concept", "prompt", "site", "steps", "branch", "seed",
    "metric", "value",
)  # fmt: skip


@dataclass(frozen=True)
class Unit:
    """One resumable piece of a step's work.

    Attributes:
        id: Stable id, unique within the step (letters, digits, ``_ . = + -``). The
            same spec must always plan the same ids.
        params: JSON-ready parameters the method needs to run the unit.
    """

    id: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.id, str) and len(self.id) > MAX_ID_LENGTH:
            raise TadaError(
                f"Unit id {self.id[:40]!r}... is {len(self.id)} characters long; at most "
                f"{MAX_ID_LENGTH} fit in a file name (a concept or label that long? shorten it)."
            )
        if not isinstance(self.id, str) or not _ID.match(self.id):
            raise TadaError(
                f"Unit id {self.id!r} is invalid: use letters, digits and '_ . = + -', "
                f"starting with a letter or digit (e.g. 'p0003' or 'cross.7.head.3')."
            )
        try:
            json.dumps(self.params, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise TadaError(
                f"Unit {self.id!r} has parameters that are not plain JSON ({error}); use "
                f"strings, numbers, lists and dicts."
            ) from None


@dataclass
class Row:
    """One measurement: a row of the tidy results table.

    ``step``, ``method`` and ``unit`` are filled in by the engine. ``labels`` add
    columns of their own (e.g. ``{"alpha": 4.0}``).
    """

    metric: str
    value: float
    concept: str | None = None
    prompt: str | None = None
    site: str | None = None
    steps: str | None = None
    branch: str | None = None
    seed: int | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    step: str | None = None
    method: str | None = None
    unit: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Row":
        """Inverse of :meth:`as_dict`."""
        return cls(**data)

    def flat(self) -> dict[str, Any]:
        """The row as table columns (fixed columns, then labels)."""
        out = {name: getattr(self, name) for name in COLUMNS}
        out.update(self.labels)
        return out


@dataclass
class UnitResult:
    """What a finished unit left behind.

    Attributes:
        id: The unit's id within its step.
        rows: Its measurements.
        artifacts: Paths (relative to the run directory) of files it wrote.
        data: Any JSON-ready values the method wants back in ``finalize``.
        fingerprint: Hash of everything that determined the unit's result.
    """

    id: str
    rows: list[Row]
    artifacts: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "rows": [r.as_dict() for r in self.rows],
            "artifacts": list(self.artifacts),
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "UnitResult":
        """Inverse of :meth:`as_dict`."""
        return cls(
            id=data["id"],
            rows=[Row.from_dict(r) for r in data["rows"]],
            artifacts=list(data.get("artifacts", [])),
            data=dict(data.get("data", {})),
            fingerprint=data.get("fingerprint", ""),
        )


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-ready values."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write a file through a temporary sibling and ``os.replace`` it into place.

    Args:
        path: Final location.
        write: Writes the content to the temporary path it is given.
    """
    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(handle)
        write(Path(temp))
        os.replace(temp, path)
    except BaseException as error:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
        if isinstance(error, OSError) and not isinstance(error, TadaError):
            raise WriteError(path, error) from None
        raise


class WriteError(TadaError, OSError):
    """A result file could not be written (disk full, no permission, ...)."""

    def __init__(self, path: Path, error: OSError):
        reason = "the disk is full" if error.errno == errno.ENOSPC else (error.strerror or str(error))
        super().__init__(
            f"Cannot write {str(path)!r}: {reason}. Finished units are saved; free space or "
            f"fix the permissions, then rerun the same command to continue."
        )
        self.path = path
        self.reason = error


def write_text(path: Path, text: str) -> None:
    """Atomically write a text file."""
    atomic_write(path, lambda temp: temp.write_text(text, encoding="utf-8"))


class UnitStore:
    """The ``units/`` directory of a run."""

    def __init__(self, root: Path):
        self.root = Path(root) / "units"

    def path(self, step: str, unit_id: str) -> Path:
        """File of one unit."""
        return self.root / f"{step}.{unit_id}.json"

    def load(self, step: str, unit_id: str, fingerprint: str) -> UnitResult | None:
        """A finished unit with this fingerprint, or ``None`` (missing, stale, corrupt)."""
        path = self.path(step, unit_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            result = UnitResult.from_dict(data)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return result if result.fingerprint == fingerprint else None

    def save(self, step: str, result: UnitResult) -> None:
        """Write a finished unit atomically."""
        text = json.dumps(result.as_dict(), indent=1, sort_keys=True)
        write_text(self.path(step, result.id), text + "\n")
