"""The Ray executor: a pool of actors that each load the spec's model once.

Each actor asks Ray for one GPU when the model runs on CUDA, else for ``threads``
CPUs (1 by default), loads the model with the spec's name, device and dtype, and keeps
it. Work items travel to the actors pickled; results come back through Ray's object
store as plain data or CPU tensors, and only the driver writes files.

Progress: an actor runs each item under a reporter that buffers the item's
:class:`~interp.progress.ProgressEvent` s and returns them with its result; the driver
replays them into the reporter of the unit that asked for the item, so its display and
``run.log`` count the steps the actors ran (docs/distributed.md, "Progress").

Faults are Ray's: actors are created with ``max_restarts=-1`` and
``max_task_retries=-1``, so an actor whose process dies (``kill -9``, a lost node) is
restarted, reloads the model, and the item it was running is submitted again. Items are
deterministic, so a redone item gives the same result.
"""

import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from interp.distributed.executor import OnResult, Task
from interp.errors import TadaError
from interp.progress import Progress, ProgressEvent, active, reporting

INSTALL = 'pip install -e ".[ray]"'
CONNECT_TIMEOUT_S = 8.0
INIT_TIMEOUT_S = 10.0


class ExecutorError(TadaError, RuntimeError):
    """The executor cannot start: Ray missing, cluster unreachable, bad worker count."""


@dataclass(frozen=True)
class ModelSettings:
    """What a worker needs to load the model exactly as the driver does."""

    name: str
    device: str = "cpu"
    dtype: str | None = None
    threads: int | None = None

    def load(self) -> Any:
        from interp.experiments import model as models

        adapter = models.load(self.name, weights=True, device=self.device, dtype=self.dtype)
        models.set_threads(adapter, self.threads, self.device)
        return adapter

    def resources(self) -> dict[str, int]:
        """What one actor asks Ray for."""
        if self.device.startswith("cuda"):
            return {"num_gpus": 1, "num_cpus": 1}
        return {"num_cpus": self.threads or 1}


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError(
            f"--executor ray needs Ray, which is not installed; install it with: {INSTALL}"
        ) from None
    return ray


def _check_reachable(address: str) -> None:
    """Fail fast (within ``CONNECT_TIMEOUT_S``) on a host:port nobody listens on."""
    if address == "auto":
        return
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    host, port = parsed.hostname, parsed.port
    if host is None or port is None:
        raise ExecutorError(
            f"Ray address {address!r} is not 'auto', 'host:port' or 'ray://host:port'; "
            f"omit --address to start a local Ray instance."
        )
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise ExecutorError(
            f"Cannot reach the Ray cluster at {address!r} ({error.strerror or error}); check "
            f"that it runs (`ray status`) and the address, or omit --address for a local instance."
        ) from None


def _init(ray: Any, address: str | None) -> bool:
    """Connect to (or start) Ray; ``True`` if this call started the connection."""
    if ray.is_initialized():
        return False
    options = dict(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        if address in (None, "local"):
            ray.init(**options)  # a new local instance: started here, in the main thread
        else:
            _check_reachable(address)
            _init_within(ray, options, INIT_TIMEOUT_S)
    except ExecutorError:
        raise
    except (ConnectionError, RuntimeError, ValueError) as error:
        text = str(error).strip()
        first = text.splitlines()[0].rstrip(".") if text else type(error).__name__
        raise ExecutorError(
            f"Cannot connect to Ray at {address!r}: {first}. Start a cluster (`ray start "
            f"--head`) or omit --address for a local instance."
        ) from None
    return True


def _init_within(ray: Any, options: dict[str, Any], timeout: float) -> None:
    """``ray.init(**options)``, given up after ``timeout`` seconds (Ray Client and GCS
    connections retry for minutes on an address that accepts but does not answer)."""
    outcome: dict[str, BaseException | None] = {}

    def connect() -> None:
        try:
            ray.init(**options)
            outcome["error"] = None
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=connect, name="tada-ray-connect", daemon=True)
    thread.start()
    thread.join(timeout)
    if "error" not in outcome:
        raise ExecutorError(
            f"The Ray cluster at {options['address']!r} did not answer within {timeout:.0f} s; "
            f"check that it runs (`ray status`) and the address, or omit --address for a "
            f"local instance."
        )
    if outcome["error"] is not None:
        raise outcome["error"]


@dataclass(frozen=True)
class _Outcome:
    """What an actor sends back for one item: its result, the progress events it made
    (batches, denoising steps, totals, in order), the actor's ``host:pid`` and the CPU
    seconds the item took there."""

    result: Any
    events: tuple[ProgressEvent, ...]
    worker: str
    cpu_s: float = 0.0
    started: float = 0.0  # wall clock (time.time()) on the worker
    ended: float = 0.0


class _Worker:
    """A Ray actor holding one loaded model."""

    def __init__(self, model: ModelSettings):
        self.adapter = model.load()
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.ready_cpu_s = time.process_time()  # the process's start-up: imports, model load

    def pid(self) -> int:
        return os.getpid()

    def cpu(self) -> tuple[str, float, float]:
        """``host:pid``, CPU seconds of this process until the model was loaded, and so far."""
        return self.name, self.ready_cpu_s, time.process_time()

    def call(self, fn: Any) -> Any:
        """``fn(model)`` on this actor (diagnostics, benchmarks)."""
        return fn(self.adapter)

    def run(self, task: Task) -> _Outcome:
        from interp.distributed.tasks import to_cpu

        start, started = time.thread_time(), time.time()
        events: list[ProgressEvent] = []  # this item's only: a retried item starts afresh
        with reporting(Progress(events.append)):
            result = to_cpu(task(self.adapter))
        return _Outcome(result, tuple(events), self.name, time.thread_time() - start, started, time.time())


def affinity(task: Task) -> str | None:
    """What an item shares with others that run best on the same actor (a sweep chunk's
    pair and seed, whose baseline run the actor keeps), or ``None``."""
    method = getattr(task, "affinity", None)
    return str(method()) if callable(method) else None


def _capacity(ray: Any, resources: dict[str, int]) -> int:
    """How many actors with these resources the cluster can host (busy or not: Ray
    starts an actor once resources free up)."""
    available = ray.cluster_resources()
    counts = []
    for name, need in (("GPU", resources.get("num_gpus", 0)), ("CPU", resources.get("num_cpus", 0))):
        if need:
            counts.append(int(available.get(name, 0.0) // need))
    return min(counts) if counts else 0


class RayExecutor:
    """Runs work items on ``workers`` Ray actors (see the module docstring)."""

    name = "ray"

    def __init__(self, model: ModelSettings, *, address: str | None = None, workers: int | None = None):
        if workers is not None and workers < 1:
            raise ExecutorError(
                f"--workers must be at least 1, got {workers}; omit it to use "
                f"every CPU (or GPU) the Ray cluster has."
            )
        ray = import_ray()
        self._ray = ray
        self._owns = _init(ray, address)
        resources = model.resources()
        capacity = _capacity(ray, resources)
        wanted = capacity if workers is None else workers
        granted = min(wanted, capacity)
        if granted < 1:
            self.close()
            raise ExecutorError(
                f"The Ray cluster has no room for one worker needing {resources} "
                f"(it has: {ray.cluster_resources()})."
            )
        if workers is not None and granted < workers:
            print(
                f"tada: warning: asked for {workers} Ray workers; the cluster can host "
                f"{granted} (each needs {resources}), running with {granted}.",
                file=sys.stderr,
            )
        remote = ray.remote(max_restarts=-1, max_task_retries=-1, **resources)(_Worker)
        self.actors = [remote.remote(model) for _ in range(granted)]
        self.workers = granted
        self.model = model
        #: host:pid -> [items, CPU s in items, wall s in items, first start, last end]
        self._busy: dict[str, list[float]] = {}
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        for actor in self.actors:
            self._idle.put(actor)
        self._loading = [actor.pid.remote() for actor in self.actors]  # ready once the model is loaded
        self._last: dict[int, str | None] = {}  # id(actor) -> affinity of its latest item
        self._lock = threading.Lock()
        self._driver = f"{socket.gethostname()}:{os.getpid()}"

    def pids(self) -> list[int]:
        """Process ids of the actors (for tests and diagnostics)."""
        return self._ray.get([a.pid.remote() for a in self.actors])

    def on_every_worker(self, fn: Any) -> list[Any]:
        """``fn(model)`` on every actor's model, results in actor order (diagnostics,
        benchmarks: e.g. install a counting hook, then read it)."""
        return self._ray.get([a.call.remote(fn) for a in self.actors])

    def usage(self) -> list[dict[str, Any]]:
        """Per actor: ``worker`` (host:pid), ``items`` run, ``item_cpu_s`` and
        ``item_wall_s`` (CPU and wall seconds inside items), ``first``, ``last`` (wall
        clock of its first item's start and last item's end), ``ready_cpu_s`` (process
        CPU seconds until the model was loaded) and ``total_cpu_s`` (process CPU seconds
        so far, Ray's own threads included). For benchmarks: where a run's time went."""
        rows = []
        for name, ready, total in self._ray.get([a.cpu.remote() for a in self.actors]):
            items, cpu, wall, first, last = self._busy.get(name, [0, 0.0, 0.0, 0.0, 0.0])
            rows.append(dict(worker=name, items=int(items), item_cpu_s=cpu, item_wall_s=wall, first=first,
                             last=last, ready_cpu_s=ready, total_cpu_s=total))  # fmt: skip
        return rows

    def map(self, adapter: Any, tasks: Sequence[Task], on_result: OnResult) -> list[Any]:
        """Hand items to idle actors (shared by every thread that calls ``map``, so units
        running side by side share the pool), collect results as they come.

        An actor gets, in this order of preference, the next item of the (pair, seed) it
        ran last (:func:`affinity`: it holds that baseline), one that no other actor
        holds, the next item. While no actor has loaded its model yet, the driver runs
        items itself on its own copy (:meth:`_run_here`). The progress events of each
        item are replayed, as one block when its result arrives, into the reporter
        active in the calling thread (the unit's)."""
        ray = self._ray
        reporter = active()
        results: list[Any] = [None] * len(tasks)
        pending = list(range(len(tasks)))
        running: dict[Any, tuple[int, Any]] = {}
        while pending or running:
            while pending:
                try:
                    actor = self._idle.get(block=not running, timeout=None if running else 1.0)
                except queue.Empty:
                    break
                index = self._pick(pending, tasks, actor)
                running[actor.run.remote(tasks[index])] = (index, actor)
            if pending and not self._started():
                index = pending.pop(len(pending) - 1)  # the actors take the head of the queue
                try:
                    results[index] = self._run_here(adapter, tasks[index], reporter)
                    on_result(index, results[index])
                except BaseException:
                    self._drain(running)
                    raise
                continue
            if not running:
                continue
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.05 if pending else None)
            for ref in ready:
                index, actor = running.pop(ref)
                self._idle.put(actor)
                try:
                    outcome = ray.get(ref)
                    if reporter is not None:
                        reporter.replay(outcome.events, outcome.worker)
                    busy = self._busy.setdefault(outcome.worker, [0, 0.0, 0.0, outcome.started, 0.0])
                    busy[0] += 1
                    busy[1] += outcome.cpu_s
                    busy[2] += outcome.ended - outcome.started
                    busy[3], busy[4] = min(busy[3], outcome.started), max(busy[4], outcome.ended)
                    results[index] = outcome.result
                    on_result(index, results[index])
                except BaseException:
                    self._drain(running)
                    raise
        return results

    def _pick(self, pending: list[int], tasks: Sequence[Task], actor: Any) -> int:
        """Take from ``pending`` the item ``actor`` should run next (see :meth:`map`)."""
        with self._lock:
            own = self._last.get(id(actor))
            others = {v for k, v in self._last.items() if k != id(actor)}
            keys = [affinity(tasks[i]) for i in pending]
            position = next((p for p, k in enumerate(keys) if k is not None and k == own), None)
            if position is None:
                position = next((p for p, k in enumerate(keys) if k not in others), 0)
            index = pending.pop(position)
            self._last[id(actor)] = keys[position]
            return index

    def _started(self) -> bool:
        """Whether an actor has loaded its model (checked without waiting)."""
        with self._lock:
            if self._loading:
                done, _ = self._ray.wait(self._loading, num_returns=len(self._loading), timeout=0)
                if done:
                    self._loading = []
            return not self._loading

    def _run_here(self, adapter: Any, task: Task, reporter: Any) -> Any:
        """Run an item on the driver's model (while the actors start): one item at a time,
        and never beside another unit's driver code, which may use the same model."""
        from interp.distributed.concurrency import driving

        start, started = time.thread_time(), time.time()
        with driving():
            result = task(adapter)
        if reporter is not None:
            reporter.workers.add(self._driver)
        busy = self._busy.setdefault(self._driver, [0, 0.0, 0.0, started, 0.0])
        busy[0] += 1
        busy[1] += time.thread_time() - start
        busy[2] += time.time() - started
        busy[4] = time.time()
        return result

    def _drain(self, running: dict[Any, tuple[int, Any]]) -> None:
        """After a failed item: let the others end and give their actors back."""
        if running:
            self._ray.wait(list(running), num_returns=len(running))
        for _, actor in running.values():
            self._idle.put(actor)

    def close(self) -> None:
        for actor in getattr(self, "actors", []):
            self._ray.kill(actor)
        self.actors = []
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
