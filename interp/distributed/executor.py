"""Where work items run: in this process (``local``) or on Ray actors (``ray``).

A *work item* (:class:`Task`) is a picklable callable ``task(adapter) -> result`` that
holds everything it needs but the model: a chunk of sweep variants for one (pair,
seed), or one generation. Library loops (:func:`interp.patching.sweep`, the engine's
generations) hand their items to :func:`run_tasks`, which gives them to the current
executor and returns the results **in the order of the items**, whatever order they
finished in. Chunk boundaries come from the spec (``batch_size``), never from the number
of workers, so the results are the same with any executor.

Items with a :meth:`Task.key` are persisted as they finish in the current
:class:`WorkStore`, content-addressed by that key. The engine opens one per run, so an
item is computed once per run: a driver killed mid-run resumes and computes only the
items that are missing, and a step that needs an item another step already computed
(the same sweep chunk: sites, pair, seed, generation settings, edits and metric) takes
its stored result instead of running it again.
"""

import copy
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from interp.errors import TadaError


@runtime_checkable
class Task(Protocol):
    """One work item: runs on a loaded model and returns plain data or CPU tensors."""

    def key(self) -> str | None:
        """A stable hash of everything that determines the result, or ``None`` when the
        result is not worth persisting (it is then recomputed after a crash)."""
        ...

    def __call__(self, adapter: Any) -> Any: ...


OnResult = Callable[[int, Any], None]


@runtime_checkable
class Executor(Protocol):
    """Maps work items to results."""

    #: How many items run at once (1 for the local executor).
    workers: int
    #: What ``run.log`` calls it (``local``, ``ray``).
    name: str

    def map(self, adapter: Any, tasks: Sequence[Task], on_result: OnResult) -> list[Any]:
        """Run ``tasks``; call ``on_result(index, result)`` as each finishes; return the
        results in task order. ``adapter`` is the driver's model (the local executor
        runs on it; remote executors use their own copies of the same model). The
        items' progress events reach the reporter active in the calling thread
        (:func:`interp.progress.active`), each item's in one block, in order."""
        ...

    def close(self) -> None:
        """Release workers."""
        ...


class LocalExecutor:
    """Runs every item in this process, one after the other (the default)."""

    workers = 1
    name = "local"

    def __init__(self) -> None:
        #: Items run and the CPU seconds spent in them (for benchmarks).
        self.items = 0
        self.item_cpu_s = 0.0

    def map(self, adapter: Any, tasks: Sequence[Task], on_result: OnResult) -> list[Any]:
        results = []
        for index, task in enumerate(tasks):
            start = time.thread_time()
            result = task(adapter)
            self.items += 1
            self.item_cpu_s += time.thread_time() - start
            on_result(index, result)
            results.append(result)
        return results

    def close(self) -> None:
        pass


class WorkStore:
    """Finished work items of a run, content-addressed: one JSON file per item key,
    written atomically (``<root>/<2 hex>/<address>.json``).

    The address hashes the item's :meth:`Task.key` with ``salt`` (the engine's: the
    model's identity, which item keys leave out), with SHA-256, never Python's
    ``hash()``: the same item has the same address in every process and every run. Only
    JSON-ready results are stored (sweep rows). The engine removes the folder once the
    run is finished.
    """

    def __init__(self, root: Path, salt: str = ""):
        self.root = Path(root)
        self.salt = salt

    def address(self, key: str) -> str:
        """The stable hash of ``key`` (and the store's salt) naming the item's file."""
        return hashlib.sha256(f"{self.salt}\n{key}".encode()).hexdigest()[:32]

    def path(self, key: str) -> Path:
        address = self.address(key)
        return self.root / address[:2] / f"{address}.json"

    def load(self, key: str) -> Any:
        """The stored result, or ``None`` (missing or unreadable)."""
        try:
            return json.loads(self.path(key).read_text(encoding="utf-8"))["result"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, key: str, result: Any) -> None:
        from interp.experiments.units import write_text

        write_text(self.path(key), json.dumps({"result": result}, sort_keys=True) + "\n")

    def count(self) -> int:
        """How many items are stored."""
        return len(list(self.root.glob("*/*.json"))) if self.root.is_dir() else 0

    def remove(self) -> None:
        """Delete the folder (once its run is finished)."""
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)


_EXECUTOR: ContextVar[Executor | None] = ContextVar("tada_executor", default=None)
_STORE: ContextVar[WorkStore | None] = ContextVar("tada_work_store", default=None)
_LOCAL = LocalExecutor()
_COUNT_LOCK = threading.Lock()

#: Work items computed (not taken from a store) by :func:`run_tasks` in this process, and
#: items whose result was another item's (stored, or the same key in the same call).
computed = {"items": 0, "reused": 0}


def current() -> Executor:
    """The executor work items go to (the local one unless :func:`using` set another)."""
    return _EXECUTOR.get() or _LOCAL


@contextmanager
def using(executor: Executor) -> Iterator[Executor]:
    """Send work items to ``executor`` inside the block."""
    token = _EXECUTOR.set(executor)
    try:
        yield executor
    finally:
        _EXECUTOR.reset(token)


@contextmanager
def recording(store: WorkStore | None) -> Iterator[WorkStore | None]:
    """Persist keyed work items in ``store`` inside the block (and reuse stored ones)."""
    token = _STORE.set(store)
    try:
        yield store
    finally:
        _STORE.reset(token)


def run_tasks(adapter: Any, tasks: Sequence[Task], on_result: OnResult | None = None) -> list[Any]:
    """Results of ``tasks`` in order: stored ones from the current :class:`WorkStore`,
    the others from the current executor (and stored as they finish). Items with the
    same key run once.

    Args:
        adapter: The driver's model.
        tasks: Work items.
        on_result: Called with ``(index, result)`` for every item, stored ones included,
            in completion order.
    """
    store = _STORE.get()
    keys = [task.key() if store is not None else None for task in tasks]
    results: list[Any] = [None] * len(tasks)
    missing: list[int] = []
    first: dict[str, int] = {}  # key -> the index that computes it
    copies: list[tuple[int, int]] = []  # (index, index whose result it takes)
    for index, key in enumerate(keys):
        stored = store.load(key) if store is not None and key is not None else None
        if stored is not None:
            results[index] = stored
            _count("reused")
            if on_result is not None:
                on_result(index, stored)
        elif key is not None and key in first:
            copies.append((index, first[key]))
        else:
            if key is not None:
                first[key] = index
            missing.append(index)

    def finished(position: int, result: Any) -> None:
        index = missing[position]
        if keys[index] is not None:
            store.save(keys[index], result)  # type: ignore[union-attr]
        _count("items")
        if on_result is not None:
            on_result(index, result)

    if missing:
        from interp.distributed.concurrency import waiting

        with waiting():
            done = current().map(adapter, [tasks[i] for i in missing], finished)
        if len(done) != len(missing):
            raise TadaError(f"The executor returned {len(done)} results for {len(missing)} work items.")
        for index, result in zip(missing, done):
            results[index] = result
    for index, source in copies:
        results[index] = copy.deepcopy(results[source])
        _count("reused")
        if on_result is not None:
            on_result(index, results[index])
    return results


def _count(what: str) -> None:
    with _COUNT_LOCK:
        computed[what] += 1
