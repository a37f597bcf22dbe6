"""Running work items in this process or on a Ray cluster, with the same results.

See :mod:`interp.distributed.executor` (work items, executors, the work store) and
:mod:`interp.distributed.ray_pool` (Ray actors); ``docs/distributed.md`` for clusters.
"""

from dataclasses import dataclass
from typing import Literal

from interp.distributed.executor import Executor, LocalExecutor, Task, WorkStore, current, run_tasks, using
from interp.distributed.ray_pool import ExecutorError, ModelSettings, RayExecutor


@dataclass(frozen=True)
class ExecutorConfig:
    """Which executor a run uses.

    Attributes:
        kind: ``local`` (this process, the default) or ``ray``.
        address: Ray only: ``auto``, ``host:port``, ``ray://host:port``, or ``None`` to
            start a local Ray instance.
        workers: Ray only: number of actors (default: as many as the cluster hosts).
    """

    kind: Literal["local", "ray"] = "local"
    address: str | None = None
    workers: int | None = None


def make_executor(config: "ExecutorConfig | str", model: ModelSettings) -> Executor:
    """The executor for ``config`` (a kind name is shorthand for its default config)."""
    if isinstance(config, str):
        config = ExecutorConfig(kind=config)  # type: ignore[arg-type]
    if config.kind == "local":
        if config.address is not None or config.workers is not None:
            raise ExecutorError(
                "--address and --workers apply to --executor ray only; add --executor ray or drop them."
            )
        return LocalExecutor()
    if config.kind == "ray":
        return RayExecutor(model, address=config.address, workers=config.workers)
    raise ExecutorError(f"Unknown executor {config.kind!r}; valid: ['local', 'ray'].")


__all__ = [
    "Executor",
    "ExecutorConfig",
    "ExecutorError",
    "LocalExecutor",
    "ModelSettings",
    "RayExecutor",
    "Task",
    "WorkStore",
    "current",
    "make_executor",
    "run_tasks",
    "using",
]
