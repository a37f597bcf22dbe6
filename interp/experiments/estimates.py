"""Wall time and peak memory of a planned spec: a shipped table of measured rates, or a
calibration on the spec's own model and device.

A run's wall time is modelled per pipeline call as

    call_s + steps x (forward_s + rows x row_step_s) x (3 with gradients) + samples x decode_s

(``decode_s`` only when the call decodes). ``forward_s`` is what a denoising step costs
whatever its batch (the scheduler, the tracing, a small model's kernel launches),
``row_step_s`` what each row adds; a backward pass is counted as two forwards.

The rates come from ``cost_rates.json`` (shipped next to this module): per model and
device class (``cpu``, ``cuda``, ``mps``), numbers that were *measured*, with where and
how. A model or device class without an entry is unknown: the plan says "unknown, run
--calibrate" instead of guessing. :func:`calibrate` measures the rates of the spec's
model on the spec's device and dtype in a few short generations.

Peak memory is an estimate: the parameters the run holds (the whole pipeline at the
spec's dtype, and on the CPU the metrics' scorers), plus activations per
denoiser row times the largest batch, plus the decoder's working memory per sample
times the largest decoded batch (when the table or the calibration knows them).
"""

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from interp.cost import Calls, Cost

TABLE = Path(__file__).with_name("cost_rates.json")
#: A step with gradients: one forward and a backward of about twice its cost.
GRADIENT_FACTOR = 3.0


@dataclass(frozen=True)
class Rates:
    """Measured costs of one model on one device class (``None``: not known).

    Attributes:
        row_step_s: Seconds each denoiser row adds to a denoising step.
        forward_s: Seconds of a denoising step whatever its batch.
        call_s: Seconds of a pipeline call outside its denoising steps and decoding.
        decode_s: Seconds to decode one sample.
        activation_bytes_per_row: Working memory of a denoiser forward per row.
        decode_bytes_per_sample: Working memory of the decoder per sample.
        unit_s: The run's own seconds per unit (files, WAVs, metrics), when measured
            with the model (:mod:`interp.experiments.calibration`); ``None``: the
            table's ``framework`` entry.
        step_s: The run's own seconds per step (summary, plots, its share of the
            report), likewise.
        source: Where the numbers come from (machine, date, how).
    """

    row_step_s: float | None = None
    forward_s: float = 0.0
    call_s: float = 0.0
    decode_s: float | None = None
    activation_bytes_per_row: float | None = None
    decode_bytes_per_sample: float | None = None
    unit_s: float | None = None
    step_s: float | None = None
    source: str = ""

    def framework(self) -> "Framework":
        """The run's own costs: these rates' when measured, else the table's."""
        if self.unit_s is None or self.step_s is None:
            return framework()
        return Framework(self.unit_s, self.step_s, "measured by the calibration's probe run")

    def call_seconds(self, c: Calls) -> float | None:
        """Wall time of ``c`` (``None`` when a rate it needs is unknown)."""
        if self.row_step_s is None or (c.decode and self.decode_s is None):
            return None
        step = (self.forward_s + c.rows * self.row_step_s) * (GRADIENT_FACTOR if c.gradients else 1.0)
        decode = c.samples * (self.decode_s or 0.0) if c.decode else 0.0
        return c.count * (self.call_s + c.steps * step + decode)

    def seconds(self, cost: Cost) -> float | None:
        """Wall time of every call of ``cost`` (``None`` when unknown)."""
        times = [self.call_seconds(c) for c in cost.calls]
        return None if any(t is None for t in times) else sum((t for t in times if t is not None), 0.0)

    def peak_bytes(self, cost: Cost, resident_bytes: int) -> float | None:
        """Estimated peak memory of ``cost``'s largest call on top of ``resident_bytes``
        (the parameters held: :mod:`interp.experiments.resident`); ``None`` when unknown."""
        if not cost.calls:
            return float(resident_bytes)
        if self.activation_bytes_per_row is None:
            return None
        decoded = max((c.samples for c in cost.calls if c.decode), default=0)
        if decoded and self.decode_bytes_per_sample is None:
            return None
        activations = self.activation_bytes_per_row * cost.max_rows
        decoding = decoded * (self.decode_bytes_per_sample or 0.0)
        return resident_bytes + max(activations, decoding)


@dataclass(frozen=True)
class Framework:
    """The run's own costs besides generating (result files, WAVs, metrics, plots, the
    report), which matter for small models.

    Attributes:
        unit_s: Seconds per unit.
        step_s: Seconds per step (its summary and plots; the report, once per run, is
            shared out over the steps).
        source: Where the numbers come from.
    """

    unit_s: float = 0.0
    step_s: float = 0.0
    source: str = ""

    def seconds(self, units: int, steps: int) -> float:
        """The framework's time for ``units`` units in ``steps`` steps."""
        return units * self.unit_s + steps * self.step_s


def framework(path: Path = TABLE) -> Framework:
    """The table's framework costs (none when it has no entry)."""
    entry = json.loads(path.read_text(encoding="utf-8")).get("framework")
    return Framework(**entry) if entry else Framework()


def device_class(device: str) -> str:
    """``cuda``, ``mps`` or ``cpu``: the key of a device in the rates table."""
    for kind in ("cuda", "mps"):
        if device.startswith(kind):
            return kind
    return "cpu"


def load_table(path: Path = TABLE) -> dict[str, Any]:
    """The shipped table: model -> {aliases, device class -> rates}."""
    return json.loads(path.read_text(encoding="utf-8"))["models"]


def lookup(model: str, device: str, dtype: str | None = None, path: Path = TABLE) -> Rates | None:
    """The table's rates for a model (name, alias, or a directory named like one) on a
    device class and dtype (``float32`` when ``None``); ``None`` when not measured."""
    table = load_table(path)
    names = {model, Path(model).name}
    for key, entry in table.items():
        if names & {key, *entry.get("aliases", [])}:
            found = entry.get(device_class(device), {}).get(dtype or "float32")
            return Rates(**found) if found is not None else None
    return None


def measured_for(model: str, path: Path = TABLE) -> list[str]:
    """The device classes and dtypes the table has rates of for ``model`` (``cpu float32``)."""
    names = {model, Path(model).name}
    for key, entry in load_table(path).items():
        if names & {key, *entry.get("aliases", [])}:
            return [
                f"{device} {dtype}"
                for device, dtypes in entry.items()
                if device != "aliases"
                for dtype in dtypes
            ]
    return []


def missing_rates(model: str, device: str, dtype: str | None) -> str:
    """Why the table has no rates for a model on a device class and dtype, and what to do."""
    known = measured_for(model)
    has = f"it has {', '.join(known)}" if known else "it has none for this model"
    return (
        f"none in the table for {model} on {device_class(device)} in {dtype or 'float32'} ({has}); "
        f"times are unknown until `tada plan --calibrate` where the model loads with its weights"
    )


def _peak_rss() -> int:
    """The process's peak resident memory in bytes (Linux reports KiB)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _memory(device: str, peak: bool = False) -> int:
    """CUDA: allocated bytes now (the peak since the last call with ``peak=False`` when
    ``peak``); CPU: the process's peak resident memory, so growth is a lower bound."""
    import torch

    if not device.startswith("cuda"):
        return _peak_rss()
    if peak:
        return int(torch.cuda.max_memory_allocated())
    torch.cuda.reset_peak_memory_stats()
    return int(torch.cuda.memory_allocated())


def _timed(fn: Callable[[], Any], device: str) -> float:
    import torch

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def calibrate(
    adapter: Any, base: Any, rows: tuple[int, int], *, decode: bool = True, repeats: int = 2, trials: int = 3
) -> tuple[Rates, dict[str, float]]:
    """Measure a model's rates on its device with a few traced generations.

    A warm-up generation is discarded; then, at the smallest and the largest batch of the
    plan (``rows``, denoiser rows), one generation of 1 step and one of ``1 + repeats``
    steps give the cost of a step and of a call; two batch sizes give the per-row slope.
    With ``decode``, one sample is decoded once more to time the decoder. Each difference
    (more steps against fewer, decoding against not) is timed as ``trials`` back-to-back
    pairs, and the median difference counts (a shared machine's load comes and goes).

    Args:
        adapter: The loaded model (with weights).
        base: A :class:`~interp.adapter.GenerationRequest` with the spec's settings.
        rows: The smallest and largest denoiser batch to time.
        decode: Also time the decoder.
        repeats: Extra denoising steps of the longer generation.
        trials: Pairs of generations timed for each difference (the median counts).

    Returns:
        The rates, and the raw timings (seconds per step at each batch).
    """
    from dataclasses import replace

    from interp.edits import Read
    from interp.runner import run

    device = str(adapter.device)
    per_sample = 2 if base.guided else 1
    site = adapter.catalog.where(attention="cross", component="out")[0].name

    def generate(samples: int, steps: int, with_decode: bool = False) -> float:
        request = replace(
            base, prompts=("calibration",) * samples, seeds=tuple(range(samples)),
            num_steps=steps, decode=with_decode,
        )  # fmt: skip
        return _timed(lambda: run(adapter, request, reads=[Read(site)]), device)

    def paired(a: Callable[[], float], b: Callable[[], float]) -> tuple[float, float]:
        """The medians of ``a`` and of ``b - a``, timed back to back ``trials`` times (a
        load that comes and goes slows both of a pair alike)."""
        pairs = [(a(), b()) for _ in range(trials)]
        return _median([x for x, _ in pairs]), _median([y - x for x, y in pairs])

    small, large = (max(1, r // per_sample) for r in rows)
    generate(small, 1)  # warm-up: discarded
    before = _memory(device)
    step: dict[int, float] = {}
    call = []
    for samples in dict.fromkeys((large, small)):
        one, extra = paired(lambda n=samples: generate(n, 1), lambda n=samples: generate(n, 1 + repeats))
        step[samples * per_sample] = max(0.0, extra / repeats)
        call.append(max(0.0, one - step[samples * per_sample]))
    after = _memory(device, peak=True)
    (r_small, t_small), (r_large, t_large) = min(step.items()), max(step.items())
    slope = (t_large - t_small) / (r_large - r_small) if r_large > r_small else t_large / r_large
    slope = max(slope, 0.0)
    intercept = max(0.0, t_small - slope * r_small)
    decode_s, decode_bytes = None, None
    if decode:
        generate(1, 1, True)  # the decoder's first call may compile or load: discarded
        start = _memory(device)
        decode_s = max(0.0, paired(lambda: generate(1, 1, False), lambda: generate(1, 1, True))[1])
        decode_bytes = float(max(0, _memory(device, peak=True) - start))
    rates = Rates(
        row_step_s=slope,
        forward_s=intercept,
        call_s=sum(call) / len(call),
        decode_s=decode_s,
        activation_bytes_per_row=max(0, after - before) / (large * per_sample),
        decode_bytes_per_sample=decode_bytes,
        source=f"calibrated now on {device} ({time.strftime('%Y-%m-%d %H:%M')})",
    )
    return rates, {f"step_s_at_{r}_rows": t for r, t in sorted(step.items())}


def rates_entry(rates: Rates) -> dict[str, Any]:
    """A table entry for ``rates`` (for ``cost_rates.json``)."""
    return {
        k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v) for k, v in asdict(rates).items()
    }
