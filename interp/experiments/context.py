"""What a method sees while it plans, runs and summarises its step.

:class:`StepContext` gives methods the model (loaded lazily, only when a unit actually
runs), the step's resolved prompts, generation settings and metrics, a runner for
traced generations, and helpers that write artifacts atomically into the run directory
with relative paths for the report.
"""

import hashlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Float
from torch import Tensor

from interp.adapter import GenerationOutput, GenerationRequest
from interp.edits import Edit, Read
from interp.experiments.checks import CheckContext
from interp.experiments.methods import MethodSpec
from interp.experiments.metric_specs import MetricSpec, compute
from interp.experiments.prompt_specs import Prompt
from interp.experiments.spec import ExperimentSpec, GenerationSpec
from interp.experiments.units import Row, Unit, UnitResult, atomic_write
from interp.metrics import MetricContext
from interp.runner import RunResult

#: One waveform: ``[samples]`` or ``[channels, samples]``.
Waveform = Float[Tensor, "*channels samples"] | Float[np.ndarray, "*channels samples"]

__all__ = ["CheckContext", "StepContext"]


def _safe(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "._-=+" else "_" for c in name)
    keep = keep.strip("._") or "artifact"
    if len(keep.encode()) > 120:  # file names hold 255 bytes: cut, and keep names distinct
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        keep = keep.encode()[:100].decode(errors="ignore") + "-" + digest
    return keep


@dataclass
class StepContext:
    """The run-time context of one step.

    Attributes:
        spec: The whole experiment.
        step: This step's settings, with references to earlier steps resolved.
        out_dir: The run directory.
        generation: The step's effective generation settings.
        prompts: The step's resolved prompts.
        metrics: The step's metrics.
        previous: Summaries of the earlier steps, by step name.
        results: The finished units (complete when ``finalize`` runs).
        unit: The unit being run, if any.
    """

    spec: ExperimentSpec
    step: MethodSpec
    out_dir: Path
    generation: GenerationSpec
    prompts: list[Prompt]
    metrics: list[MetricSpec]
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: list[UnitResult] = field(default_factory=list)
    unit: Unit | None = None
    base_dir: Path = field(default_factory=Path.cwd)
    _artifacts: list[str] = field(default_factory=list)
    _step_artifacts: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The step's name."""
        return self.step.name

    # -- the model -----------------------------------------------------------------

    @property
    def adapter(self) -> Any:
        """The model with weights, loaded on first use (cached per process)."""
        from interp.experiments import model as models

        m = self.spec.model
        adapter = models.load(m.name, weights=True, device=m.device, dtype=m.dtype, base_dir=self.base_dir)
        models.set_threads(adapter, m.threads, m.device)
        return adapter

    @property
    def structure(self) -> Any:
        """The model without weights (meta device where possible): for planning."""
        from interp.experiments import model as models

        return models.load(self.spec.model.name, weights=False, base_dir=self.base_dir)

    @property
    def catalog(self) -> Any:
        """The model's site catalog, from a structure-only build (no weights needed)."""
        from interp.experiments import model as models

        return models.load(self.spec.model.name, weights=False, base_dir=self.base_dir).catalog

    def request(
        self, prompts: Sequence[str], seeds: Sequence[int] | None = None, **changes: Any
    ) -> GenerationRequest:
        """A :class:`~interp.adapter.GenerationRequest` with the step's settings.

        Args:
            prompts: One prompt per sample.
            seeds: One seed per sample (default: the step's seeds, if they match).
            **changes: Overrides of ``num_steps``, ``guidance_scale``, ... .
        """
        g = self.generation
        values: dict[str, Any] = {
            "prompts": tuple(prompts),
            "seeds": tuple(g.seeds if seeds is None else seeds),
            "num_steps": g.num_steps,
            "guidance_scale": g.guidance_scale,
            "negative_prompt": g.negative_prompt,
            "duration_s": g.duration_s,
        }
        values.update(changes)
        return GenerationRequest(**values)

    def generate(
        self, request: GenerationRequest, edits: Sequence[Edit] = (), reads: Sequence[Read] = ()
    ) -> RunResult:
        """Run one traced generation with :func:`interp.runner.run`, on the run's
        executor (reads and outputs come back on the CPU from Ray workers)."""
        from interp.distributed import run_tasks
        from interp.distributed.tasks import GenerationTask

        return run_tasks(self.adapter, [GenerationTask(request, tuple(edits), tuple(reads))])[0]

    def score(
        self,
        output: GenerationOutput,
        request: GenerationRequest,
        prompts: Sequence[Prompt],
        reference: Callable[[], GenerationOutput] | None = None,
    ) -> dict[str, list[float]]:
        """The step's metrics for a generation: metric column -> one float per sample.

        Args:
            output: The :class:`~interp.adapter.GenerationOutput` to score.
            request: The request that produced it.
            prompts: The resolved prompts of its samples.
            reference: Computes the reference output (for ``latent_distance``).
        """
        context = MetricContext(
            request=request, prompts=list(prompts), reference_fn=reference, adapter=self.adapter
        )
        return compute(self.metrics, output, context)

    # -- artifacts -----------------------------------------------------------------

    def _artifact(self, folder: str, name: str, suffix: str) -> tuple[Path, str]:
        relative = f"{folder}/{_safe(self.name)}/{_safe(name)}{suffix}"
        return self.out_dir / relative, relative

    def _record(self, relative: str) -> str:
        (self._artifacts if self.unit is not None else self._step_artifacts).append(relative)
        return relative

    def record_file(self, path: str | Path) -> str:
        """Register a file that other code wrote inside the run directory, so the report
        and the unit's artifact list show it; returns its relative path."""
        resolved = Path(path).resolve()
        try:
            relative = resolved.relative_to(self.out_dir.resolve()).as_posix()
        except ValueError:
            raise ValueError(f"{str(path)!r} lies outside the run directory {str(self.out_dir)!r}") from None
        return self._record(relative)

    def record_folder(
        self, folder: str | Path, suffixes: tuple[str, ...] = (".png", ".wav", ".json", ".csv")
    ) -> list[str]:
        """Register every file with one of ``suffixes`` under ``folder`` (in sorted order),
        for methods whose library code writes a folder of results; returns the paths."""
        return [
            self.record_file(path)
            for path in sorted(Path(folder).rglob("*"))
            if path.is_file() and path.suffix in suffixes
        ]

    def save_audio(self, name: str, audio: Waveform, sample_rate: int) -> str:
        """Write a waveform (``[samples]`` or ``[channels, samples]``) as 16-bit WAV.

        Returns:
            Its path relative to the run directory.
        """
        import soundfile

        array = audio.detach().float().cpu().numpy() if isinstance(audio, Tensor) else np.asarray(audio)
        array = np.clip(array, -1.0, 1.0)
        if array.ndim == 2:
            array = array.T
        path, relative = self._artifact("audio", name, ".wav")
        atomic_write(
            path, lambda temp: soundfile.write(temp, array, int(sample_rate), subtype="PCM_16", format="WAV")
        )
        return self._record(relative)

    def save_array(self, name: str, array: Tensor | np.ndarray) -> str:
        """Write a tensor or array as ``.npy``; returns its relative path."""
        value = array.detach().cpu().numpy() if isinstance(array, Tensor) else np.asarray(array)
        path, relative = self._artifact("arrays", name, ".npy")

        def write(temp: Path) -> None:
            buffer = io.BytesIO()
            np.save(buffer, value, allow_pickle=False)
            temp.write_bytes(buffer.getvalue())

        atomic_write(path, write)
        return self._record(relative)

    def save_json(self, name: str, data: Any) -> str:
        """Write JSON-ready data; returns its relative path."""
        path, relative = self._artifact("data", name, ".json")
        text = json.dumps(data, indent=1, sort_keys=True)
        atomic_write(path, lambda temp: temp.write_text(text + "\n", encoding="utf-8"))
        return self._record(relative)

    def save_plot(self, figure: Any, name: str) -> str:
        """Save a matplotlib figure as PNG (and close it); returns its relative path."""
        import matplotlib.pyplot as plt

        relative = f"plots/{_safe(self.name)}-{_safe(name)}.png"
        path = self.out_dir / relative

        def write(temp: Path) -> None:
            figure.savefig(temp, format="png", dpi=100, metadata={"Software": None})

        atomic_write(path, write)
        plt.close(figure)
        return self._record(relative)

    # -- finished units --------------------------------------------------------------

    @property
    def rows(self) -> list[Row]:
        """All rows of the finished units, in plan order."""
        return [row for result in self.results for row in result.rows]
