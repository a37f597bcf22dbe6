"""Where the runner keeps a read's steps: in memory, or streamed to a memory-mapped file.

A read is stacked over its steps (``[step, rows, ...]``). Most are small, but a layer's
heads over 100 steps are not: full-size Stable Audio's ``cross.12.heads`` for the
clean and corrupted rows of a patching baseline is 100 x 2 x 1025 x 24 x 64 floats,
1.26 GB per layer, and a head sweep over every layer reads all 24 layers at once. When
a read's whole size (its first step's bytes times its steps) exceeds the *read
budget*, :class:`StepBuffer` writes each step into a tensor memory-mapped from a file
as the step happens, instead of keeping the steps in memory until the generation ends.
The result is an ordinary CPU tensor whose pages the kernel writes back to the file and
may drop from memory when it needs the space; every consumer (patching's cached
activations, ``RunResult.reads``) reads it like any other tensor, with the same values
bit for bit.

The budget (:func:`read_budget`) defaults to :data:`DEFAULT_FRACTION` of the memory
available when the generation starts; the files go to the budget's directory (the
experiment engine uses ``<run dir>/spill``, the library the system's temporary
directory). Each file is deleted as soon as it is mapped, so nothing is left behind,
even after a crash; its disk space is freed when the tensor is. The space is reserved
when the file is made (``posix_fallocate``), so a disk too small for the read is one
clear error before the generation starts writing, not a crash (SIGBUS) at the step that
finds the disk full.

Reads with a ``reduce`` are budgeted on their reduced size, so a reduction that keeps
little (a mean over positions, as CAA does) never spills.
"""

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from interp.memory import available_bytes

#: Share of the available memory (at a generation's start) one generation's reads may
#: hold before they stream to disk.
DEFAULT_FRACTION = 0.25


@dataclass(frozen=True)
class ReadBudget:
    """How many bytes of reads a generation keeps in memory, and where the rest goes.

    Attributes:
        max_bytes: Reads projected beyond this stream to disk (``None``:
            :data:`DEFAULT_FRACTION` of the available memory).
        directory: Where the memory-mapped files are made (``None``: the temporary
            directory).
    """

    max_bytes: int | None = None
    directory: Path | None = None

    def resolved_bytes(self) -> int:
        if self.max_bytes is not None:
            return self.max_bytes
        return int(DEFAULT_FRACTION * available_bytes("cpu"))


_BUDGET: ContextVar[ReadBudget | None] = ContextVar("tada_read_budget", default=None)


@contextmanager
def read_budget(max_bytes: int | None = None, directory: str | Path | None = None) -> Iterator[ReadBudget]:
    """Generations inside the block stream reads larger than ``max_bytes`` to files in
    ``directory`` (see the module docstring for the defaults)."""
    if max_bytes is not None and max_bytes < 0:
        from interp.errors import TadaError

        raise TadaError(f"read_budget max_bytes must be >= 0, got {max_bytes}.")
    budget = ReadBudget(max_bytes, None if directory is None else Path(directory))
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def current_budget() -> ReadBudget:
    """The budget set by the innermost :func:`read_budget` block (else the default)."""
    return _BUDGET.get() or ReadBudget()


class StepBuffer:
    """The steps of one read, kept in memory or streamed to a memory-mapped file.

    Args:
        steps: How many steps the read records.
        budget: Bytes left in the generation's read budget (shared by its reads: a
            one-item list, lowered by every read kept in memory).
        directory: Where a file is made if the read streams.
    """

    def __init__(self, steps: int, budget: list[int], directory: Path | None) -> None:
        self.steps = steps
        self.budget = budget
        self.directory = directory
        self.kept: list[Tensor] = []
        self.mapped: Tensor | None = None
        self.filled = 0

    @property
    def streamed(self) -> bool:
        return self.mapped is not None

    def append(self, value: Tensor, save: Callable[[Tensor], Tensor]) -> None:
        """Record one step (``save`` marks a tensor kept in memory for the tracer)."""
        if self.filled == 0 and not self.kept:
            total = value.numel() * value.element_size() * self.steps
            if total > self.budget[0]:
                self.mapped = _mapped_tensor((self.steps, *value.shape), value.dtype, self.directory)
            else:
                self.budget[0] -= total
        if self.mapped is not None:
            self.mapped[self.filled].copy_(value.detach())
            self.filled += 1
        else:
            self.kept.append(save(value))

    def result(self) -> Tensor:
        """``[step, ...]``: the mapped tensor, or the kept steps stacked."""
        if self.mapped is not None:
            return self.mapped[: self.filled]
        return torch.stack(self.kept)


def _mapped_tensor(shape: tuple[int, ...], dtype: torch.dtype, directory: Path | None) -> Tensor:
    """A zeroed CPU tensor backed by a new file in ``directory``, unlinked once mapped."""
    folder = Path(directory) if directory is not None else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"tada-read-{uuid.uuid4().hex}.bin"
    numel = 1
    for size in shape:
        numel *= int(size)
    itemsize = torch.empty(0, dtype=dtype).element_size()
    try:
        with open(path, "wb") as f:
            _reserve(f.fileno(), numel * itemsize, folder)
        flat = torch.from_file(str(path), shared=True, size=numel, dtype=dtype)
    finally:
        path.unlink(missing_ok=True)
    return flat.view(shape)


def _reserve(fd: int, size: int, folder: Path) -> None:
    """Give the file ``size`` bytes of disk now: a sparse file on a disk that fills up
    later would kill the process with SIGBUS at the first step that finds no space.

    Raises:
        TadaError: The disk of ``folder`` cannot hold ``size`` bytes.
    """
    from interp.errors import TadaError

    if size == 0:
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as error:
        raise TadaError(
            f"A read of {_size(size)} streams to disk (it exceeds the read budget), but "
            f"{str(folder)!r} cannot hold it ({error.strerror}). Free disk space there, or read "
            f"fewer steps or sites (or with a reduce)."
        ) from None


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 10**8 else f"{n / 1e6:.1f} MB"
