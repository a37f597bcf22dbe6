"""Semantic checks of a parsed spec, before any model runs.

After the schema pass, these checks look at the spec as a whole: step names and
references, prompt sets, and every field marked as a site, a step window or a CFG
branch (see :mod:`interp.experiments.fields`), in any method. Sites are checked
against the model's real catalog (built on the meta device when possible), step windows
against each step's schedule, branches against its guidance setting. Methods add their
own checks in :meth:`~interp.experiments.methods.MethodSpec.check`.
"""

import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from interp.errors import SelectionError, SiteError, TadaError
from interp.experiments.fields import Marker, Ref
from interp.experiments.issues import Issue, from_validation_error
from interp.experiments.methods import MethodSpec
from interp.experiments.prompt_specs import Prompt, resolve_prompt_set
from interp.experiments.spec import ExperimentSpec, GenerationSpec
from interp.selection import Steps


@dataclass
class CheckContext:
    """What a method's :meth:`~interp.experiments.methods.MethodSpec.check` sees.

    Attributes:
        spec: The whole experiment.
        step: The step being checked; ``path`` is its field path (``'steps[2]'``).
        generation: The step's effective generation settings (``None`` if invalid).
        prompts: The step's resolved prompts (``None`` if they could not be read).
        catalog: The model's site catalog, or ``None`` if the model is unavailable.
        issues: Problems found so far; add with :meth:`error`.
    """

    spec: ExperimentSpec
    step: MethodSpec | None = None
    path: str = ""
    generation: GenerationSpec | None = None
    prompts: list[Prompt] | None = None
    catalog: Any = None
    issues: list[Issue] = field(default_factory=list)

    def error(self, where: str, message: str, value: Any = None) -> None:
        """Record a problem at ``<step path>.<where>``."""
        path = f"{self.path}.{where}" if where and self.path else (where or self.path)
        self.issues.append(Issue(path, message) if value is None else Issue(path, message, value))


def marked(annotation: Any, value: Any, path: str) -> Iterator[tuple[Marker, str, Any]]:
    """Every (marker, path, value) below ``value``, guided by its type annotation."""
    if isinstance(value, Ref):
        return
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            ann = info.annotation
            if info.metadata:
                ann = Annotated[(ann, *info.metadata)]
            yield from marked(ann, getattr(value, name), f"{path}.{name}" if path else name)
        return
    meta: list[Any] = []
    while get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        meta.extend(extra)
    for item in meta:
        if isinstance(item, Marker) and value is not None:
            yield item, path, value
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        for member in get_args(annotation):
            if _fits(member, value):
                yield from marked(member, value, path)
                return
        return
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        args = get_args(annotation)
        for index, item in enumerate(value):
            yield from marked(args[0] if args else Any, item, f"{path}[{index}]")
    elif origin is dict and isinstance(value, dict):
        args = get_args(annotation)
        for key, item in value.items():
            yield from marked(args[1] if args else Any, item, f"{path}.{key}")


def _fits(annotation: Any, value: Any) -> bool:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    origin = get_origin(annotation) or annotation
    if origin in (Union, types.UnionType):
        return any(_fits(a, value) for a in get_args(annotation))
    if origin is Any:
        return True
    if isinstance(origin, type):
        return isinstance(value, origin)
    return get_origin(annotation) is not None and str(origin).endswith("Literal")


def refs(value: Any, path: str) -> Iterator[tuple[str, Ref]]:
    """Every :class:`Ref` inside a step's settings, with its path."""
    if isinstance(value, Ref):
        yield path, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from refs(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from refs(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from refs(item, f"{path}.{key}")


def step_prompt_set(spec: ExperimentSpec, step: MethodSpec) -> str | None:
    """Name of the prompt set a step uses (``None`` when the spec has none).

    Raises:
        TadaError: If the named set does not exist or the choice is ambiguous.
    """
    names = list(spec.prompts)
    if step.prompts is not None:
        if step.prompts not in spec.prompts:
            from interp.errors import did_you_mean

            raise TadaError(
                f"no prompt set named {step.prompts!r}.{did_you_mean(step.prompts, names)} "
                f"Prompt sets: {names}"
            )
        return step.prompts
    if not names:
        return None
    if len(names) == 1:
        return names[0]
    if "default" in spec.prompts:
        return "default"
    raise TadaError(
        f"the spec has several prompt sets {names} and none named 'default'; say which "
        f"one this step uses with 'prompts: <name>'"
    )


def check_spec(
    spec: ExperimentSpec,
    base_dir: Path,
    catalog: Any = None,
    *,
    skip_steps: set[str] | frozenset[str] = frozenset(),
    skip_prompt_sets: set[str] | frozenset[str] = frozenset(),
    generation_ok: bool = True,
) -> list[Issue]:
    """All semantic problems of a parsed spec.

    Args:
        spec: The parsed spec.
        base_dir: Directory of the spec file (prompt files are relative to it).
        catalog: The model's :class:`~interp.catalog.SiteCatalog`, or ``None`` to skip
            site checks.
        skip_steps: Names of steps that failed to parse; references to them are not
            reported again.
        skip_prompt_sets: Prompt sets that failed to parse, likewise.
        generation_ok: False when the generation settings failed to parse (step-window
            and branch checks are then skipped).
    """
    ctx = CheckContext(spec=spec, catalog=catalog)
    resolved: dict[str, list[Prompt] | None] = {}
    for name, value in spec.prompts.items():
        try:
            resolved[name] = resolve_prompt_set(value, base_dir)
        except (TadaError, OSError, UnicodeDecodeError) as error:
            resolved[name] = None
            ctx.issues.append(Issue(f"prompts.{name}", str(error)))
    seen: dict[str, int] = {}
    for index, step in enumerate(spec.steps):
        ctx.step, ctx.path = step, f"steps[{index}]"
        if step.name in seen:
            ctx.error(
                "name",
                f"step name already used by steps[{seen[step.name]}]; names must be unique",
                step.name,
            )
        seen.setdefault(step.name, index)
        ctx.prompts = None
        if step.prompts not in skip_prompt_sets:
            try:
                name = step_prompt_set(spec, step)
                ctx.prompts = resolved.get(name) if name is not None else []
            except TadaError as error:
                ctx.error("prompts", str(error), step.prompts)
        ctx.generation = None
        if generation_ok:
            try:
                ctx.generation = spec.generation.merged(step.generation)
            except ValidationError as error:
                for issue in from_validation_error(error, GenerationSpec):
                    where = f"generation.{issue.path}" if issue.path else "generation"
                    ctx.error(where, issue.message)
        _check_refs(ctx, index, set(skip_steps))
        check_marked(ctx)
        step.check(ctx)
    return ctx.issues


def _check_refs(ctx: CheckContext, index: int, skip: set[str]) -> None:
    from interp.errors import did_you_mean

    assert ctx.step is not None  # the caller sets the step before checking its refs
    earlier = [s.name for s in ctx.spec.steps[:index]]
    for path, ref in refs(ctx.step, ""):
        where = path.lstrip(".")
        if ref.from_ in skip:
            continue
        if ref.from_ not in earlier:
            if ref.from_ == ctx.step.name:
                why = "a step cannot use its own results"
            elif any(s.name == ref.from_ for s in ctx.spec.steps):
                why = "it runs later; a step can only use results of steps before it"
            else:
                why = f"no such step.{did_you_mean(ref.from_, [s.name for s in ctx.spec.steps])}"
            ctx.error(f"{where}.from", f"{why} Earlier steps: {earlier or 'none'}", ref.from_)
            continue
        source = ctx.spec.step(ref.from_)
        key = ref.key or where.split(".")[-1].split("[")[0]
        if source.exports and key not in source.exports:
            ctx.error(
                f"{where}.key",
                f"step {ref.from_!r} ({source.method}) has no result {key!r}; it exports "
                f"{list(source.exports)}",
                key,
            )


def check_marked(ctx: CheckContext) -> None:
    """Check the step's marked fields: sites, step windows and branches."""
    generation = ctx.generation
    for marker, path, value in marked(type(ctx.step), ctx.step, ""):
        try:
            if marker.kind == "site" and ctx.catalog is not None:
                ctx.catalog.validate(value)
            elif marker.kind == "steps" and generation is not None:
                Steps.parse(value).resolve(generation.num_steps)
            elif marker.kind == "branch" and generation is not None:
                if value == "uncond" and generation.guidance_scale <= 1:
                    raise SelectionError(
                        f"branch 'uncond' needs classifier-free guidance, but guidance is "
                        f"{generation.guidance_scale} (<= 1: no unconditional branch). Use 'cond' "
                        f"or 'both', or set guidance_scale > 1"
                    )
        except (SiteError, SelectionError) as error:
            message = str(error)
            if marker.kind == "site" and ctx.catalog is not None:
                message += ctx.catalog.suggest(value) if "No " in message else ""
            ctx.error(path, message, value)
