"""Which denoising steps and which CFG branch an edit or read applies to.

Steps count denoiser calls of one generation, from 0 to ``num_steps - 1``. The branch
picks rows of the classifier-free-guidance batch: ``cond`` (prompt rows), ``uncond``
(negative / empty prompt rows) or ``both``. Without guidance every row is conditional.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Union

from interp.errors import SelectionError

#: What :meth:`Steps.parse` accepts: ``None``/``'all'``, an index, ``'a:b'``, or a list.
StepsLike = Union["Steps", str, int, Sequence[int], None]


class Branch(str, Enum):
    """A classifier-free-guidance branch."""

    COND = "cond"
    UNCOND = "uncond"
    BOTH = "both"

    @classmethod
    def parse(cls, value: "Branch | str") -> "Branch":
        """Accept a :class:`Branch` or one of ``'cond'``, ``'uncond'``, ``'both'``."""
        if isinstance(value, Branch):
            return value
        try:
            return cls(value)
        except ValueError:
            raise SelectionError(
                f"Unknown CFG branch {value!r}; valid branches are {[b.value for b in cls]}."
            ) from None


@dataclass(frozen=True)
class Steps:
    """A selection of denoising steps: all of them, a half-open range, or a list.

    Build with :meth:`all`, :meth:`range`, :meth:`of` or :meth:`parse`.
    """

    start: int | None = None
    stop: int | None = None
    indices: tuple[int, ...] | None = None

    @classmethod
    def all(cls) -> "Steps":
        """Every denoising step."""
        return cls()

    @classmethod
    def range(cls, start: int, stop: int | None = None) -> "Steps":
        """Steps ``start, ..., stop - 1`` (to the end when ``stop`` is None)."""
        if start < 0 or (stop is not None and stop <= start):
            raise SelectionError(f"Invalid step range [{start}, {stop}): need 0 <= start < stop.")
        return cls(start=start, stop=stop)

    @classmethod
    def of(cls, indices: Iterable[int] | int) -> "Steps":
        """Exactly the given step indices."""
        values = (indices,) if isinstance(indices, int) else tuple(indices)
        if not values or any(not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in values):
            raise SelectionError(
                f"Step indices must be a non-empty list of non-negative integers, got {values!r}."
            )
        return cls(indices=tuple(sorted(set(values))))

    @classmethod
    def parse(cls, value: StepsLike) -> "Steps":
        """Accept ``None``/``'all'``, an int, a list of ints, or ``'a:b'`` / ``'a:'``."""
        if isinstance(value, Steps):
            return value
        if value is None or value == "all":
            return cls.all()
        if isinstance(value, int) and not isinstance(value, bool):
            return cls.of(value)
        if isinstance(value, str):
            start, sep, stop = value.partition(":")
            try:
                if not value.isascii():
                    raise ValueError(value)
                if sep:
                    return cls.range(int(start or 0), int(stop) if stop else None)
                return cls.of(int(value))
            except ValueError:
                raise SelectionError(
                    f"Cannot read steps {value!r}: write 'all', an index like '3', "
                    f"a range like '0:10' or '5:', or a list like [0, 2, 4]."
                ) from None
        if not isinstance(value, (list, tuple, range)) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in value
        ):
            raise SelectionError(
                f"Cannot read steps {value!r}: write 'all', an index like 3, a range like "
                f"'0:10' or '5:', or a list like [0, 2, 4]."
            )
        return cls.of(value)

    def resolve(self, num_steps: int) -> tuple[int, ...]:
        """The concrete step indices for a generation of ``num_steps`` steps.

        Raises:
            SelectionError: If a selected step lies beyond the schedule.
        """
        if self.indices is not None:
            bad = [i for i in self.indices if i >= num_steps]
            if bad:
                raise SelectionError(
                    f"Step(s) {bad} are beyond the schedule: the generation has "
                    f"{num_steps} steps, numbered 0..{num_steps - 1}."
                )
            return self.indices
        start = self.start or 0
        stop = num_steps if self.stop is None else self.stop
        if start >= num_steps or stop > num_steps:
            raise SelectionError(
                f"Step range [{start}, {stop}) is beyond the schedule: the generation has "
                f"{num_steps} steps, numbered 0..{num_steps - 1}."
            )
        return tuple(range(start, stop))

    def __str__(self) -> str:
        if self.indices is not None:
            return ",".join(map(str, self.indices))
        if self.start is None and self.stop is None:
            return "all"
        return f"{self.start or 0}:{'' if self.stop is None else self.stop}"


def branch_rows(
    branch: Branch, batch_size: int, guided: bool, samples: tuple[int, ...] | None = None
) -> list[int]:
    """Rows of the denoiser batch that belong to ``branch`` for the chosen samples.

    The layout is the diffusers convention: under guidance the denoiser sees
    ``[uncond rows for all samples, cond rows for all samples]``; without guidance it
    sees only the conditional rows, so selecting ``uncond`` is an error.
    """
    chosen = list(range(batch_size)) if samples is None else list(samples)
    bad = [i for i in chosen if not 0 <= i < batch_size]
    if bad:
        raise SelectionError(f"Sample index(es) {bad} out of range for a batch of {batch_size} prompts.")
    if not guided:
        if branch is Branch.UNCOND:
            raise SelectionError(
                "Branch 'uncond' selected but the generation uses no classifier-free "
                "guidance (guidance_scale <= 1): there is no unconditional branch. Use "
                "'cond' or 'both', or raise guidance_scale."
            )
        return chosen
    uncond = chosen
    cond = [batch_size + i for i in chosen]
    if branch is Branch.COND:
        return cond
    if branch is Branch.UNCOND:
        return uncond
    return uncond + cond
