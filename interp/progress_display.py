"""A tqdm line that shows :class:`~interp.progress.ProgressEvent` counts on a terminal.

``unit  12/250 gen | step 3/100 | 0:41 elapsed, ETA 1:02:10``: samples generated of the
announced total, the denoising step of the current batch, and the ETA from the measured
time per step. Steps refresh the line as they finish; a background timer also redraws
it every ``refresh_s`` seconds, so the elapsed time moves even while one denoising step
of a full-size model takes longer than that.
"""

import sys
import threading
import time
from io import TextIOBase

from tqdm import tqdm

from interp.progress import ProgressEvent


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressDisplay:
    """A callback for :class:`~interp.progress.Progress` that draws one tqdm line.

    Args:
        desc: Label on the left (the unit id replaces it while a unit runs).
        position: tqdm line (1 below an outer bar of units).
        refresh_s: Redraw at least this often, seconds.
        file: Stream (default stderr).
    """

    def __init__(self, desc: str, *, position: int | None = None, refresh_s: float = 10.0,
                 file: TextIOBase | None = None) -> None:  # fmt: skip
        self.desc = desc
        self.bar = tqdm(
            total=None, desc=desc, unit="gen", file=file or sys.stderr, position=position,
            leave=position is None, dynamic_ncols=True, mininterval=0.5,
            bar_format="{desc}: {n_fmt}/{total_fmt} gen{postfix}",
        )  # fmt: skip
        self._last: ProgressEvent | None = None
        self._received = 0.0
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._tick, args=(refresh_s,), daemon=True)
        self._timer.start()

    def __call__(self, event: ProgressEvent) -> None:
        previous, self._last, self._received = self._last, event, time.perf_counter()
        if event.kind == "unit_start":
            self.bar.reset(total=None)
        if event.kind == "unit_start" or (previous is not None and previous.unit != event.unit):
            # units side by side (Ray workers) share the line: it shows the last reporting one
            self.bar.set_description_str(f"{self.desc} {event.unit}", refresh=False)
        self.bar.total = event.generations_total
        self.bar.n = event.generations_done
        self.bar.set_postfix_str(self._postfix(event), refresh=False)
        if event.kind in ("step", "unit_start", "unit_end", "batch_end"):
            self.bar.refresh()

    @staticmethod
    def _postfix(event: ProgressEvent, extra_s: float = 0.0) -> str:
        step = f"step {event.step}/{event.steps}" if event.batch_size else "between batches"
        eta = None if event.eta_s is None else max(event.eta_s - extra_s, 0.0)
        return f"{step} | {_clock(event.elapsed_s + extra_s)} elapsed, ETA {_clock(eta)}"

    def _tick(self, refresh_s: float) -> None:
        while not self._stop.wait(refresh_s):
            event, received = self._last, self._received
            if event is None:
                continue
            self.bar.set_postfix_str(self._postfix(event, time.perf_counter() - received), refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        self._stop.set()
        self._timer.join()
        self.bar.close()
