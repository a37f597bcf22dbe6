"""What a user sees and keeps of a running step: progress and the run log.

One :class:`StepWatch` per step of an experiment. It shows units done / total (a tqdm
line) and, below it, the current unit's generations, denoising step and ETA
(:class:`~interp.progress_display.ProgressDisplay`); or it passes every
:class:`~interp.progress.ProgressEvent` to a caller's callback. Either way each unit runs
under an active :class:`~interp.progress.Progress`, whose counts also go to ``run.log``.
"""

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from interp.experiments.runlog import RunLog, utc_now
from interp.progress import Progress, ProgressEvent, reporting

ProgressOption = bool | Callable[[ProgressEvent], None]


class StepWatch:
    """Progress display (or callback) and run log of one step.

    Args:
        progress: ``True``: tqdm lines on stderr; ``False``: nothing shown; a callable:
            called with every event (no display).
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
        self.reporter = Progress(*callbacks)
        self._started = ""

    @contextmanager
    def unit(self, step: str, unit: str, fingerprint: str) -> Iterator[Progress]:
        """Run a unit under the step's reporter; logs its start."""
        self.reporter.start_unit(unit)
        self._started = utc_now()
        self.log.start(step, unit, fingerprint)
        with reporting(self.reporter):
            yield self.reporter

    def finished(self, step: str, unit: str, fingerprint: str) -> None:
        """The unit's rows are ready (called before its result file is written)."""
        self.log.end(step, unit, fingerprint, self._started, self.reporter)
        self.reporter.end_unit()
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.display is not None:
            self.display.close()
        if self.bar is not None:
            self.bar.close()
