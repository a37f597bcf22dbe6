"""The one place that opens nnsight traces and executes edits and reads.

Methods (patching, ablation, steering, caching) describe *what* to do as
:class:`~interp.edits.Edit` and :class:`~interp.edits.Read` values; :func:`run` plans
them per denoising step in the order the model executes its modules, and applies them
inside a single traced generation.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from beartype import beartype
from einops import EinopsError
from torch import Tensor

from interp.adapter import GenerationOutput, GenerationRequest, ModelAdapter
from interp.catalog import AttentionModule
from interp.components import KEYWORD_PORTS, READ_ONLY_PORTS, SiteComponent, context_bias
from interp.edits import Edit, Read
from interp.errors import EditError, SiteError, did_you_mean
from interp.execution_order import hook_order
from interp.progress import generation
from interp.quiet import warn_truncated
from interp.read_store import StepBuffer, current_budget
from interp.selection import branch_rows
from interp.sites import ModuleSite, Site
from interp.types import ReadTrace


@dataclass
class RunResult:
    """Output of :func:`run`.

    Attributes:
        output: The generation (final latents and audio).
        reads: Read key -> tensor stacked over its steps, ``[step, rows, ...]``; a read
            larger than the read budget is a CPU tensor memory-mapped from a file
            (:mod:`interp.read_store`).
        read_steps: Read key -> the step indices along the first axis.
    """

    output: GenerationOutput
    reads: dict[str, ReadTrace] = field(default_factory=dict)
    read_steps: dict[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Point:
    """One hook point: a module of the denoiser and the port a stage fetches there."""

    path: str
    port: str  # "input", "output", "text" or "mask"
    kwarg: str | None = None  # the keyword argument of a "text" or "mask" port
    text_kwarg: str | None = None  # a "mask" port's text argument (its shape when no mask)


@dataclass
class _Action:
    item: Edit | Read
    rows: list[int]
    spec: SiteComponent | None  # None for a module site
    sizes: dict[str, int]


@dataclass
class _Stage:
    point: _Point
    actions: list[_Action]


def _locate(
    adapter: ModelAdapter, item: Edit | Read
) -> tuple[_Point, SiteComponent | None, dict[str, int], tuple[int, int]]:
    """The hook point of an item, its component, its axis sizes and its catalog order key."""
    site = item.site
    catalog = adapter.catalog
    if isinstance(site, ModuleSite):
        paths = dict(adapter.denoiser.named_modules())
        if site.path not in paths:
            raise SiteError(
                f"No module {site.path!r} in the denoiser of {adapter.name!r}, for {site.name}."
                f"{did_you_mean(site.path, [p for p in paths if p])} List the paths with "
                f"adapter.denoiser.named_modules()."
            )
        return _Point(site.path, site.port), None, {}, (-1, -1)
    catalog.validate(site)
    module: AttentionModule = catalog.module(site.attention, site.layer)
    spec = site.spec
    port = spec.hook.port
    kwarg = module.keyword(port) if port in KEYWORD_PORTS else None
    if port in KEYWORD_PORTS and kwarg is None:
        raise SiteError(f"{site.name}: the adapter names no {port} argument for {module.path}.")
    if port in READ_ONLY_PORTS and isinstance(item, Edit):
        raise EditError(
            f"{site.name} can be read but not edited (the model's mask is read as a derived "
            f"bias); edit the text, keys or values instead."
        )
    text_kwarg = module.text_argument if port == "mask" else None
    point = _Point(module.hook_path(site.component), port, kwarg, text_kwarg)
    index = catalog.modules.index(module)
    return point, spec, module.sizes(), (index, spec.hook.rank)


def _plan(
    adapter: ModelAdapter, request: GenerationRequest, edits: Sequence[Edit], reads: Sequence[Read]
) -> tuple[dict[int, list[_Stage]], dict[str, tuple[int, ...]]]:
    """Validate every item and group them by step and hook point, in model order.

    Attention sites are ordered by the catalog (module, then the component's hook rank);
    when a module site is present, every point is ordered as the model was observed to
    run them (:func:`interp.execution_order.hook_order`).
    """
    located = [(item, *_locate(adapter, item)) for item in [*edits, *reads]]
    observed = None
    if any(isinstance(item.site, ModuleSite) for item, *_ in located):
        observed = hook_order(adapter, request)
    buckets: dict[tuple[int, tuple[int, ...], _Point], list[_Action]] = defaultdict(list)
    read_steps: dict[str, tuple[int, ...]] = {}
    for item, point, spec, sizes, catalog_key in located:
        steps = item.steps.resolve(request.num_steps)
        skipped = [s for s in steps if s < request.start_step]
        if skipped:
            raise EditError(
                f"{item.site.name} at steps {skipped}: the generation resumes at step "
                f"{request.start_step}, so earlier steps do not run."
            )
        rows = branch_rows(item.branch, request.batch_size, request.guided, item.samples)
        if isinstance(item, Read):
            if item.key in read_steps:
                raise EditError(f"Two reads share the key {item.key!r}; give each Read a distinct key=.")
            read_steps[item.key] = steps
        if observed is None:
            order: tuple[int, ...] = catalog_key
        else:
            event = (point.path, "output" if point.port == "output" else "input")
            if event not in observed:
                raise EditError(
                    f"{item.site.name}: module {point.path!r} did not run during a denoising "
                    f"step, so it cannot be read or edited there."
                )
            order = (observed[event],)
        for step in steps:
            buckets[(step, order, point)].append(_Action(item, rows, spec, sizes))
    plan: dict[int, list[_Stage]] = defaultdict(list)
    for step, order, point in sorted(buckets, key=lambda k: (k[0], k[1], k[2].port)):
        actions = buckets[(step, order, point)]
        # edits first, then reads: reads see the edited value
        actions.sort(key=lambda a: isinstance(a.item, Read))
        plan[step].append(_Stage(point, actions))
    return dict(plan), read_steps


def _view(x: Tensor, action: _Action) -> Tensor:
    if action.spec is None:
        return x
    try:
        return action.spec.to_view(x, action.sizes)
    except EinopsError as error:
        raise EditError(
            f"{action.item.site.name}: the hooked tensor of shape {tuple(x.shape)} does not fit "
            f"the view {action.spec.view!r} with sizes {action.sizes}; the adapter's geometry "
            f"is wrong."
        ) from error


def _index(view: Tensor, action: _Action) -> tuple[Tensor | slice | int, ...]:
    rows = torch.as_tensor(action.rows, device=view.device)
    site = action.item.site
    if action.spec is None or action.spec.index is None or not isinstance(site, Site) or site.head is None:
        return (rows,)
    return (rows, *[slice(None)] * (action.spec.index_position() - 1), site.head)


def _fetch(root, stage: _Stage) -> tuple[Tensor, object]:  # pyright: ignore[reportMissingParameterType]
    """The stage's tensor, and what is needed to write it back."""
    point = stage.point
    envoy = root.get(f"denoiser.{point.path}")
    if point.port == "text":
        args, kwargs = envoy.inputs
        return kwargs[point.kwarg], (envoy, args, kwargs)
    if point.port == "mask":
        args, kwargs = envoy.inputs
        return context_bias(kwargs.get(point.kwarg), kwargs[point.text_kwarg]), None
    if point.port == "input":
        return envoy.input, envoy
    output = envoy.output
    x = output[0] if isinstance(output, tuple) else output
    return x, (envoy, output)


def _store(stage: _Stage, x: Tensor, handle: object) -> None:
    point = stage.point
    if point.port == "text":
        envoy, args, kwargs = handle  # pyright: ignore[reportGeneralTypeIssues]
        envoy.inputs = (args, {**kwargs, point.kwarg: x})
    elif point.port == "input":
        handle.input = x  # pyright: ignore[reportAttributeAccessIssue]
    else:
        envoy, output = handle  # pyright: ignore[reportGeneralTypeIssues]
        envoy.output = (x, *output[1:]) if isinstance(output, tuple) else x


def _execute(root, stage: _Stage, step: int, store: dict[str, StepBuffer], save) -> None:  # pyright: ignore[reportMissingParameterType]
    """Fetch, edit, write back and record one hook point at one step."""
    x, handle = _fetch(root, stage)
    if not isinstance(x, Tensor):
        raise EditError(
            f"{stage.actions[0].item.site.name}: the {stage.point.port} of {stage.point.path!r} "
            f"is a {type(x).__name__}, not a tensor; choose a module whose {stage.point.port} is one."
        )
    for action in stage.actions:
        if action.rows and (x.dim() == 0 or max(action.rows) >= x.shape[0]):
            raise EditError(
                f"{action.item.site.name}: the {stage.point.port} of {stage.point.path!r} has shape "
                f"{tuple(x.shape)}, but the site selects rows {action.rows} of the denoiser's batch; "
                f"a module site's tensor must be batch first (choose a module that sees the batch)."
            )
    edits = [(a, a.item) for a in stage.actions if isinstance(a.item, Edit)]
    if edits:
        x = x.clone()
        for action, edit in edits:
            view = _view(x, action)
            index = _index(view, action)
            view[index] = edit.op.apply(view[index], step, f"{edit.site.name} (step {step})")
            x = action.spec.from_view(view, action.sizes) if action.spec is not None else view
        _store(stage, x, handle)
    for action in stage.actions:
        if isinstance(action.item, Read):
            view = _view(x, action)
            value = view[_index(view, action)].detach().clone()
            if action.item.reduce is not None:
                value = action.item.reduce(value)
            store[action.item.key].append(value, save)


@beartype
def run(
    adapter: ModelAdapter,
    request: GenerationRequest,
    edits: Sequence[Edit] = (),
    reads: Sequence[Read] = (),
) -> RunResult:
    """Run one generation, applying ``edits`` and recording ``reads``.

    Everything is validated (sites against the model, steps against the schedule,
    branches against the guidance setting) before the first forward pass.

    Args:
        adapter: The model.
        request: Prompts, seeds and generation settings.
        edits: Writes, applied in order where they overlap.
        reads: Activations to record; they see edited values.

    Returns:
        The generation output and the recorded reads.
    """
    adapter.require_weights("run a generation")
    adapter.check_request(request)
    plan, read_steps = _plan(adapter, request, edits, reads)
    warn_truncated(adapter, request.prompts)
    with generation(request.batch_size, request.num_steps - request.start_step):
        if not plan:
            with torch.no_grad():
                return RunResult(output=GenerationOutput(**adapter.root(request)))
        from interp.backend import save, wrap

        root = wrap(adapter)
        budget = current_budget()
        left = [budget.resolved_bytes()] if read_steps else [0]
        store = {key: StepBuffer(len(steps), left, budget.directory) for key, steps in read_steps.items()}
        calls = [step - request.start_step for step in sorted(plan)]  # a resumed run skips steps
        with root.trace(request) as tracer:
            for call in tracer.iter[calls]:
                step = call + request.start_step
                for stage in plan[step]:
                    _execute(root, stage, step, store, save)
            result = save(root.output)
    reads_out = {key: buffer.result() for key, buffer in store.items()}
    return RunResult(GenerationOutput(**result), reads_out, read_steps)
