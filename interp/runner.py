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
from torch import Tensor

from interp.adapter import GenerationOutput, GenerationRequest, ModelAdapter
from interp.catalog import AttentionModule
from interp.edits import Edit, Read
from interp.errors import EditError
from interp.progress import generation
from interp.quiet import warn_truncated
from interp.selection import branch_rows
from interp.types import ReadTrace

_STAGE_OF = {"text": "text", "head": "heads", "heads": "heads", "out": "out"}
_STAGE_ORDER = {"text": 0, "heads": 1, "out": 2}


@dataclass
class RunResult:
    """Output of :func:`run`.

    Attributes:
        output: The generation (final latents and audio).
        reads: Read key -> tensor stacked over its steps, ``[step, rows, ...]``.
        read_steps: Read key -> the step indices along the first axis.
    """

    output: GenerationOutput
    reads: dict[str, ReadTrace] = field(default_factory=dict)
    read_steps: dict[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass
class _Action:
    item: Edit | Read
    rows: list[int]


@dataclass
class _Stage:
    module: AttentionModule
    stage: str
    actions: list[_Action]


def _plan(
    adapter: ModelAdapter, request: GenerationRequest, edits: Sequence[Edit], reads: Sequence[Read]
) -> tuple[dict[int, list[_Stage]], dict[str, tuple[int, ...]]]:
    """Validate every item and group them by step, module and stage, in model order."""
    catalog = adapter.catalog
    order = {(m.attention, m.layer): i for i, m in enumerate(catalog.modules)}
    buckets: dict[tuple[int, int, int], list[_Action]] = defaultdict(list)
    read_steps: dict[str, tuple[int, ...]] = {}
    for item in [*edits, *reads]:
        catalog.validate(item.site)
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
                raise EditError(
                    f"Two reads share the key {item.key!r}; give each Read a distinct key=."
                )
            read_steps[item.key] = steps
        stage = _STAGE_OF[item.site.component]
        for step in steps:
            buckets[(step, order[item.site.module_key], _STAGE_ORDER[stage])].append(
                _Action(item, rows)
            )
    plan: dict[int, list[_Stage]] = defaultdict(list)
    stage_names = {v: k for k, v in _STAGE_ORDER.items()}
    for (step, module_index, stage_index) in sorted(buckets):
        actions = buckets[(step, module_index, stage_index)]
        # edits first, then reads: reads see the edited value
        actions.sort(key=lambda a: isinstance(a.item, Read))
        plan[step].append(
            _Stage(catalog.modules[module_index], stage_names[stage_index], actions)
        )
    return dict(plan), read_steps


def _slice(view: Tensor, action: _Action) -> Tensor:
    site = action.item.site
    rows = torch.as_tensor(action.rows, device=view.device)
    if site.component == "head":
        return view[rows, :, site.head]
    return view[rows]


def _assign(view: Tensor, action: _Action, value: Tensor) -> None:
    site = action.item.site
    rows = torch.as_tensor(action.rows, device=view.device)
    if site.component == "head":
        view[rows, :, site.head] = value
    else:
        view[rows] = value


def _as_view(x: Tensor, module: AttentionModule, stage: str) -> Tensor:
    if stage != "heads":
        return x
    if x.shape[-1] != module.n_heads * module.d_head:
        raise EditError(
            f"The output projection of {module.path} receives width {x.shape[-1]}, not "
            f"{module.n_heads} heads x {module.d_head}; the adapter's head geometry is wrong."
        )
    return x.view(*x.shape[:-1], module.n_heads, module.d_head)


def _execute(root, stage: _Stage, step: int, store: dict[str, list[Tensor]], save) -> None:  # noqa: ANN001
    """Fetch, edit, write back and record one stage of one module at one step."""
    module = stage.module
    envoy = root.get(f"denoiser.{module.path}")
    if stage.stage == "text":
        args, kwargs = envoy.inputs
        x = kwargs[module.text_argument]
    elif stage.stage == "heads":
        proj = root.get(f"denoiser.{module.out_proj}")
        x = proj.input
    else:
        output = envoy.output
        x = output[0] if isinstance(output, tuple) else output
    edits = [a for a in stage.actions if isinstance(a.item, Edit)]
    if edits:
        x = x.clone()
        view = _as_view(x, module, stage.stage)
        for action in edits:
            where = f"{action.item.site.name} (step {step})"
            new = action.item.op.apply(_slice(view, action), step, where)
            _assign(view, action, new)
        if stage.stage == "text":
            envoy.inputs = (args, {**kwargs, module.text_argument: x})
        elif stage.stage == "heads":
            proj.input = x
        else:
            envoy.output = (x, *output[1:]) if isinstance(output, tuple) else x
    view = _as_view(x, module, stage.stage)
    for action in stage.actions:
        if isinstance(action.item, Read):
            value = _slice(view, action).detach().clone()
            if action.item.reduce is not None:
                value = action.item.reduce(value)
            store[action.item.key].append(save(value))


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
        store: dict[str, list[Tensor]] = {key: [] for key in read_steps}
        calls = [step - request.start_step for step in sorted(plan)]  # a resumed run skips steps
        with root.trace(request) as tracer:
            for call in tracer.iter[calls]:
                step = call + request.start_step
                for stage in plan[step]:
                    _execute(root, stage, step, store, save)
            result = save(root.output)
    reads_out = {key: torch.stack(values) for key, values in store.items()}
    return RunResult(GenerationOutput(**result), reads_out, read_steps)
