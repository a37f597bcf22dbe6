"""What a user sees and keeps of a running step: progress and the run log.

One :class:`StepWatch` per step of an experiment. It shows units done / total (a tqdm
line) and, below it, the current unit's generations, denoising step and ETA
(:class:`~interp.progress_display.ProgressDisplay`); or it passes every
:class:`~interp.progress.ProgressEvent` to a caller's callback. Either way each unit runs
under its own active :class:`~interp.progress.Progress`, whose counts also go to
``run.log``: units that run side by side (several Ray workers) keep separate counts,
times and log lines, and their events carry their unit id.
"""

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from interp.experiments.runlog import RunLog, utc_now
from interp.progress import Progress, ProgressEvent, reporting

ProgressOption = bool | Callable[[ProgressEvent], None]


class StepWatch:
    """Progress display (or callback) and run log of one step.

    Args:
        progress: ``True``: tqdm lines on stderr; ``False``: nothing shown; a callable:
            called with every event (no display), one call at a time even while units
            run side by side.
        name: The step's name.
        total: Units planned.
        done: Units already finished (resumed).
        log: The run's log.
    """

    def __init__(self, progress: ProgressOption, name: str, total: int, done: int, log: RunLog) -> None:
        self.log = log
        self.bar = self.display = None
        callbacks: list[Callable[[ProgressEvent], None]] = []
        if callable(progress):
            callbacks.append(progress)
        elif progress:
            from tqdm import tqdm

            from interp.progress_display import ProgressDisplay

            self.bar = tqdm(total=total, initial=done, desc=name, unit="unit", file=sys.stderr,
                            dynamic_ncols=True, position=0)  # fmt: skip
            self.display = ProgressDisplay("  unit", position=1)
            callbacks.append(self.display)
        lock = threading.Lock()  # units side by side share the display: one event at a time

        def show(event: ProgressEvent) -> None:
            with lock:
                for callback in callbacks:
                    callback(event)

        self.callbacks = [show] if callbacks else []
        self._running: dict[str, tuple[Progress, str]] = {}  # unit -> its reporter, start time

    @contextmanager
    def unit(self, step: str, unit: str, fingerprint: str) -> Iterator[Progress]:
        """Run a unit under a reporter of its own; logs its start."""
        reporter = Progress(*self.callbacks)
        reporter.start_unit(unit)
        self._running[unit] = (reporter, utc_now())
        self.log.start(step, unit, fingerprint)
        try:
            with reporting(reporter):
                yield reporter
        except BaseException:
            self._running.pop(unit, None)
            raise

    def finished(self, step: str, unit: str, fingerprint: str) -> None:
        """The unit's rows are ready (called before its result file is written)."""
        reporter, started = self._running.pop(unit)
        self.log.end(step, unit, fingerprint, started, reporter)
        reporter.end_unit()
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.display is not None:
            self.display.close()
        if self.bar is not None:
            self.bar.close()
