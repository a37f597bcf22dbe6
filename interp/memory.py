"""How much memory is free on a device, how much a piece of work took, and whether an
error means the memory ran out.

* :func:`available_bytes`: CUDA's free memory (``torch.cuda.mem_get_info``), or the
  kernel's ``MemAvailable`` (``/proc/meminfo``) on the CPU; at most the limit of an
  enclosing :func:`free_memory_limit` (keep a run below a share of a machine, or make
  the free memory look smaller in a test).
* :class:`PeakMeter`: the peak memory a block added on top of what was in use when it
  started. CUDA: ``max_memory_allocated`` after ``reset_peak_memory_stats``. CPU: the
  process's resident-set high-water mark (``VmHWM``) after resetting it through
  ``/proc/self/clear_refs``, minus the resident set at the start. Memory the C
  allocator keeps after earlier frees is returned to the system first
  (``malloc_trim``), or the block would reuse it without its resident set growing and
  its peak would read low. Where the reset is
  not allowed, the high-water mark of the whole process is used (it can only
  overestimate the block's peak when the block raised it, and reports zero growth
  otherwise, see :attr:`PeakMeter.exact`).
* :func:`page_in`: read one byte of every memory page of modules' CPU weights. Weights
  loaded from safetensors files are memory-mapped and enter the resident set only when
  first read, so a :class:`PeakMeter` around a model's first call on the CPU would count
  the loading of its weights as the call's growth (a full-size AudioLDM2-large: 6 GB of
  file-backed pages); paged in first, the meter sees only what the call adds.
* :func:`process_peak_bytes`: the process's peak resident set since it started,
  including peaks from before any :class:`PeakMeter` reset (``run.log`` reports it).
* :func:`is_out_of_memory`: ``torch.OutOfMemoryError`` (CUDA), or the ``RuntimeError``
  of torch's CPU allocator ("can't allocate memory"), also when wrapped by another
  exception (nnsight re-raises errors of the traced model).
"""

import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_MEMINFO = Path("/proc/meminfo")
_CPU_OOM_MESSAGES = ("can't allocate memory", "not enough memory", "out of memory")
_state: dict[str, Any] = {"peak_before_resets": 0, "free_limit": None}


def _status_kib(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _rss_bytes() -> int:
    kib = _status_kib("VmRSS")
    return 0 if kib is None else kib * 1024


def _hwm_bytes() -> int:
    """The resident-set high-water mark since the last reset (or the process start)."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _release_freed_memory() -> None:
    """Give memory that glibc's allocator holds after frees back to the system."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to release
        pass


def _reset_hwm() -> bool:
    """Reset ``VmHWM`` to the current resident set; False where that is not allowed."""
    before = _hwm_bytes()
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    _state["peak_before_resets"] = max(_state["peak_before_resets"], before)
    return True


#: Bytes between two reads of :func:`page_in` (the smallest Linux page).
_PAGE_BYTES = 4096


def page_in(modules: Iterable[torch.nn.Module]) -> int:
    """Read one byte of every page of the CPU parameters and buffers of ``modules``, so
    that memory-mapped weights are resident before a measurement; returns the bytes
    covered. Each storage is read once (tied weights share one); other devices, the
    ``meta`` device and empty tensors are skipped."""
    seen: set[int] = set()
    covered = 0
    with torch.no_grad():
        for module in modules:
            for tensor in (*module.parameters(), *module.buffers()):
                if tensor.device.type != "cpu" or tensor.numel() == 0:
                    continue
                storage = tensor.untyped_storage()
                if storage.data_ptr() in seen:
                    continue
                seen.add(storage.data_ptr())
                as_bytes = torch.empty(0, dtype=torch.uint8).set_(storage)
                as_bytes[::_PAGE_BYTES].sum()
                covered += storage.nbytes()
    return covered


def process_peak_bytes() -> int:
    """The process's peak resident set since it started (resets included)."""
    return max(_state["peak_before_resets"], _hwm_bytes())


def is_cuda(device: torch.device | str) -> bool:
    return torch.device(device).type == "cuda"


@contextmanager
def free_memory_limit(max_bytes: int) -> Iterator[None]:
    """:func:`available_bytes` reports at most ``max_bytes`` inside the block (in every
    thread of the process)."""
    before = _state["free_limit"]
    _state["free_limit"] = int(max_bytes) if before is None else min(before, int(max_bytes))
    try:
        yield
    finally:
        _state["free_limit"] = before


def available_bytes(device: torch.device | str) -> int:
    """Bytes a new allocation on ``device`` can take now.

    CUDA: the free memory of the device (other processes' use counted). CPU: the
    kernel's estimate of memory available without swapping (``MemAvailable``). At most
    the limit of an enclosing :func:`free_memory_limit`. Raises
    :class:`~interp.errors.TadaError` where neither can be read.
    """
    limit = _state["free_limit"]
    free = _device_free_bytes(device)
    return free if limit is None else min(free, limit)


def _device_free_bytes(device: torch.device | str) -> int:
    from interp.errors import TadaError

    if is_cuda(device):
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        match = re.search(r"^MemAvailable:\s+(\d+) kB", _MEMINFO.read_text(), re.MULTILINE)
    except OSError:
        match = None
    if match is None:
        raise TadaError(
            "Cannot read the free memory of this machine (/proc/meminfo has no MemAvailable), so "
            "batch_size: auto cannot choose a batch; give batch_size as a number."
        )
    return int(match.group(1)) * 1024


class PeakMeter:
    """Measures the peak memory a block adds on ``device``.

    Use as ``with PeakMeter(device) as meter: ...`` then read :attr:`peak_bytes`.

    Attributes:
        peak_bytes: Peak bytes in use during the block minus those in use at its start.
        exact: Whether the peak was reset at the start (CUDA always; CPU where
            ``/proc/self/clear_refs`` may be written). Otherwise ``peak_bytes`` is the
            growth of the process's lifetime peak, zero when the block stayed under it.
    """

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self.peak_bytes = 0
        self.exact = True
        self._start = 0

    def __enter__(self) -> "PeakMeter":
        if is_cuda(self.device):
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        else:
            _release_freed_memory()
            self.exact = _reset_hwm()
            self._start = _rss_bytes() if self.exact else _hwm_bytes()
        return self

    def __exit__(self, *exc: Any) -> None:
        if is_cuda(self.device):
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            peak = _hwm_bytes()
        self.peak_bytes = max(int(peak) - self._start, 0)


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` (or an exception it wraps) says an allocation failed."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (torch.OutOfMemoryError, MemoryError)):
            return True
        if isinstance(current, RuntimeError) and any(m in str(current) for m in _CPU_OOM_MESSAGES):
            return True
        current = current.__cause__ or current.__context__
    return False
