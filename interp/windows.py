"""Windows of the denoising trajectory: which steps a time-resolved patch covers.

A :class:`Window` is a half-open range of denoising steps ``[start, stop)``: ``0:5`` is
steps 0-4, ``5:5`` is empty (it patches nothing). A :class:`WindowPlan` is the set of
windows one time-resolved sweep measures (:mod:`interp.time_patching`):

* **fixed windows**, e.g. 5 windows of 5 steps out of 25 (``0:5``, ``5:10``, ...);
* **up to step k**, the cumulative windows ``0:k`` (the first ``k`` steps);
* **from step k on**, the cumulative windows ``k:N`` (every step from ``k``).

The full window ``0:N`` (every step: the ordinary patch) is always part of a plan; it is
what the cumulative windows are compared with.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from interp.errors import SelectionError

#: The most windows one plan may hold. Each window is a patched generation per site, pair
#: and seed, and the cumulative windows cover up to every step each, so the work grows
#: with windows x steps; a step-by-step plan of a 100-step schedule has about 300.
MAX_WINDOWS = 1000


@dataclass(frozen=True, order=True)
class Window:
    """The denoising steps ``start, ..., stop - 1`` (empty when ``start == stop``)."""

    start: int
    stop: int

    def __post_init__(self) -> None:
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (self.start, self.stop))
        if not ints or not 0 <= self.start <= self.stop:
            raise SelectionError(
                f"Invalid window [{self.start!r}, {self.stop!r}): a window is a half-open range of "
                f"denoising steps 'start:stop' with 0 <= start <= stop, e.g. '0:5' (steps 0-4)."
            )

    @classmethod
    def parse(cls, value: "Window | str") -> "Window":
        """Accept a :class:`Window` or ``'start:stop'`` (``'5:10'``: steps 5-9)."""
        if isinstance(value, Window):
            return value
        start, sep, stop = str(value).partition(":")
        try:
            if not sep or not str(value).isascii():
                raise ValueError(value)
            bounds = int(start), int(stop)
        except ValueError:
            raise SelectionError(
                f"Cannot read the window {value!r}: write 'start:stop', a half-open range of "
                f"denoising steps such as '0:5' (steps 0-4) or '20:25'."
            ) from None
        return cls(*bounds)

    @property
    def steps(self) -> tuple[int, ...]:
        """The steps the window covers (empty for a zero-step window)."""
        return tuple(range(self.start, self.stop))

    @property
    def label(self) -> str:
        """``'start:stop'``, as written in specs and results."""
        return f"{self.start}:{self.stop}"

    def check(self, num_steps: int) -> None:
        """Refuse a window that runs past a schedule of ``num_steps`` steps."""
        if self.stop > num_steps:
            raise SelectionError(
                f"Window {self.label} ends after the last step: the generation has {num_steps} "
                f"steps (0..{num_steps - 1}), so a window 'start:stop' needs stop <= {num_steps}."
            )


def even_windows(num_steps: int, size: int) -> tuple[Window, ...]:
    """Consecutive windows of ``size`` steps covering the schedule (the last may be shorter)."""
    if size < 1:
        raise SelectionError(f"A window holds at least one step, got a window size of {size}.")
    return tuple(Window(a, min(a + size, num_steps)) for a in range(0, num_steps, size))


@dataclass(frozen=True)
class WindowPlan:
    """The windows of one time-resolved sweep.

    Attributes:
        num_steps: The schedule's length ``N``.
        fixed: Windows measured as given (e.g. :func:`even_windows`).
        boundaries: Steps ``k`` of the cumulative windows ``0:k`` (up to step k) and
            ``k:N`` (from step k on). ``0`` and ``N`` are always included.
    """

    num_steps: int
    fixed: tuple[Window, ...]
    boundaries: tuple[int, ...]

    def __init__(self, num_steps: int, fixed: Iterable[Window | str] = (), boundaries: Iterable[int] = ()):
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise SelectionError(f"num_steps must be a positive integer, got {num_steps!r}.")
        windows = tuple(Window.parse(w) for w in fixed)
        for window in windows:
            window.check(num_steps)
        cuts = tuple(sorted({0, num_steps, *boundaries}))
        bad = [k for k in cuts if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= num_steps]
        if bad:
            raise SelectionError(
                f"Window boundaries {bad} are outside the schedule: with {num_steps} steps a "
                f"boundary k (up to step k, from step k on) is in 0..{num_steps}."
            )
        count = len(set(windows)) + 2 * len(cuts)  # fixed, up to k, from k (an upper bound)
        if count > MAX_WINDOWS and len(self._distinct(num_steps, windows, cuts)) > MAX_WINDOWS:
            raise SelectionError(
                f"{len(self._distinct(num_steps, windows, cuts))} windows over {num_steps} steps is more "
                f"than the {MAX_WINDOWS} a time-resolved sweep takes (each is a patched generation per "
                f"site, pair and seed): use wider windows or cumulative windows every more steps, "
                f"e.g. window: {max(1, num_steps // 100)} for about 300."
            )
        object.__setattr__(self, "num_steps", num_steps)
        object.__setattr__(self, "fixed", windows)
        object.__setattr__(self, "boundaries", cuts)

    @staticmethod
    def _distinct(num_steps: int, fixed: tuple[Window, ...], cuts: tuple[int, ...]) -> set[Window]:
        return {*fixed, *(Window(0, k) for k in cuts), *(Window(k, num_steps) for k in cuts if k < num_steps)}

    @classmethod
    def even(cls, num_steps: int, size: int, every: int | None = None) -> "WindowPlan":
        """Windows of ``size`` steps, and cumulative windows every ``every`` steps (default
        ``size``): ``even(25, 5)`` is ``0:5 ... 20:25``, up to and from 0, 5, ..., 25."""
        every = size if every is None else every
        if every < 1:
            raise SelectionError(f"Cumulative windows need a step of at least 1, got every={every}.")
        return cls(num_steps, even_windows(num_steps, size), range(0, num_steps + 1, every))

    @property
    def full(self) -> Window:
        """Every step: the ordinary patch."""
        return Window(0, self.num_steps)

    def up_to(self) -> tuple[Window, ...]:
        """``0:k`` for every boundary ``k`` (``0:0`` is empty, ``0:N`` the full patch)."""
        return tuple(Window(0, k) for k in self.boundaries)

    def from_(self) -> tuple[Window, ...]:
        """``k:N`` for every boundary ``k < N``."""
        return tuple(Window(k, self.num_steps) for k in self.boundaries if k < self.num_steps)

    def windows(self) -> tuple[Window, ...]:
        """Every distinct window of the plan: fixed, up to, from (first occurrence kept)."""
        return tuple(dict.fromkeys((*self.fixed, *self.up_to(), *self.from_())))
