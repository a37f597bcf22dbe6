"""Turning a spec (file, dict or object) into a checked :class:`LoadedSpec`.

Every problem is collected before anything is reported: schema errors from pydantic,
then, on the parts of the spec that parsed, the semantic checks of
:mod:`interp.experiments.checks` (sites against the real model, steps against the
schedule, branches against guidance, references between steps, prompt files).
"""

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from interp.errors import TadaError
from interp.experiments import methods as registry
from interp.experiments import rundir
from interp.experiments.checks import check_spec
from interp.experiments.issues import Issue, SpecError, from_validation_error
from interp.experiments.prompt_specs import Prompt, resolve_prompt_set
from interp.experiments.repair import Pruned, prune, prune_steps
from interp.experiments.spec import ExperimentSpec
from interp.experiments.yamlio import check_shape, read_spec_file


@dataclass
class LoadedSpec:
    """A validated spec and where it came from.

    Attributes:
        spec: The parsed spec.
        base_dir: Directory relative paths are resolved against.
        source: The file it was read from, if any.
        prompts: Resolved prompt sets by name.
    """

    spec: ExperimentSpec
    base_dir: Path
    source: str | None = None
    prompts: dict[str, list[Prompt]] = field(default_factory=dict)


def _remainder(
    data: dict[str, Any], error: ValidationError, context: dict[str, Any]
) -> tuple[ExperimentSpec | None, Pruned | None]:
    """The valid part of a spec that failed validation, for the semantic checks."""
    pruned = prune(ExperimentSpec, data, error)
    for _ in range(2):
        if pruned is None:
            return None, None
        try:
            return ExperimentSpec.model_validate(pruned.data, context=context), pruned
        except ValidationError as again:
            pruned = prune_steps(pruned, again)
    return None, None


def _catalog(spec: ExperimentSpec, base_dir: Path, issues: list[Issue]) -> Any:
    from interp.experiments import model as models

    try:
        adapter = models.load(spec.model.name, weights=False, base_dir=base_dir)
    except TadaError as error:
        issues.append(Issue("model.name", str(error), spec.model.name))
        return None
    issues.extend(_duration_issues(spec, adapter.min_duration_s, adapter.max_duration_s))
    return adapter.catalog


def _duration_issues(spec: ExperimentSpec, low: float | None, high: float | None) -> list[Issue]:
    """Durations the model cannot generate (longer than its maximum, or so short that the
    audio would be empty)."""
    found = [("generation.duration_s", spec.generation.duration_s)]
    found += [
        (f"steps[{i}].generation.duration_s", step.generation.duration_s)
        for i, step in enumerate(spec.steps)
        if step.generation is not None
    ]
    issues = []
    for path, value in found:
        if value is None:
            continue
        if high is not None and value > high:
            issues.append(
                Issue(path, f"longer than {spec.model.name!r} can generate; use at most {high:g} s", value)
            )
        if low is not None and value < low:
            issues.append(Issue(path, f"too short for {spec.model.name!r} (the audio would be empty); use at "
                                      f"least {low:g} s", value))  # fmt: skip
    return issues


def _output_issues(spec: ExperimentSpec, base_dir: Path) -> list[Issue]:
    """A spec's ``output`` must stay below the spec file's directory."""
    if spec.output is None:
        return []
    try:
        rundir.resolve(None, spec.output, spec.name, base_dir)
    except rundir.RunDirError as error:
        return [Issue("output", str(error), spec.output)]
    return []


def load_spec(
    spec: "str | Path | dict[str, Any] | ExperimentSpec",
    *,
    base_dir: Path | None = None,
    check_model: bool = True,
) -> LoadedSpec:
    """Parse and check a spec, reporting every problem at once.

    Args:
        spec: A YAML file path, a mapping, or an :class:`ExperimentSpec`.
        base_dir: Directory for relative paths (default: the file's directory, or the
            working directory for in-memory specs).
        check_model: Check site strings against the model's real sites (builds the
            model's structure, on the meta device where possible).

    Raises:
        SpecError: Listing every problem found.
    """
    source = None
    if isinstance(spec, ExperimentSpec):
        data = spec.model_dump(mode="json", by_alias=True, exclude_unset=True)
    elif isinstance(spec, dict):
        check_shape(spec)
        data = spec
    elif isinstance(spec, (str, PathLike)):
        path = Path(spec)
        source = str(spec)
        data = read_spec_file(path)
        base_dir = base_dir or path.resolve().parent
    else:
        raise SpecError([Issue("", f"a spec is a YAML file path, a mapping or an ExperimentSpec, "
                                   f"got {type(spec).__name__}")])  # fmt: skip
    base_dir = Path(base_dir or Path.cwd())
    try:
        registry.load_plugins()
    except TadaError as error:
        raise SpecError([Issue("", str(error))], source) from None
    context = {"base_dir": base_dir}
    issues: list[Issue] = []
    parsed, pruned = None, None
    try:
        parsed = ExperimentSpec.model_validate(data, context=context)
        pruned = Pruned(data)
    except ValidationError as error:
        issues.extend(from_validation_error(error, ExperimentSpec))
        parsed, pruned = _remainder(data, error, context)
    if parsed is not None and pruned is not None:
        catalog = None
        if check_model:
            catalog = _catalog(parsed, base_dir, issues)
        found = check_spec(
            parsed,
            base_dir,
            catalog,
            skip_steps=pruned.broken_steps,
            skip_prompt_sets=pruned.broken_prompt_sets,
            generation_ok=pruned.generation_ok,
        )
        issues.extend(pruned.original(issue) for issue in found)
        issues.extend(_output_issues(parsed, base_dir))
    if issues:
        raise SpecError(issues, source)
    assert parsed is not None
    prompts = {name: resolve_prompt_set(value, base_dir) for name, value in parsed.prompts.items()}
    return LoadedSpec(parsed, base_dir, source, prompts)


def validate(spec: "str | Path | dict[str, Any] | ExperimentSpec", **kwargs: Any) -> ExperimentSpec:
    """Check a spec without running anything; returns it parsed.

    Raises:
        SpecError: Listing every problem found.
    """
    return load_spec(spec, **kwargs).spec
