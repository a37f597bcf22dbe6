"""Work items that are not sweep chunks: one traced generation."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from interp.adapter import GenerationOutput, GenerationRequest
from interp.edits import Edit, Read
from interp.runner import RunResult


def to_cpu(value: Any) -> Any:
    """``value`` with every tensor it holds (in results, outputs, dicts, lists) on the CPU."""
    from torch import Tensor

    if isinstance(value, Tensor):
        return value.detach().cpu()
    if isinstance(value, RunResult):
        return RunResult(to_cpu(value.output), to_cpu(value.reads), dict(value.read_steps))
    if isinstance(value, GenerationOutput):
        fields = {k: to_cpu(v) for k, v in vars(value).items()}
        return GenerationOutput(**fields)
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(v) for v in value)
    return value


@dataclass(frozen=True)
class GenerationTask:
    """One :func:`interp.runner.run` call (Ray workers send its result back on the CPU)."""

    request: GenerationRequest
    edits: Sequence[Edit] = ()
    reads: Sequence[Read] = ()

    def key(self) -> None:
        return None  # generations are resumed per unit, not per item

    def __call__(self, adapter: Any) -> RunResult:
        from interp.runner import run

        return run(adapter, self.request, list(self.edits), list(self.reads))
