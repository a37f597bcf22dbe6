"""Running an experiment: plan units, run the missing ones, write the results.

The run directory holds::

    spec.yaml        the resolved spec (defaults filled in)
    units/           one JSON file per finished unit, written atomically
    results.csv      the tidy table, built from the unit files
    summary.json     each step's summary
    run.log          one JSON line per unit start / end (times, generations, memory)
                     and notes (the batch ``auto`` chose, out-of-memory halvings)
    units/steps/     per step, the batch ``batch_size: auto`` resolved to (reused on resume)
    plots/ audio/    PNG and WAV artifacts
    index.html       the report

Rerunning on a directory skips every unit whose file exists with the same fingerprint
(a hash of everything that determines it), so an interrupted run resumes where it
stopped and a finished one only rebuilds the table and report.
"""

import json
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from interp.batching import AutoBatch, AutoChoice, on_batch_note, resolving_auto
from interp.distributed import (
    Executor,
    ExecutorConfig,
    ModelSettings,
    WorkStore,
    current,
    make_executor,
    using,
)
from interp.distributed.concurrency import run_side_by_side
from interp.distributed.executor import recording
from interp.errors import TadaError
from interp.experiments import rundir
from interp.experiments.checks import CheckContext, check_marked, step_prompt_set
from interp.experiments.context import StepContext
from interp.experiments.fields import Ref
from interp.experiments.issues import Issue, SpecError, from_validation_error
from interp.experiments.loading import LoadedSpec, load_spec
from interp.experiments.methods import MethodSpec
from interp.experiments.model import source_of
from interp.experiments.report import write_report
from interp.experiments.results import Results, table_digest
from interp.experiments.runlog import RunLog
from interp.experiments.spec import ExperimentSpec
from interp.experiments.table import write_table
from interp.experiments.units import Row, UnitResult, UnitStore, fingerprint, write_text
from interp.experiments.watch import ProgressOption, StepWatch
from interp.experiments.yamlio import dump
from interp.read_store import read_budget
from interp.registry import check_device


def output_dir(loaded: LoadedSpec, out: str | Path | None) -> Path:
    """Where results go: ``out``, else the spec's ``output`` (below the spec file's
    directory), else ``runs/<name>``; see :func:`interp.experiments.rundir.resolve`."""
    return rundir.resolve(out, loaded.spec.output, loaded.spec.name, loaded.base_dir)


def resolved_spec(loaded: LoadedSpec) -> dict[str, Any]:
    """The spec with defaults filled in and prompt sets expanded inline: re-runnable."""
    data = loaded.spec.model_dump(mode="json", by_alias=True)
    data["prompts"] = {
        name: {"inline": [{"prompt": p.text, "concept": p.concept, "fields": p.fields} for p in prompts]}
        for name, prompts in loaded.prompts.items()
    }
    data["model"]["name"] = source_of(loaded.spec.model.name, loaded.base_dir)
    return data


def _substitute(value: Any, summaries: dict[str, dict[str, Any]], field: str) -> Any:
    if isinstance(value, Ref):
        key = value.key or field
        summary = summaries[value.from_]
        if key not in summary:
            raise TadaError(
                f"Step {value.from_!r} finished without a result {key!r} in its summary "
                f"(it has {sorted(summary)}); set 'key:' in the reference to one of those."
            )
        return summary[key]
    if isinstance(value, BaseModel):
        return {
            (info.alias or name): _substitute(getattr(value, name), summaries, name)
            for name, info in type(value).model_fields.items()
        }
    if isinstance(value, list):
        return [_substitute(v, summaries, field) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, summaries, field) for k, v in value.items()}
    return value


def _resolve_step(
    step: MethodSpec, index: int, summaries: dict[str, dict[str, Any]], loaded: LoadedSpec
) -> MethodSpec:
    data = _substitute(step, summaries, "")
    try:
        return type(step).model_validate(data, context={"base_dir": loaded.base_dir})
    except ValidationError as error:
        issues = [
            Issue(f"steps[{index}].{i.path}", f"after resolving references: {i.message}", i.value)
            for i in from_validation_error(error, type(step))
        ]
        raise SpecError(issues, loaded.source) from None


def _unit_seed(step: str, unit_id: str) -> int:
    return zlib.crc32(f"{step}/{unit_id}".encode())


def step_context(
    loaded: LoadedSpec, step: MethodSpec, out_dir: Path, summaries: dict[str, dict[str, Any]]
) -> StepContext:
    """The context a step runs (or is planned) in: its generation settings, prompts,
    metrics and the summaries of the steps before it."""
    spec = loaded.spec
    name = step_prompt_set(spec, step)
    metrics = step.metrics if step.metrics is not None else spec.metrics
    return StepContext(
        spec=spec, step=step, out_dir=out_dir, generation=spec.generation.merged(step.generation),
        prompts=loaded.prompts[name] if name is not None else [], metrics=list(metrics),
        previous=dict(summaries), base_dir=loaded.base_dir,
    )  # fmt: skip


def _run_step(
    loaded: LoadedSpec,
    index: int,
    out_dir: Path,
    store: UnitStore,
    summaries: dict[str, dict[str, Any]],
    progress: ProgressOption,
    log: RunLog,
) -> tuple[dict[str, Any], list[UnitResult]]:
    spec = loaded.spec
    step = _resolve_step(spec.steps[index], index, summaries, loaded)
    ctx = step_context(loaded, step, out_dir, summaries)
    generation = ctx.generation
    check = CheckContext(spec=spec, step=step, path=f"steps[{index}]", generation=generation,
                         catalog=ctx.catalog)  # fmt: skip
    check_marked(check)
    if check.issues:
        raise SpecError(check.issues, loaded.source)
    units = step.plan(ctx)
    ids = [u.id for u in units]
    if len(set(ids)) != len(ids):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        raise TadaError(f"Method {step.method!r} planned duplicate unit ids {duplicates[:5]}.")
    base = fingerprint(
        step.model_dump(mode="json", by_alias=True),
        spec.model.model_dump(mode="json"),
        generation.model_dump(mode="json"),
        [p.as_dict() for p in ctx.prompts],
        [m.model_dump(mode="json") for m in ctx.metrics],
    )
    prints = {u.id: fingerprint(base, u.id, u.params) for u in units}
    finished = {u.id: store.load(step.name, u.id, prints[u.id]) for u in units}
    auto = step_batch(store, step.name, base)
    watch = StepWatch(progress, step.name, len(units), sum(r is not None for r in finished.values()), log)
    try:
        workers = current().workers  # with several, units run side by side (concepts in parallel)

        def job(unit: Any) -> Callable[[], None]:
            def call() -> None:
                own = ctx if workers <= 1 else replace(ctx, _artifacts=[])
                finished[unit.id] = _run_unit(step, unit, own, prints[unit.id], store, watch, auto)

            return call

        run_side_by_side([job(u) for u in units if finished[u.id] is None], workers)
    finally:
        watch.close()
    ctx.results = [finished[u.id] for u in units]  # type: ignore[misc]
    ctx.unit = None
    summary = step.finalize(ctx)
    try:
        json.dumps(summary, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise TadaError(
            f"Method {step.method!r} returned a summary that is not plain JSON ({error})."
        ) from None
    outcome = {
        "name": step.name, "method": step.method, "units": len(units),
        "summary": summary,
        "files": list(dict.fromkeys([*ctx._step_artifacts, *(a for r in ctx.results for a in r.artifacts)])),
    }  # fmt: skip
    return outcome, ctx.results


def _run_unit(step: MethodSpec, unit: Any, ctx: StepContext, print_: str, store: UnitStore,
              watch: StepWatch, auto: AutoBatch) -> UnitResult:  # fmt: skip
    import torch

    ctx.unit = unit
    ctx._artifacts = []
    torch.manual_seed(_unit_seed(step.name, unit.id))
    try:
        notes = on_batch_note(lambda message: watch.log.note(step.name, unit.id, message))
        spill = read_budget(directory=ctx.out_dir / "spill")  # large reads stream to files there
        with watch.unit(step.name, unit.id, print_), notes, spill, resolving_auto(auto):
            rows = step.run_unit(unit, ctx)
    except Exception as error:
        error.add_note(f"(while running unit {unit.id!r} of step {step.name!r}, method {step.method!r})")
        raise
    finally:
        _remove_empty(ctx.out_dir / "spill")
    if not isinstance(rows, list) or not all(isinstance(r, Row) for r in rows):
        raise TadaError(
            f"Method {step.method!r}: run_unit must return a list of Row, got {type(rows).__name__}."
        )
    for row in rows:
        row.step, row.method, row.unit = step.name, step.method, unit.id
    result = UnitResult(unit.id, rows, list(ctx._artifacts), fingerprint=print_)
    watch.finished(step.name, unit.id, print_)
    store.save(step.name, result)
    return result


def step_batch(store: UnitStore, step: str, step_print: str) -> AutoBatch:
    """The number ``batch_size: auto`` stands for in ``step``: the one recorded in
    ``units/steps/<step>.json`` by an earlier run of the same step (same fingerprint),
    or resolved by the step's first ``auto`` and recorded there then."""
    path = store.root / "steps" / f"{step}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        recorded = data["batch_size"] if data["fingerprint"] == step_print else None
    except (OSError, ValueError, KeyError, TypeError):
        recorded = None

    def record(choice: AutoChoice) -> None:
        state = {"step": step, "fingerprint": step_print, "batch_size": choice.size, "fits": choice.fits,
                 "ceiling": choice.ceiling, "device": choice.device}  # fmt: skip
        write_text(path, json.dumps(state, indent=1, sort_keys=True) + "\n")

    if isinstance(recorded, int) and not isinstance(recorded, bool) and recorded >= 1:
        return AutoBatch(size=recorded, on_resolved=record, recorded=True)
    return AutoBatch(on_resolved=record)


def _remove_empty(folder: Path) -> None:
    """Remove ``folder`` if it exists and is empty (the files in it are unlinked once mapped)."""
    try:
        folder.rmdir()
    except OSError:
        pass


def run(
    spec: "str | Path | dict[str, Any] | ExperimentSpec",
    out: str | Path | None = None,
    *,
    progress: ProgressOption = True,
    force: bool = False,
    executor: ExecutorConfig | str | Executor = "local",
) -> Results:
    """Run an experiment (or finish an interrupted one) and return its results.

    Args:
        spec: A YAML path, a mapping, or an :class:`ExperimentSpec`.
        out: Results directory (default: the spec's ``output`` or ``runs/<name>``).
        progress: ``True``: show progress on stderr (units done / total; the current
            unit's generations, denoising step and ETA); ``False``: nothing; a callable:
            called with every :class:`~interp.progress.ProgressEvent` instead.
        force: Use a non-empty ``out`` that is not a run directory (see
            :mod:`interp.experiments.rundir` for the rules of run directories).
        executor: Where work items run: ``"local"`` (this process), ``"ray"``, or an
            :class:`~interp.distributed.ExecutorConfig` (Ray address, workers), or an
            executor you made (e.g. a :class:`~interp.distributed.RayExecutor` kept for
            several runs: its actors start once; it is left open). The results are the
            same with any executor (docs/distributed.md).

    Raises:
        SpecError: If the spec is invalid (nothing runs).
        RunDirError: If the results directory cannot or must not be used.
        TadaError: If the model cannot be loaded or a method fails cleanly.
    """
    loaded = load_spec(spec)
    if not loaded.spec.model.weights:
        raise TadaError(
            f"The spec sets model.weights: false, which builds {loaded.spec.model.name!r} "
            f"without weights (validation only); set weights: true to run it."
        )
    check_device(loaded.spec.model.device)
    out_dir = output_dir(loaded, out)
    m = loaded.spec.model  # workers start (or fail) before anything is written
    model = ModelSettings(source_of(m.name, loaded.base_dir), m.device, m.dtype, m.threads)
    pool = executor if isinstance(executor, Executor) else make_executor(executor, model)
    held = getattr(pool, "model", model)  # what a remote pool's workers loaded
    if held != model:
        raise TadaError(
            f"The executor's workers hold {held}, but the spec needs {model}; "
            f"make the executor with the spec's model settings."
        )
    try:
        with rundir.claim(out_dir, force=force) as claimed, using(pool):
            return _execute(loaded, claimed, progress)
    finally:
        if pool is not executor:
            pool.close()


def work_store(loaded: LoadedSpec, store: UnitStore) -> WorkStore:
    """The run's store of finished work items, ``units/work/``: content-addressed by the
    item's key (everything that determines it: generation settings, pair, seed, sites,
    edits, metric) salted with the model's identity, so a sweep chunk that two steps share
    (``locate``'s layer impact and a ``patch`` of the text sites) runs once per run, and a
    run killed mid-unit resumes with the items it had finished (docs/distributed.md)."""
    m = loaded.spec.model
    model = fingerprint(m.model_dump(mode="json"), source_of(m.name, loaded.base_dir))
    return WorkStore(store.root / "work", salt=model)


def _execute(loaded: LoadedSpec, claimed: rundir.RunDir, progress: ProgressOption) -> Results:
    out_dir = claimed.path
    store = UnitStore(out_dir)
    log = RunLog(out_dir, executor=current().name)
    write_text(out_dir / "spec.yaml", dump(resolved_spec(loaded)))
    summaries: dict[str, dict[str, Any]] = {}
    outcomes: list[dict[str, Any]] = []
    unit_results: list[UnitResult] = []
    kept_units: list[Path] = []
    work = work_store(loaded, store)
    with recording(work):
        for index, step in enumerate(loaded.spec.steps):
            outcome, finished = _run_step(loaded, index, out_dir, store, summaries, progress, log)
            summaries[step.name] = outcome["summary"]
            outcomes.append(outcome)
            unit_results.extend(finished)
            kept_units.extend(store.path(step.name, r.id) for r in finished)
    work.remove()  # every unit is saved: the items have served
    rows = write_table(out_dir / "results.csv", [row for r in unit_results for row in r.rows])
    summary = {
        "experiment": loaded.spec.name,
        "description": loaded.spec.description,
        "model": loaded.spec.model.name,
        "rows": rows,
        "table_sha256": table_digest(out_dir / "results.csv"),
        "steps": outcomes,
        "files": {"spec": "spec.yaml", "table": "results.csv", "report": "index.html"},
    }
    write_text(out_dir / "summary.json", json.dumps(summary, indent=1, sort_keys=True) + "\n")
    write_report(out_dir)
    claimed.retire(kept_units, [f for o in outcomes for f in o["files"]], [o["name"] for o in outcomes])
    return Results(out_dir)
