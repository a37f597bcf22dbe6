"""Units of a step side by side on the driver, while their work items run remotely.

With several workers, the engine runs a step's missing units (e.g. one ``locate`` per
concept) in driver threads, so the sequential parts of one concept (the greedy subset
search) overlap with the others' sweeps. Driver code itself runs one thread at a time:
a thread holds :data:`_DRIVER` except while it waits for the executor
(:func:`waiting`), so plotting, file writes, the global torch seed and the model on the
driver are never used by two units at once.
"""

import contextvars
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

_DRIVER = threading.Lock()
_HOLDING = threading.local()


@contextmanager
def waiting() -> Iterator[None]:
    """Let other units' driver code run while this thread waits for work items."""
    held = getattr(_HOLDING, "held", False)
    if held:
        _HOLDING.held = False
        _DRIVER.release()
    try:
        yield
    finally:
        if held:
            _DRIVER.acquire()
            _HOLDING.held = True


@contextmanager
def driving() -> Iterator[None]:
    """Run driver code from inside :func:`waiting` (an executor running an item on the
    driver's model): one thread at a time, as units' driver code is."""
    with _DRIVER:
        yield


def _exclusive(call: Callable[[], Any]) -> Any:
    with _DRIVER:
        _HOLDING.held = True
        try:
            return call()
        finally:
            _HOLDING.held = False


def run_side_by_side(calls: Sequence[Callable[[], Any]], threads: int) -> list[Any]:
    """Results of ``calls`` in order, up to ``threads`` of them in flight at once.

    With one thread (the local executor) they simply run one after the other. The
    first error (in call order) is raised once every call has ended.
    """
    if threads <= 1 or len(calls) <= 1:
        return [call() for call in calls]
    pool = ThreadPoolExecutor(max_workers=min(threads, len(calls)), thread_name_prefix="tada-unit")
    try:
        futures = [pool.submit(contextvars.copy_context().run, _exclusive, call) for call in calls]
        wait(futures)
    except BaseException:  # Ctrl-C: do not wait for the other units (closing the executor ends them)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return [future.result() for future in futures]
