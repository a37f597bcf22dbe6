"""``tada plan``: a spec's planned work as a table, with time, memory and power.

:func:`plan_text` renders a :class:`~interp.experiments.planning.Plan` with the rates of
:mod:`interp.experiments.estimates`: per step, its generations, denoiser forwards,
row-steps, decodes and batch shapes, then how each was counted (calls x samples x
steps), the estimated wall time, and the totals. :func:`power_text` reads a pilot run's
per-pair variance and says how many pairs each concept needs, and what the spec costs
resized to them.
"""

import math
import sys
from typing import Any

from interp.cost import Cost
from interp.errors import TadaError
from interp.experiments.estimates import Rates, framework, missing_rates
from interp.experiments.loading import LoadedSpec
from interp.experiments.planning import Plan, plan, spec_steps, unloadable
from interp.experiments.resident import Resident

UNKNOWN = "unknown, run --calibrate"


def duration(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``4.2s``; :data:`UNKNOWN` for ``None``."""
    if seconds is None:
        return UNKNOWN
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours < 48 else f"{hours / 24:.1f} days"


def size(n: int | float | None) -> str:
    """Bytes as ``12.3 MB`` / ``4.5 GB``; :data:`UNKNOWN` for ``None``."""
    if n is None:
        return UNKNOWN
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(
        c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
    ).rstrip()


def _cells(name: str, method: str, units: str, cost: Cost, seconds: float | None, reused: str) -> list[str]:
    shapes = ",".join(str(r) for r in cost.shapes()) or "-"
    return [name, method, units, f"{cost.generations:,}", f"{cost.sample_generations:,}",
            f"{cost.forwards:,}", f"{cost.row_steps:,}", f"{cost.decodes:,}", shapes,
            duration(seconds), reused]  # fmt: skip


def _reused_cell(reused: Cost, sources: list[str]) -> str:
    """``5,376 from layers``: generations taken from the work store, and whose they are."""
    return f"{reused.generations:,} from {', '.join(sources)}" if reused.generations else "-"


def plan_seconds(rates: Rates | None, cost: Cost, units: int, steps: int) -> float | None:
    """Estimated wall time of ``cost`` run as ``units`` units in ``steps`` steps: the
    model's rates plus the run's own costs (``None`` when the rates are unknown)."""
    if rates is None or (model := rates.seconds(cost)) is None:
        return None
    return model + rates.framework().seconds(units, steps)


def rates_line(rates: Rates) -> str:
    """The rates an estimate uses, in the terms of docs/plan.md's formula."""

    def secs(value: float | None) -> str:
        return "unknown" if value is None else f"{value:.3g} s"

    fixed = rates.framework()
    return (
        f"  row_step_s {secs(rates.row_step_s)}, forward_s {secs(rates.forward_s)}, call_s {secs(rates.call_s)}, "
        f"decode_s {secs(rates.decode_s)}; the run's own: unit_s {secs(fixed.unit_s)}, step_s {secs(fixed.step_s)}"
    )


def plan_text(planned: Plan, rates: Rates | None, batch_note: str = "") -> str:
    """The plan as a table, the counting of every step, time and memory."""
    m, held = planned.model, planned.resident
    lines = [
        f"plan of {planned.name!r}: model {m['name']} on {m['device']} ({m['dtype']}), "
        f"{held.pipeline / 1e6:,.1f}M parameters ({size(held.pipeline_bytes)}, "
        f"{'the whole pipeline' if held.complete else 'the denoiser alone: ' + held.note})",
        f"rates: {rates.source if rates is not None else missing_rates(m['name'], m['device'], m['dtype'])}",
        *([rates_line(rates)] if rates is not None else []),
        "",
    ]
    header = ["step", "method", "units", "generations", "samples", "forwards", "row-steps", "decodes",
              "batch rows", "est. time", "reused generations"]  # fmt: skip
    table = [header]
    for step in planned.steps:
        time = plan_seconds(rates, step.cost, step.units, 1)
        table.append(_cells(step.name, step.method, str(step.units), step.cost, time,
                            _reused_cell(step.reused, step.reused_from)))  # fmt: skip
    everything = planned.total
    units = sum(s.units for s in planned.steps)
    overall = plan_seconds(rates, everything, units, len(planned.steps))
    reused = sum(s.reused.generations for s in planned.steps)
    table.append(_cells("total", "", str(units), everything, overall, f"{reused:,}" if reused else "-"))
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines += [_row(r, widths) for r in table]
    lines += ["", "counted (calls x samples [denoiser rows] x denoising steps):"]
    for step in planned.steps:
        note = f"  ({step.note})" if step.note else ""
        lines.append(f"  {step.name}:{note}")
        for c in step.cost.calls:
            extra = (", decoded" if c.decode else "") + (", with gradients" if c.gradients else "")
            lines.append(
                f"    {c.label:<22} {c.count:>7,} x {c.samples} [{c.rows}] x {c.steps}"
                f" = {c.row_steps:,} row-steps{extra}"
            )
        if step.reused.calls:
            lines.append(
                f"    reused from {', '.join(map(repr, step.reused_from))} (the same chunks, not run again):"
            )
        for c in step.reused.calls:
            lines.append(f"      {c.label:<20} {c.count:>7,} x {c.samples} [{c.rows}] x {c.steps}"
                         f" = {c.row_steps:,} row-steps{', decoded' if c.decode else ''}")  # fmt: skip
    peak = rates.peak_bytes(everything, held.device_bytes(m["device"])) if rates is not None else None
    fixed = rates.framework() if rates is not None else framework()
    measured = rates is not None and rates.unit_s is not None
    how = "measured by the calibration's probe run" if measured else "from the table"
    lines += ["", *resident_lines(held, m["device"], m["dtype"])]
    lines += [
        "",
        f"estimated wall time: {duration(overall)}  (one process, the model loaded: the measured "
        f"rates, plus {fixed.unit_s:.3g} s per unit and {fixed.step_s:.3g} s per step for the run's "
        f"own files, metrics and plots, {how})",
        f"estimated peak memory: {size(peak) if rates is None or peak is not None else 'not measured'}"
        f"  ({held_text(held, m['device'])} + "
        f"activations of the largest batch, {everything.max_rows} rows, or the largest decode;"
        f" activations read for patching are not included)",
    ]
    if batch_note:
        lines.append(batch_note)
    return "\n".join(lines)


def resident_lines(held: Resident, device: str, dtype: str) -> list[str]:
    """The parameters the run holds, per component, then per scorer."""
    width = max(len(k) for k in [*held.components, *(f"scorer: {k}" for k in held.scorers)])
    lines = [f"resident (what the run holds besides activations; the pipeline in {dtype}, "
             f"scorers in float32 on the CPU):"]  # fmt: skip
    for name, n in sorted(held.components.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {name:<{width}}  {n / 1e6:>10,.1f}M  {size(n * held.itemsize):>8}")
    for name, n in sorted(held.scorers.items()):
        lines.append(f"  {'scorer: ' + name:<{width}}  {n / 1e6:>10,.1f}M  {size(n * 4):>8}")
    if not held.complete:
        lines.append(f"  (the denoiser alone: {held.note}; the other components are not counted)")
    on_device = held.device_bytes(device)
    elsewhere = held.pipeline_bytes + held.scorer_bytes - on_device
    lines.append(f"  on {device}: {size(on_device)}"
                 + (f"; in CPU memory: {size(elsewhere)} of scorers" if elsewhere else ""))  # fmt: skip
    return lines


def held_text(held: Resident, device: str) -> str:
    """``pipeline 5.8 GB (denoiser 2.9 GB) + scorer 0.8 GB``: the parameters on ``device``
    (scorers only on the CPU, where they are loaded)."""
    text = f"{'pipeline' if held.complete else 'denoiser alone'} {size(held.pipeline_bytes)}"
    if held.complete:
        text += f" (denoiser {size(held.denoiser_bytes)})"
    if held.scorers and held.device_bytes(device) > held.pipeline_bytes:
        text += f" + scorer {size(held.scorer_bytes)}"
    return text


def pilot_rows(pilot_dir: str) -> list[dict[str, Any]]:
    """The ``pairs_needed`` rows of a finished run (one per concept of a ``locate`` step).

    Raises:
        TadaError: If ``pilot_dir`` is not a finished run, or has no such rows.
    """
    from interp.experiments.results import Results

    results = Results(pilot_dir)
    rows = [r for r in results.rows if r.get("metric") == "pairs_needed"]
    if not rows:
        raise TadaError(
            f"The run {str(pilot_dir)!r} has no pairs_needed rows to plan from: a pilot is a "
            f"run with a `locate` step (ranking: patching) over at least two pairs per concept."
        )
    return rows


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def power_text(loaded: LoadedSpec, planned: Plan, rates: Rates | None, pilot_dir: str) -> str:
    """Pairs each concept needs for the spec's ``power_effect``, from a pilot run's
    per-pair variance, and the spec's cost resized to that many pairs."""
    import inspect

    from interp.significance import pairs_needed

    power = inspect.signature(pairs_needed).parameters["power"].default  # as the run's rows
    rows = pilot_rows(pilot_dir)
    steps: list[Any] = [s for s in spec_steps(loaded) if s.method == "locate"]
    if not steps:
        raise TadaError("--pilot sizes the pairs of `locate` steps, and this spec has none.")
    catalog = _structure(loaded).catalog
    lines = [f"power, from the pilot run {pilot_dir} ({power:.0%} power, paired sign-flip test, "
             f"Benjamini-Hochberg over the spec's heads):"]  # fmt: skip
    resized: dict[int, int] = {}
    for step in steps:
        heads = len(catalog.where(attention="cross", layer=step.layers, component="head"))
        effect, alpha, floor = step.power_effect, step.alpha, step.min_effect
        lines.append(f"  step {step.name!r}: effect {effect} at q < {alpha}, {heads} heads tested")
        most = 0
        for row in rows:
            sd = _float(row.get("pooled_sd"))
            pilot = f"pilot: sd {sd:.3g} over {row.get('pilot_pairs')} pairs"
            try:
                n = pairs_needed(sd, effect, heads, alpha=alpha, min_effect=floor)
            except TadaError as error:
                lines.append(f"    {row.get('concept')}: cannot size ({pilot}): {error}")
                continue
            most = max(most, n)
            lines.append(f"    {row.get('concept')}: {n} pairs  ({pilot})")
        if most:
            resized[loaded.spec.steps.index(step)] = most
    if not resized:
        return "\n".join(lines)
    lines += ["", "resized (every concept of each locate step to its largest need):"]
    lines += _resized_lines(loaded, planned, rates, resized)
    return "\n".join(lines)


def _structure(loaded: LoadedSpec) -> Any:
    from interp.experiments.planning import model_structure

    return model_structure(loaded)


def _resized_lines(
    loaded: LoadedSpec, planned: Plan, rates: Rates | None, resized: dict[int, int]
) -> list[str]:
    from interp.experiments.engine import resolved_spec
    from interp.experiments.loading import load_spec

    data = resolved_spec(loaded)
    lines = []
    for index, pairs in resized.items():
        step = data["steps"][index]
        if step.get("pairs") is None:
            lines.append(f"  {step['name']}: pairs come from a prompt set; its cost grows about "
                         f"linearly with the pairs per concept (to {pairs}).")  # fmt: skip
            continue
        current = step["pairs"]["per_concept"]
        step["pairs"]["per_concept"] = pairs
        lines.append(f"  {step['name']}: {current} -> {pairs} pairs per concept")
    again = plan(load_spec(data, base_dir=loaded.base_dir))
    for before, after in zip(planned.steps, again.steps):
        factor = after.cost.row_steps / before.cost.row_steps if before.cost.row_steps else math.nan
        lines.append(f"    {after.name}: {after.cost.row_steps:,} row-steps (x{factor:.2f}), "
                     f"{after.cost.generations:,} generations, {duration(plan_seconds(rates, after.cost, after.units, 1))}")  # fmt: skip
    total = again.total
    units = sum(s.units for s in again.steps)
    time = duration(plan_seconds(rates, total, units, len(again.steps)))
    lines.append(f"    total: {total.row_steps:,} row-steps, {time}")
    return lines


def plan_rates(loaded: LoadedSpec, planned: Plan, calibrate: bool) -> tuple[Rates | None, str]:
    """The rates to estimate with: calibrated on the spec's model and device, or the
    shipped table's (``None`` when it has none); and the calibration's raw timings.

    Raises:
        TadaError: If ``calibrate`` and the model cannot be loaded (naming it).
    """
    from interp.experiments.estimates import lookup

    m = loaded.spec.model
    if not calibrate:
        return lookup(m.name, m.device, m.dtype), ""
    from interp.adapter import GenerationRequest
    from interp.experiments import model as models
    from interp.experiments.calibration import calibrate_framework
    from interp.experiments.estimates import calibrate as measure
    from interp.registry import check_device

    check_device(m.device)
    try:
        adapter = models.load(m.name, weights=True, device=m.device, dtype=m.dtype, base_dir=loaded.base_dir)
    except (TadaError, OSError) as error:
        raise unloadable(m, error) from None
    models.set_threads(adapter, m.threads, m.device)
    g = loaded.spec.generation
    base = GenerationRequest(("x",), (0,), num_steps=g.num_steps, guidance_scale=g.guidance_scale,
                             negative_prompt=g.negative_prompt, duration_s=g.duration_s)  # fmt: skip
    everything = planned.total
    shapes = everything.shapes() or [2]
    batches = " and ".join(str(r) for r in dict.fromkeys((shapes[-1], shapes[0])))
    print(f"calibrating on {m.device}: timing denoising steps at {batches} rows, and a decode ...",
          file=sys.stderr, flush=True)  # fmt: skip
    rates, raw = measure(adapter, base, (shapes[-1], shapes[0]))  # the probe run decodes
    print("calibrating: a probe run (2 generate steps x 2 prompts) for the run's own costs ...",
          file=sys.stderr, flush=True)  # fmt: skip
    rates, probe = calibrate_framework(loaded, rates)
    timings = ", ".join(
        f"{k.removeprefix('step_s_at_').replace('_', ' ')}: {v:.3g} s/step" for k, v in raw.items()
    )
    return rates, f"calibration (a denoising step, traced, warm): {timings}\ncalibration ({probe})"
