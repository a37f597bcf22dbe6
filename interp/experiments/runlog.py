"""``run.log``: one JSON line per unit start and end, in the run directory.

Each line is appended, flushed and fsync'ed before the run goes on, so a ``kill -9``
loses at most the unit in flight (its ``start`` line stays, without an ``end``). An
``end`` line holds the unit's wall time, samples generated, denoising steps, largest
batch, peak memory, executor and worker. ``worker`` is the ``host:pid`` of the process
that ran the unit's generations: the driver with the local executor (and on ``start``
lines), the Ray actors' ``host:pid`` joined by commas, sorted, on a Ray ``end`` line
(peak memory stays the driver's). A resumed run skips finished units, so it
writes no second ``end`` for them; a unit whose ``end`` is logged but whose result file
was lost reruns without a second ``end`` line. A line cut short by a kill is ignored
when reading and sealed with a newline before the next append. A ``note`` line records
an event inside a unit, e.g. a batch halved after running out of memory
(:func:`interp.batching.run_halving`).

Example lines::

    {"event": "start", "step": "patch", "unit": "p0-s0", "time": "2026-...", ...}
    {"event": "end", "step": "patch", "unit": "p0-s0", "wall_s": 12.5, "generations": 50, ...}
"""

import json
import os
import socket
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from interp.progress import Progress

LOG_NAME = "run.log"


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The entries of ``run_dir/run.log`` (empty if there is none); torn lines are skipped."""
    path = Path(run_dir) / LOG_NAME
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _peak_memory() -> dict[str, Any]:
    """CUDA's max allocated bytes since the last reset, else the process's peak RSS."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        return {"peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
                "memory_kind": "cuda_max_allocated"}  # fmt: skip
    from interp.memory import process_peak_bytes

    return {"peak_memory_mb": round(process_peak_bytes() / 2**20, 1), "memory_kind": "process_peak_rss"}


def _reset_peak_memory() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats()


class RunLog:
    """Appends unit entries to ``run_dir/run.log``.

    Args:
        run_dir: The run directory.
        executor: Name of the executor running the units (``"local"``, ``"ray"``).
    """

    def __init__(self, run_dir: str | Path, executor: str = "local") -> None:
        self.path = Path(run_dir) / LOG_NAME
        self.executor = executor
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.Lock()  # units side by side append whole lines, one at a time
        self._ended = {(e.get("step"), e.get("unit"), e.get("fingerprint"))
                       for e in read_log(run_dir) if e.get("event") == "end"}  # fmt: skip
        self._seal()

    def _seal(self) -> None:
        """End a line torn by a kill, so the next entry starts on its own line."""
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                torn = f.read(1) != b"\n"
            if torn:
                self._append_raw("\n")

    def _append_raw(self, text: str) -> None:
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def _append(self, entry: dict[str, Any]) -> None:
        self._append_raw(json.dumps(entry, sort_keys=True) + "\n")

    def logged(self, step: str, unit: str, fingerprint: str) -> bool:
        """Whether an ``end`` entry for this unit (same fingerprint) is already there."""
        return (step, unit, fingerprint) in self._ended

    def start(self, step: str, unit: str, fingerprint: str) -> None:
        _reset_peak_memory()
        if not self.logged(step, unit, fingerprint):
            self._append({"event": "start", "step": step, "unit": unit, "fingerprint": fingerprint,
                          "time": utc_now(), "executor": self.executor, "worker": self.worker})  # fmt: skip

    def note(self, step: str, unit: str, message: str) -> None:
        """A ``note`` line about the unit in flight (e.g. a batch halved for memory)."""
        self._append({"event": "note", "step": step, "unit": unit, "time": utc_now(), "message": message,
                      "worker": self.worker})  # fmt: skip

    def end(self, step: str, unit: str, fingerprint: str, started: str, counts: Progress) -> None:
        """Log a finished unit with the counts its :class:`~interp.progress.Progress` gathered."""
        if self.logged(step, unit, fingerprint):
            return
        wall = counts.elapsed_s()
        self._append({
            "event": "end", "step": step, "unit": unit, "fingerprint": fingerprint,
            "start": started, "end": utc_now(), "wall_s": round(wall, 4),
            "generations": counts.generations_done, "denoising_steps": counts.denoising_steps,
            "batch_size": counts.max_batch_size, **_peak_memory(),
            "executor": self.executor, "worker": ",".join(sorted(counts.workers)) or self.worker,
        })  # fmt: skip
        self._ended.add((step, unit, fingerprint))


def _current_fingerprints(run_dir: Path) -> set[str] | None:
    """Fingerprints of the unit files now in the run directory (``None``: no units/)."""
    units = run_dir / "units"
    if not units.is_dir():
        return None
    found = set()
    for path in units.glob("*.json"):
        try:
            found.add(json.loads(path.read_text(encoding="utf-8")).get("fingerprint", ""))
        except (OSError, json.JSONDecodeError, AttributeError):
            continue
    return found


def _span_s(ends: list[dict[str, Any]]) -> float | None:
    """Seconds covered by the units' start..end times, overlaps counted once (``None``
    if an entry lacks readable times)."""
    try:
        spans = sorted((datetime.fromisoformat(e["start"]), datetime.fromisoformat(e["end"])) for e in ends)
    except (KeyError, TypeError, ValueError):
        return None
    covered, reach = 0.0, None
    for start, end in spans:
        if reach is None or start > reach:
            covered += (end - start).total_seconds()
            reach = end
        elif end > reach:
            covered += (end - reach).total_seconds()
            reach = end
    return covered


def summarize(run_dir: str | Path, slowest: int = 5) -> str:
    """A few lines about ``run.log``: total time, time per generation, the slowest units.

    Entries of units whose result is no longer in ``units/`` (the spec changed since) are
    left out of the totals and counted separately."""
    ends = [e for e in read_log(run_dir) if e.get("event") == "end"]
    current = _current_fingerprints(Path(run_dir))
    stale = 0
    if current is not None:
        kept = [e for e in ends if e.get("fingerprint") in current]
        stale, ends = len(ends) - len(kept), kept
    if not ends:
        return "run.log: no finished units logged."
    total = sum(float(e.get("wall_s", 0.0)) for e in ends)
    generations = sum(int(e.get("generations", 0)) for e in ends)
    steps = sum(int(e.get("denoising_steps", 0)) for e in ends)
    peak = max(float(e.get("peak_memory_mb", 0.0)) for e in ends)
    span = _span_s(ends)
    overlapped = span is not None and span < 0.99 * total - 0.05  # side by side (Ray)
    wall = span if span is not None and overlapped else total
    per = f"{wall / generations:.3g} s per generation" if generations else "no generations"
    side = f" ({span:.1f} s of wall clock: units ran side by side)" if overlapped else ""
    left_out = f" ({stale} entries of an earlier spec left out.)" if stale else ""
    lines = [f"run.log: {len(ends)} units in {total:.1f} s{side}; {generations} generations ({per}), "
             f"{steps} denoising steps; peak memory {peak:.0f} MB.{left_out}"]  # fmt: skip
    ordered = sorted(ends, key=lambda e: -float(e.get("wall_s", 0.0)))[:slowest]
    lines.append("slowest units:")
    for e in ordered:
        lines.append(f"  {e.get('step')}/{e.get('unit')}: {float(e.get('wall_s', 0.0)):.2f} s, "
                     f"{e.get('generations', 0)} generations, batch {e.get('batch_size', 0)}, "
                     f"{e.get('executor')} on {e.get('worker')}")  # fmt: skip
    return "\n".join(lines)
