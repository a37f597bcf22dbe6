"""Progress of long runs as plain events: generations done, denoising steps, an ETA.

Three parties take part:

* the **runner** (:func:`interp.runner.run`) opens one *batch* per generation it
  executes (:func:`generation`): ``batch_size`` samples, ``steps`` denoising steps;
* the **adapters** call :func:`denoising_step` from their pipeline's per-step callback
  (or their own sampling loop), so step events come from the real generation;
* **methods and sweeps** that know how many samples they will generate announce it
  with :func:`expect`, which gives the display a total and an ETA.

All of them talk to the *active* :class:`Progress` (set with :func:`reporting`), or to
nobody when none is active, so library code has no ``progress`` flag to thread through.
The active reporter is the one set in the calling thread's context, so units that run
side by side in driver threads each count their own; a thread that inherited no
context (a tracing backend may run the model in a thread of its own) reports to the
innermost reporter of the process. Every event is a frozen :class:`ProgressEvent` of
plain values, so it can be pickled and sent from a worker process to a driver: a Ray
worker runs each work item under a reporter that buffers its events, and the driver
:meth:`Progress.replay` s them into the unit's reporter, whose callbacks (a display,
``run(progress=...)``) then see them (see :mod:`interp.distributed.ray_pool`).

Example::

    from interp.progress import Progress, reporting

    events = []
    with reporting(Progress(events.append)):
        sweep(adapter, base, pairs, seeds, variants, metric)
    print(events[-1].generations_done, events[-1].eta_s)
"""

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

EventKind = Literal["unit_start", "expect", "batch_start", "step", "batch_end", "unit_end"]


@dataclass(frozen=True)
class ProgressEvent:
    """One thing that happened, with the counts after it.

    Attributes:
        kind: ``unit_start`` / ``unit_end`` (an experiment unit), ``expect`` (the
            total grew), ``batch_start`` / ``batch_end`` (one batched generation),
            ``step`` (one denoising step of the current batch finished).
        unit: Id of the experiment unit, or ``None`` outside the experiment engine.
        generations_done: Samples generated so far in this unit (or reporter).
        generations_total: Samples announced with :func:`expect` (``None``: unknown).
        batch_size: Samples in the current batch (0 between batches).
        step: Denoising steps finished in the current batch.
        steps: Denoising steps the current batch runs.
        denoising_steps: Denoising steps finished so far in this unit, all batches.
        elapsed_s: Seconds since the unit (or reporter) started.
        eta_s: Seconds left for the announced total, from the measured time per
            denoising step and sample; ``None`` until a step was measured or with no total.
    """

    kind: EventKind
    unit: str | None
    generations_done: int
    generations_total: int | None
    batch_size: int
    step: int
    steps: int
    denoising_steps: int
    elapsed_s: float
    eta_s: float | None


class Progress:
    """Counts generations and denoising steps and sends a :class:`ProgressEvent` for each.

    Args:
        *callbacks: Called with every event, in order.
        clock: Seconds as a float (default :func:`time.perf_counter`).
    """

    def __init__(self, *callbacks: Callable[[ProgressEvent], None],
                 clock: Callable[[], float] = time.perf_counter) -> None:  # fmt: skip
        self.callbacks = list(callbacks)
        self.clock = clock
        self.reset(None)

    def reset(self, unit: str | None) -> None:
        """Zero the counts (a new unit starts)."""
        self.unit = unit
        self.generations_done = 0
        self.generations_total: int | None = None
        self.batch_size = 0
        self.step_count = 0
        self.steps = 0
        self.denoising_steps = 0
        self.max_batch_size = 0
        self.workers: set[str] = set()  # host:pid of the processes that ran replayed items
        self._started = self.clock()
        self._batch_started = self._started
        self._step_time = 0.0  # seconds spent in measured denoising steps
        self._sample_steps = 0  # sum of batch sizes over measured steps

    # --- the counting side ---------------------------------------------------------
    def start_unit(self, unit: str) -> None:
        self.reset(unit)
        self._emit("unit_start")

    def end_unit(self) -> None:
        self._emit("unit_end")

    def expect(self, generations: int) -> None:
        """Announce ``generations`` more samples to come."""
        self.generations_total = (self.generations_total or 0) + int(generations)
        self._emit("expect")

    def batch_start(self, batch_size: int, steps: int) -> None:
        self.batch_size, self.steps, self.step_count = int(batch_size), int(steps), 0
        self.max_batch_size = max(self.max_batch_size, self.batch_size)
        self._batch_started = self._last_step = self.clock()
        self._emit("batch_start")

    def denoising_step(self, seconds: float | None = None) -> None:
        """One step of the current batch finished, ``seconds`` after the previous one
        (default: measured here)."""
        now = self.clock()
        self._step_time += now - self._last_step if seconds is None else seconds
        self._sample_steps += self.batch_size
        self._last_step = now
        self.step_count += 1
        self.denoising_steps += 1
        self._emit("step")

    def batch_end(self) -> None:
        self.generations_done += self.batch_size
        self.batch_size, self.step_count = 0, 0
        self._emit("batch_end")

    def replay(self, events: Sequence[ProgressEvent], worker: str | None = None) -> None:
        """Count the events another reporter sent (a work item's, on a Ray worker) as
        if they happened here: batches, steps with the step times measured there, and
        totals announced there. ``worker`` (host:pid) is added to :attr:`workers`."""
        if worker is not None:
            self.workers.add(worker)
        total, previous = None, 0.0
        for event in events:
            if event.kind == "expect":
                self.expect((event.generations_total or 0) - (total or 0))
                total = event.generations_total
            elif event.kind == "batch_start":
                self.batch_start(event.batch_size, event.steps)
            elif event.kind == "step":
                self.denoising_step(seconds=max(event.elapsed_s - previous, 0.0))
            elif event.kind == "batch_end":
                self.batch_end()
            previous = event.elapsed_s

    # --- derived values ------------------------------------------------------------
    def elapsed_s(self) -> float:
        """Seconds since the unit (or reporter) started."""
        return self.clock() - self._started

    def seconds_per_sample_step(self) -> float | None:
        """Measured seconds per denoising step of one sample (``None`` before a step)."""
        return self._step_time / self._sample_steps if self._sample_steps else None

    def eta_s(self) -> float | None:
        """Seconds left for the announced total. With replayed items (Ray workers) the
        rate is this reporter's wall time per sample-step, since items of the unit run in
        parallel on several workers (or wait for workers busy with other units)."""
        rate = self.seconds_per_sample_step()
        if self.workers and self._sample_steps:
            rate = self.elapsed_s() / self._sample_steps
        if rate is None or self.generations_total is None:
            return None
        in_flight = self.batch_size * max(self.steps - self.step_count, 0)
        after = max(self.generations_total - self.generations_done - self.batch_size, 0)
        return rate * (in_flight + after * max(self.steps, 1))

    def event(self, kind: EventKind) -> ProgressEvent:
        return ProgressEvent(
            kind=kind, unit=self.unit, generations_done=self.generations_done,
            generations_total=self.generations_total, batch_size=self.batch_size,
            step=self.step_count, steps=self.steps, denoising_steps=self.denoising_steps,
            elapsed_s=self.elapsed_s(), eta_s=self.eta_s(),
        )  # fmt: skip

    def _emit(self, kind: EventKind) -> None:
        if self.callbacks:
            event = self.event(kind)
            for callback in self.callbacks:
                callback(event)


_active: list[Progress] = []  # the process's reporters, innermost last
_context: ContextVar[Progress | None] = ContextVar("tada_progress", default=None)


@contextmanager
def reporting(progress: Progress) -> Iterator[Progress]:
    """Make ``progress`` the reporter that generations, steps and totals go to."""
    _active.append(progress)
    token = _context.set(progress)
    try:
        yield progress
    finally:
        _context.reset(token)
        _active.remove(progress)


def active() -> Progress | None:
    """This context's reporter, else the process's innermost one, else ``None``."""
    progress = _context.get()
    if progress is not None:
        return progress
    return _active[-1] if _active else None


def expect(generations: int) -> None:
    """Announce ``generations`` samples to the active reporter (no-op without one)."""
    progress = active()
    if progress is not None:
        progress.expect(generations)


def denoising_step() -> None:
    """One denoising step of the current batch finished (called by adapters)."""
    progress = active()
    if progress is not None:
        progress.denoising_step()


@contextmanager
def generation(batch_size: int, steps: int) -> Iterator[None]:
    """A batched generation of ``batch_size`` samples over ``steps`` denoising steps."""
    progress = active()
    if progress is None:
        yield
        return
    progress.batch_start(batch_size, steps)
    yield
    progress.batch_end()


@contextmanager
def shown(enabled: bool, desc: str) -> Iterator[None]:
    """A terminal display for a library call made outside any reporter.

    Inside an active reporter (the experiment engine, a caller's own) this does nothing:
    that reporter already receives the counts. Otherwise, with ``enabled``, a
    :class:`~interp.progress_display.ProgressDisplay` shows them until the block ends.
    """
    if not enabled or active() is not None:
        yield
        return
    from interp.progress_display import ProgressDisplay

    display = ProgressDisplay(desc)
    try:
        with reporting(Progress(display)):
            yield
    finally:
        display.close()
