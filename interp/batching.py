"""Batch sizes that fit: ``batch_size: auto`` and halving on out-of-memory errors.

**Auto.** :func:`resolve_batch_size` turns ``"auto"`` into the largest batch whose
estimated peak fits in :data:`MEMORY_FRACTION` of the device's free memory
(:func:`interp.memory.available_bytes`), **capped** at a fixed ceiling per device type
(:data:`AUTO_CEILINGS`: 8 on the CPU, 64 on CUDA) and rounded down to a power of two.
Where the memory allows the ceiling, ``auto`` is exactly ``batch_size: <ceiling>``, so
the same spec gives the same chunks and the same bits on any machine with enough
memory; when the memory forces a smaller batch, a warning says so (pin ``batch_size``
for bit-exact comparisons across machines). In a run, the engine resolves ``auto`` once
per step (:class:`AutoBatch`, :func:`resolving_auto`): the first resolution in the step,
on the driver, before any work is chunked, fixes the number for the whole step, and a
resumed run reuses the number recorded in the run directory. The estimate comes
from one *probe* (:func:`probe_row_bytes`): a real generation of one sample for one
denoising step, without decoding, whose peak memory growth is measured
(:class:`interp.memory.PeakMeter`; on the CPU after the pipeline's memory-mapped weights
are paged in, :func:`interp.memory.page_in`, so their loading is not charged to it). The whole growth is charged to the probe's one
sample, fixed costs included, so larger batches are estimated high, never low. Reads
kept over many steps are added per step from the probe's own reads; decoding is left
out because the adapters decode one sample at a time (``models/decoding.py``). The
probe is run once per model and generation settings in a process and its estimate is
kept; the free memory is the driver's, read again at every resolution (executors never
resolve: they receive chunks already cut, so the chunking does not depend on them).

**Plans.** A cost plan counts ``auto`` as :func:`planned_batch_size` says: the number the
planner sets (:func:`planning_auto`: the device's ceiling, or the probe's choice with
``tada plan --calibrate``).

**Halving.** :func:`run_halving` runs a chunk of work items and, when the memory runs
out (:func:`interp.memory.is_out_of_memory`), splits the chunk in two and runs the
halves, with one line on the console and in the run log (:func:`on_batch_note`). Work
in the same process that shares the chunk's ``kind`` then starts at the smaller size.
At one item it raises :class:`OutOfMemory`.

Neither changes results: rows of a batched generation do not depend on each other
(every sample has its own seed), so any split gives the same numbers, up to the float
rounding by which batches of different shapes differ (a split into the same shapes
gives the same bits).
"""

import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

import torch

from interp.adapter import GenerationRequest, ModelAdapter
from interp.edits import Read
from interp.errors import TadaError
from interp.memory import PeakMeter, available_bytes, is_cuda, is_out_of_memory, page_in
from interp.progress import expect
from interp.quiet import TadaWarning

T = TypeVar("T")
R = TypeVar("R")

#: ``batch_size`` as specs and library functions take it.
BatchSize = int | Literal["auto"]
AUTO: Literal["auto"] = "auto"
#: Share of the free memory an automatic batch may fill (the rest absorbs what the
#: probe cannot see: allocator fragmentation, other processes growing meanwhile).
MEMORY_FRACTION = 0.7
#: The largest batch ``auto`` picks, per device type. CPU: 8, the fixed default before
#: ``auto`` (so CPU runs keep their chunking and their numbers; larger CPU batches are
#: not faster, the cores are busy already). CUDA: 64 samples keep a GPU's cores busy for
#: the models here and fit one 24 GB card for SynthMusic and the tiny models; larger
#: models are limited by the memory long before.
AUTO_CEILINGS: dict[str, int] = {"cpu": 8, "cuda": 64}
#: The ceiling of any other device type (``mps``, ``xpu``, ...).
DEFAULT_CEILING = 8


class OutOfMemory(TadaError, MemoryError):
    """One work item does not fit in memory, even alone."""


def check_batch_size(batch_size: object, what: str = "batch_size") -> BatchSize:
    """``batch_size`` if it is an int >= 1 or ``"auto"``; a clear error otherwise."""
    if batch_size == AUTO:
        return AUTO
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise TadaError(
            f"{what} must be 'auto' (the largest batch that fits in memory) or an integer >= 1, "
            f"got {batch_size!r}."
        )
    return batch_size


def fitting_batch(row_bytes: int, free_bytes: int, cap: int, fixed_rows: int = 0) -> int:
    """The largest batch of ``cap`` or fewer whose rows (plus ``fixed_rows`` that every
    batch carries, e.g. a control row) fit in :data:`MEMORY_FRACTION` of ``free_bytes``;
    at least 1."""
    if cap < 1:
        return 1
    rows = int(MEMORY_FRACTION * free_bytes) // max(row_bytes, 1) - fixed_rows
    return max(1, min(cap, rows))


@dataclass(frozen=True)
class Probe:
    """What one sample of a piece of work costs.

    Attributes:
        row_bytes: Estimated peak bytes one sample adds, its reads over all steps included.
        read_bytes: Read key -> bytes the read holds for one sample over all its steps.
    """

    row_bytes: int
    read_bytes: dict[str, int]


_PROBES: dict[tuple, Probe] = {}


def auto_ceiling(device: torch.device | str) -> int:
    """The largest batch ``auto`` picks on ``device`` (:data:`AUTO_CEILINGS`)."""
    return AUTO_CEILINGS.get(torch.device(device).type, DEFAULT_CEILING)


def _power_of_two_floor(n: int) -> int:
    return 1 << (max(n, 1).bit_length() - 1)


@dataclass(frozen=True)
class AutoChoice:
    """What ``auto`` resolved to, and why.

    Attributes:
        size: The batch: the ceiling, or the largest power of two that fits below it.
        fits: The largest batch the probe says fits in free memory.
        ceiling: The device type's ceiling (:func:`auto_ceiling`).
        device: The device's type (``cpu``, ``cuda``).
    """

    size: int
    fits: int
    ceiling: int
    device: str

    @property
    def limited(self) -> bool:
        """Whether the memory forced a batch below the ceiling."""
        return self.size < self.ceiling

    def message(self) -> str:
        if self.limited:
            return (
                f"batch_size: auto is {self.size}, below the {self.device} ceiling of {self.ceiling}: "
                f"only {self.fits} fit in free memory; batches of other sizes round differently in the "
                f"last bits, so pin batch_size: {self.size} for bit-exact comparisons across machines."
            )
        return f"batch_size: auto is {self.size} (the {self.device} ceiling; {self.fits} would fit in free memory)."


def choose_auto(
    adapter: ModelAdapter,
    request: GenerationRequest,
    *,
    reads: Sequence[Read] = (),
    fixed_rows: int = 0,
    fresh: bool = False,
) -> AutoChoice:
    """What ``auto`` resolves to for this work on the driver's device now (one probe,
    kept per process unless ``fresh``; the free memory read now)."""
    row = probe(adapter, request, reads, fresh=fresh).row_bytes
    ceiling = auto_ceiling(adapter.device)
    fits = fitting_batch(row, available_bytes(adapter.device), 2**31, fixed_rows)
    size = min(ceiling, _power_of_two_floor(fits))
    return AutoChoice(size, fits, ceiling, torch.device(adapter.device).type)


@dataclass
class AutoBatch:
    """The number ``auto`` stands for in one step of a run.

    The first ``auto`` resolution inside :func:`resolving_auto` sets :attr:`size` (and
    calls :attr:`on_resolved`, which records it in the run directory); every later one in
    the step returns it. A resumed run starts with the recorded size.

    Attributes:
        size: The resolved batch, or ``None`` until the first resolution.
        on_resolved: Called with the choice when the step resolves it.
        recorded: Whether :attr:`size` came from the run directory (a resumed run).
    """

    size: int | None = None
    on_resolved: Callable[[AutoChoice], None] | None = None
    recorded: bool = False
    _announced: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


_AUTO: ContextVar[AutoBatch | None] = ContextVar("tada_auto_batch", default=None)


@contextmanager
def resolving_auto(slot: AutoBatch) -> Iterator[None]:
    """``auto`` inside the block resolves once, into ``slot`` (see :class:`AutoBatch`)."""
    token = _AUTO.set(slot)
    try:
        yield
    finally:
        _AUTO.reset(token)


def _resolve_in(slot: AutoBatch, resolve: Callable[[], AutoChoice]) -> int:
    """``slot``'s size, resolved now if the step has none yet; a note the first time."""
    with slot._lock:
        if slot.size is None:
            choice = resolve()
            slot.size = choice.size
            _announce(choice.message(), warn=choice.limited)
            if slot.on_resolved is not None:
                slot.on_resolved(choice)
        elif slot.recorded and not slot._announced:
            _announce(f"batch_size: auto is {slot.size}, as recorded when this step started.", warn=False)
        slot._announced = True
        return slot.size


@dataclass
class PlannedAuto:
    """How a cost plan counts ``auto`` (see :func:`planning_auto`).

    Attributes:
        size: The batch ``auto`` is counted as.
        used: Whether some cost twin counted ``auto`` (the step then runs one probe).
    """

    size: int
    used: bool = False


_PLANNED: ContextVar[PlannedAuto | None] = ContextVar("tada_planned_auto", default=None)


@contextmanager
def planning_auto(size: int) -> Iterator[PlannedAuto]:
    """Cost plans inside the block count ``auto`` as ``size``; the record says whether
    they did."""
    planned = PlannedAuto(size)
    token = _PLANNED.set(planned)
    try:
        yield planned
    finally:
        _PLANNED.reset(token)


def planned_batch_size(batch_size: BatchSize) -> int:
    """The batch a cost plan counts: ``batch_size`` itself, or for ``auto`` the number set
    by :func:`planning_auto` (outside one: the CPU ceiling)."""
    batch_size = check_batch_size(batch_size)
    if batch_size != AUTO:
        return batch_size
    planned = _PLANNED.get()
    if planned is None:
        return AUTO_CEILINGS["cpu"]
    planned.used = True
    return planned.size


def probe_request(request: GenerationRequest) -> GenerationRequest:
    """The generation :func:`probe` runs for ``request``: its first sample, one
    denoising step, not decoded."""
    return replace(
        request,
        prompts=request.prompts[:1],
        seeds=request.seeds[:1],
        num_steps=1,
        decode=False,
        start_step=0,
        start_latents=None,
        keep_latents_at=(),
        keep_graph=False,
    )


def _probe_key(adapter: ModelAdapter, request: GenerationRequest, reads: Sequence[Read]) -> tuple:
    settings = replace(
        request, prompts=("",), seeds=(0,), start_step=0, start_latents=None, keep_latents_at=()
    )
    return (id(adapter), repr(settings), tuple((r.site.name, r.branch.value, r.reduce) for r in reads))


def probe(
    adapter: ModelAdapter, request: GenerationRequest, reads: Sequence[Read] = (), *, fresh: bool = False
) -> Probe:
    """Measure what one sample of ``request`` costs (see :class:`Probe`).

    Runs one sample of ``request`` for one denoising step, undecoded, with ``reads`` on
    that step, and measures its peak growth; each read's bytes on that step count again
    for every further step it keeps. Kept per model and settings for the process.

    Args:
        adapter: The model.
        request: The generation settings of the work (its first prompt and seed are used).
        reads: The reads every generation of the work makes.
    """
    from interp.runner import run

    key = _probe_key(adapter, request, reads)
    if key in _PROBES and not fresh:
        return _PROBES[key]
    one = probe_request(request)
    probe_reads = [Read(r.site, steps=None, branch=r.branch, reduce=r.reduce, key=r.key) for r in reads]
    expect(1)  # the probe is a generation the progress display counts
    devices = [adapter.device] if is_cuda(adapter.device) else []
    if not devices:  # memory-mapped weights must not count as the sample's growth
        page_in(_pipeline_modules(adapter))
    # the probe leaves the global random state as it found it: the work's numbers must
    # not depend on whether a probe ran before them (a resumed run does not probe)
    with torch.random.fork_rng(devices=devices), PeakMeter(adapter.device) as meter, torch.no_grad():
        result = run(adapter, one, reads=probe_reads)
    read_bytes = {}
    for read in reads:
        per_step = result.reads[read.key].element_size() * result.reads[read.key][0].numel()
        read_bytes[read.key] = per_step * len(read.steps.resolve(request.num_steps))
    held = sum(read_bytes.values()) - sum(  # the probe's own step is in its peak already
        result.reads[r.key][0].numel() * result.reads[r.key].element_size() for r in reads
    )
    latents = result.output.latents
    kept = latents.element_size() * latents.numel() * (len(request.keep_latents_at) + 1)
    _PROBES[key] = Probe(int(meter.peak_bytes + max(held, 0) + kept), read_bytes)
    return _PROBES[key]


def _pipeline_modules(adapter: ModelAdapter) -> list[torch.nn.Module]:
    """The torch modules of ``adapter``'s pipeline (its components), denoiser included."""
    components = getattr(adapter.pipeline, "components", None) or {}
    modules = [m for m in components.values() if isinstance(m, torch.nn.Module)]
    return [*modules, adapter.denoiser]


def probe_row_bytes(adapter: ModelAdapter, request: GenerationRequest, reads: Sequence[Read] = ()) -> int:
    """Estimated peak bytes one sample of ``request`` adds, reads included
    (:attr:`Probe.row_bytes` of :func:`probe`)."""
    return probe(adapter, request, reads).row_bytes


def resolve_batch_size(
    batch_size: BatchSize,
    adapter: ModelAdapter,
    request: GenerationRequest,
    cap: int,
    *,
    reads: Sequence[Read] = (),
    fixed_rows: int = 0,
) -> int:
    """``batch_size`` as a number: itself if it is one, else ``auto``'s batch
    (:func:`choose_auto`; inside :func:`resolving_auto`, the step's one number).

    Args:
        batch_size: An int, or ``"auto"``.
        adapter: The model.
        request: The settings every batch is generated with.
        cap: The work's size (no batch is larger).
        reads: The reads each batch makes.
        fixed_rows: Samples every batch adds to its ``batch_size`` (a control row).
    """
    batch_size = check_batch_size(batch_size)
    if batch_size != AUTO:
        return batch_size
    slot = _AUTO.get()
    if slot is None:
        return (
            1
            if cap <= 1
            else min(cap, choose_auto(adapter, request, reads=reads, fixed_rows=fixed_rows).size)
        )
    # the step's one number (not capped by this work: later work may be larger), from a
    # probe of its own (so a step runs exactly one, as its plan counts)
    size = _resolve_in(
        slot, lambda: choose_auto(adapter, request, reads=reads, fixed_rows=fixed_rows, fresh=True)
    )
    return max(1, min(cap, size))


#: Listeners told of every halving and ``auto`` resolution (the engine writes them to run.log).
_LISTENERS: ContextVar[tuple[Callable[[str], None], ...]] = ContextVar("tada_halving_listeners", default=())
#: Kind of work -> the largest chunk known to fit, learned from out-of-memory errors.
_CEILINGS: dict[str, int] = {}


@contextmanager
def on_batch_note(listener: Callable[[str], None]) -> Iterator[None]:
    """Call ``listener(message)`` for every halving inside the block, and for the
    resolution of ``auto`` in a step (the engine writes them to run.log)."""
    token = _LISTENERS.set((*_LISTENERS.get(), listener))
    try:
        yield
    finally:
        _LISTENERS.reset(token)


def _announce(message: str, warn: bool = True) -> None:
    if warn:
        warnings.warn(TadaWarning(message), stacklevel=3)
    for listener in _LISTENERS.get():
        listener(message)


def run_halving(
    items: Sequence[T], run_chunk: Callable[[Sequence[T]], R], kind: str, what: str = "items"
) -> list[R]:
    """``[run_chunk(items)]``, or the results of its parts if it runs out of memory.

    A chunk that runs out of memory is cut in two halves (the first one the larger),
    each run the same way; what comes back is the result of every chunk that ran, in
    the order of their items.

    Args:
        items: The chunk's work items.
        run_chunk: Runs a chunk of items.
        kind: The kind of work: chunks of one kind in this process start at the size
            halving last found to fit.
        what: What an item is, for messages (``"variants"``, ``"samples"``).
    """
    ceiling = _CEILINGS.get(kind)
    if ceiling is not None and len(items) > ceiling:
        return [r for part in chunks(items, ceiling) for r in run_halving(part, run_chunk, kind, what)]
    try:
        return [run_chunk(items)]
    except Exception as error:
        if isinstance(error, OutOfMemory) or not is_out_of_memory(error):
            raise
        if len(items) <= 1:
            first = str(error).splitlines()[0] if str(error) else ""
            raise OutOfMemory(
                f"Out of memory with a batch of one ({what}): {type(error).__name__}: {first}. "
                f"Free memory on the device, or use a smaller dtype (model: {{dtype: bfloat16}}), "
                f"fewer steps or reads, or a shorter duration."
            ) from error
    # retried outside the except clause: the error's traceback holds the failed chunk's
    # tensors, released only once the clause ends
    _release_cached_memory()
    half = (len(items) + 1) // 2
    _CEILINGS[kind] = min(_CEILINGS.get(kind, half), half)
    _announce(f"out of memory with a batch of {len(items)} {what}; retrying as {half} + {len(items) - half}.")
    return run_halving(items[:half], run_chunk, kind, what) + run_halving(items[half:], run_chunk, kind, what)


def _release_cached_memory() -> None:
    """Collect the failed attempt's garbage and return CUDA's cached blocks."""
    import gc

    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def forget_halvings() -> None:
    """Forget the chunk sizes learned from out-of-memory errors (tests, a new device)."""
    _CEILINGS.clear()


def chunks(items: Sequence[T], size: int) -> list[tuple[T, ...]]:
    """``items`` cut into consecutive tuples of ``size`` (the last may be shorter)."""
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)]


__all__ = [
    "AUTO",
    "AUTO_CEILINGS",
    "DEFAULT_CEILING",
    "MEMORY_FRACTION",
    "AutoBatch",
    "AutoChoice",
    "BatchSize",
    "OutOfMemory",
    "Probe",
    "auto_ceiling",
    "check_batch_size",
    "choose_auto",
    "chunks",
    "fitting_batch",
    "forget_halvings",
    "on_batch_note",
    "PlannedAuto",
    "planned_batch_size",
    "planning_auto",
    "probe",
    "probe_request",
    "probe_row_bytes",
    "resolve_batch_size",
    "resolving_auto",
    "run_halving",
]
