"""The rules of a run directory: where it is, who owns it, and what it may hold.

A run directory is made by ``tada run`` and carries a marker file (``.tada-run``).
``tada run`` refuses:

* an empty ``--out`` (an unset shell variable would otherwise mean "here"),
* a spec ``output:`` that is absolute or climbs out of the spec file's directory,
* a path that is a file, or a non-empty directory that is not a run (unless ``force``),
* symbolic links inside the run directory (writes would land elsewhere),
* a directory another live ``tada run`` holds: the lock is an ``flock`` on
  ``.tada-lock``, which the kernel drops when its process dies (even by ``kill -9``),
  so a dead run never leaves a false "busy".

When a run finishes, the outputs of units and steps the spec no longer has are removed
(:meth:`RunDir.retire`), so the directory never mixes two specs' results.
"""

import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from interp.errors import TadaError

MARKER = ".tada-run"
LOCK = ".tada-lock"
#: Top-level files a run writes itself (never foreign content, never retired).
OWN_FILES = (MARKER, LOCK, "spec.yaml", "results.csv", "summary.json", "index.html", "run.log")
#: What a run directory written before markers existed holds (adopted when it has at
#: least spec.yaml and units/ and nothing else).
_LEGACY = {"spec.yaml", "units", "results.csv", "summary.json", "index.html", "plots", "audio",
           "arrays", "data", "steering", "saes", "run.log"}  # fmt: skip


class RunDirError(TadaError, OSError):
    """A results directory cannot be used for this run."""


def resolve(out: str | Path | None, output: str | None, name: str, base_dir: Path) -> Path:
    """Where a run writes: ``out`` (``--out``), else the spec's ``output`` (relative to
    the spec file's directory, and inside it), else ``runs/<name>``.

    Raises:
        RunDirError: For an empty ``out``, or an ``output`` that leaves the spec's tree.
    """
    if out is not None:
        if not str(out).strip():
            raise RunDirError(
                "The results directory (--out) is empty, which would write the run into the "
                "current directory (an unset shell variable?); give a directory name, or "
                "leave --out out to use the spec's output or runs/<name>."
            )
        return Path(out)
    if output is None:
        return Path("runs") / name
    if not output.strip():
        raise RunDirError("The spec's output is empty; remove it or name a directory.")
    path = Path(output)
    base = base_dir.resolve()
    target = (base / path).resolve()
    if path.is_absolute() or not target.is_relative_to(base):
        raise RunDirError(
            f"The spec's output {output!r} points outside the spec file's directory "
            f"{str(base)!r}; a spec may only write below its own directory. Use a relative "
            f"path without '..', or choose the directory yourself with --out."
        )
    return base_dir / path


def _symlinks(root: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        for entry in [*dirs, *files]:
            if (Path(folder) / entry).is_symlink():
                found.append(Path(folder) / entry)
    return found


def _temporaries(root: Path) -> Iterator[Path]:
    for folder, _, files in os.walk(root, followlinks=False):
        for entry in files:
            if entry.startswith(".") and entry.endswith(".tmp"):
                yield Path(folder) / entry


def _describe_owner(lock: Path) -> str:
    try:
        owner = json.loads(lock.read_text(encoding="utf-8"))
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner["started"]))
        return f"process {owner['pid']} on {owner['host']}, started {started}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _claim_lock(path: Path) -> Any:
    import fcntl

    lock = path / LOCK
    try:
        handle = open(lock, "a+", encoding="utf-8")  # held for the whole run
    except OSError as error:
        raise RunDirError(f"Cannot write in the results directory {str(path)!r}: {error.strerror}.") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RunDirError(
            f"The results directory {str(path)!r} is in use by another `tada run` "
            f"({_describe_owner(lock)}); wait for it to finish, or write to another "
            f"directory with --out."
        ) from None
    handle.seek(0)
    handle.truncate()
    owner = {"pid": os.getpid(), "host": os.uname().nodename, "started": time.time(),
             "command": " ".join(sys.argv)[:500]}  # fmt: skip
    handle.write(json.dumps(owner) + "\n")
    handle.flush()
    return handle


class RunDir:
    """A claimed run directory (see :func:`claim`).

    Attributes:
        path: The directory.
        previous_files: Step files listed by the summary of the previous run, if any.
        previous_steps: Names of the previous run's steps.
    """

    def __init__(self, path: Path):
        self.path = path
        self.previous_files: set[str] = set()
        self.previous_steps: set[str] = set()
        try:
            summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
            self.previous_files = {f for s in summary["steps"] for f in s.get("files", [])}
            self.previous_steps = {s["name"] for s in summary["steps"]}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass

    def retire(self, units: Iterable[Path], files: Iterable[str], steps: Iterable[str] = ()) -> list[str]:
        """Remove outputs of units and steps the spec no longer has.

        Args:
            units: Unit files of the current plan (everything else in ``units/`` goes).
            files: Artifact paths (relative) of the current run (kept).
            steps: The current steps' names: a previous step's folders
                (``<folder>/<old step>/``, e.g. ``saes/train/``) and its record of the
                batch ``auto`` chose (``units/steps/<old step>.json``) go when it is gone.

        Returns:
            The relative paths removed.
        """
        keep_units = {Path(u).resolve() for u in units}
        keep = set(files)
        stale = set(self.previous_files)
        unit_dir = self.path / "units"
        stale_units = []
        if unit_dir.is_dir():
            for unit in unit_dir.glob("*.json"):
                if unit.resolve() in keep_units:
                    continue
                stale_units.append(unit)
                try:
                    stale.update(json.loads(unit.read_text(encoding="utf-8")).get("artifacts", []))
                except (OSError, ValueError, AttributeError):
                    pass
        removed = []
        root = self.path.resolve()
        for relative in sorted(stale - keep):
            target = (self.path / relative).resolve()
            if target.is_relative_to(root) and target.is_file() and target.name not in OWN_FILES:
                target.unlink()
                removed.append(relative)
        for unit in stale_units:
            unit.unlink(missing_ok=True)
            removed.append(unit.relative_to(self.path).as_posix())
        current = set(steps)
        records = unit_dir / "steps"  # <step>.json: the batch a step's `auto` resolved to
        for record in sorted(records.glob("*.json")) if records.is_dir() else []:
            if record.stem not in current:  # a step the spec no longer has (even unfinished)
                record.unlink(missing_ok=True)
                removed.append(record.relative_to(self.path).as_posix())
        gone = self.previous_steps - current
        for folder in sorted(p for p in self.path.iterdir() if p.is_dir() and p.name != "units"):
            for step in sorted(gone):
                target = folder / step
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                    removed.append(target.relative_to(self.path).as_posix() + "/")
        for folder, _, _ in sorted(os.walk(self.path), reverse=True):  # empty folders, deepest first
            if Path(folder) != self.path and not any(Path(folder).iterdir()):
                Path(folder).rmdir()
        return removed


def _check_contents(path: Path, force: bool) -> None:
    entries = sorted(p.name for p in path.iterdir() if p.name != LOCK)  # a racing run's lock
    legacy = (path / "units").is_dir() and (path / "spec.yaml").is_file() and set(entries) <= _LEGACY
    if entries and MARKER not in entries and not force and not legacy:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise RunDirError(
            f"The results directory {str(path)!r} is not empty and is not a tada run (it "
            f"holds {shown}); a run would overwrite files there. Choose a new or empty "
            f"directory with --out, or pass --force to use this one anyway."
        )
    links = _symlinks(path)
    if links:
        raise RunDirError(
            f"The results directory {str(path)!r} contains symbolic links "
            f"({', '.join(str(p.relative_to(path)) for p in links[:3])}); a run would write "
            f"through them to other places. Remove them, or use another directory."
        )


@contextmanager
def claim(path: Path, *, force: bool = False) -> Iterator[RunDir]:
    """Check, create, mark and lock a run directory for the duration of a run.

    Args:
        path: The results directory.
        force: Use a non-empty directory that is not a run (its files may be overwritten).

    Raises:
        RunDirError: When the directory cannot or must not be used (see the module doc).
    """
    if path.exists() and not path.is_dir():
        raise RunDirError(f"The results directory {str(path)!r} is a file; give a directory with --out.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunDirError(
            f"Cannot create the results directory {str(path)!r}: {error.strerror}; choose "
            f"another place with --out."
        ) from None
    _check_contents(path, force)
    handle = _claim_lock(path)
    try:
        for temp in _temporaries(path):  # left by a killed run
            temp.unlink(missing_ok=True)
        marker = path / MARKER
        if not marker.is_file():
            marker.write_text(json.dumps({"tada": "run", "format": 1}) + "\n", encoding="utf-8")
        claimed = RunDir(path)  # reads the previous summary, then retires it: until this
        (path / "summary.json").unlink(missing_ok=True)  # run ends, the run is unfinished
        yield claimed
    finally:
        handle.close()
