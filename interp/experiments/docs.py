"""Generate ``docs/spec-reference.md`` from the spec models and the registries.

Run ``python -m interp.experiments.docs`` to rewrite the page, ``--check`` to fail if the
committed page is out of date. Methods and metrics registered by plug-ins are included,
so regenerate the page after adding one.
"""

import argparse
import json
import sys
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from interp.experiments import methods as registry
from interp.experiments.fields import Marker, Ref
from interp.experiments.metric_specs import MetricSpec
from interp.experiments.prompt_specs import (
    FilePrompts,
    InlinePrompts,
    PromptItem,
    TemplatePrompts,
)
from interp.experiments.spec import AnyMethod, ExperimentSpec, GenerationSpec, ModelSpec
from interp.metrics import metrics
from interp.sites import SITE_GRAMMAR

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "docs" / "spec-reference.md"


def _md(text: str) -> str:
    """Escape text for a markdown table cell (no HTML, no column breaks)."""
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _anchor(model: type) -> str:
    return model.__name__.lower()


def type_name(annotation: Any) -> str:
    """A short readable name of a field type, with links to model sections."""
    meta: list[Any] = []
    while get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        meta.extend(extra)
    for item in meta:
        if isinstance(item, Marker):
            return {"site": "site", "steps": "steps", "branch": "branch"}[item.kind]
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = list(get_args(annotation))
        names = [type_name(m) for m in members if m is not type(None)]
        if any(_base(m) is Ref for m in members):
            names = [n for n in names if n != "[Ref](#ref)"]
            return f"{' or '.join(names)} or [Ref](#ref)"
        if set(names) == {"list of prompt", "[InlinePrompts](#inlineprompts)",
                          "[FilePrompts](#fileprompts)", "[TemplatePrompts](#templateprompts)"}:  # fmt: skip
            return "[prompt set](#prompts)"
        if names == ["str", "[PromptItem](#promptitem)"]:
            return "prompt"
        text = " or ".join(names)
        return f"{text} or null" if type(None) in members else text
    if origin is Literal:
        return " \\| ".join(f"`{json.dumps(a)}`" for a in get_args(annotation))
    if origin in (list, tuple):
        args = get_args(annotation)
        return f"list of {type_name(args[0]) if args else 'any'}"
    if origin is dict:
        return f"map of {type_name(get_args(annotation)[1])}"
    if annotation is AnyMethod:
        return "[step](#steps)"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{_anchor(annotation)})"
    if annotation is Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def _base(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _default(info: Any) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        value = info.default_factory()
    else:
        value = info.default
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, list) and value and all(isinstance(v, MetricSpec) for v in value):
        value = [v.name for v in value]
    if isinstance(value, BaseModel):
        return f"see [{type(value).__name__}](#{_anchor(type(value))})"
    return f"`{json.dumps(value)}`"


def _field_annotation(info: Any) -> Any:
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation


def model_table(model: type[BaseModel], skip: tuple[str, ...] = ()) -> str:
    """A markdown table of a model's fields: key, type, default, description."""
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        key = info.alias or name
        description = _md(info.description or "")
        lines.append(f"| `{key}` | {type_name(_field_annotation(info))} | {_default(info)} | {description} |")
    return "\n".join(lines)


def _nested(model: type[BaseModel], seen: set[type]) -> list[type[BaseModel]]:
    """Models used by ``model``'s fields that are not documented yet."""
    found: list[type[BaseModel]] = []

    def visit(annotation: Any) -> None:
        annotation = _base(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in seen:
                seen.add(annotation)
                found.append(annotation)
                for info in annotation.model_fields.values():
                    visit(info.annotation)
            return
        for arg in get_args(annotation):
            visit(arg)

    for info in model.model_fields.values():
        visit(info.annotation)
    return found


def _section(title: str, model: type[BaseModel], intro: str = "", skip: tuple[str, ...] = ()) -> str:
    doc = intro or (model.__doc__ or "").strip().splitlines()[0]
    return f'<a id="{_anchor(model)}"></a>\n\n### {title}\n\n{doc}\n\n{model_table(model, skip)}\n'


def render() -> str:
    """The whole reference page."""
    registry.load_plugins()
    seen: set[type] = {
        ExperimentSpec, ModelSpec, GenerationSpec, MetricSpec, Ref, registry.GenerationOverride,
        InlinePrompts, FilePrompts, TemplatePrompts, PromptItem,
    }  # fmt: skip
    out = [
        "# Experiment spec reference",
        "",
        "<!-- Generated by `python -m interp.experiments.docs` from the spec models; do not "
        "edit by hand. -->",
        "",
        "An experiment is a YAML file validated by `tada validate FILE` and run by "
        "`tada run FILE`. Unknown keys are errors. Relative paths of prompt files are "
        "resolved against the spec file's directory. See `experiments/tiny.yaml` for a "
        "complete example and [cli.md](cli.md) for the commands.",
        "",
        "## Top level",
        "",
        _section("ExperimentSpec", ExperimentSpec),
        "## Model and generation",
        "",
        _section("model: ModelSpec", ModelSpec),
        _section("generation: GenerationSpec", GenerationSpec),
        "## Prompts",
        "",
        '<a id="prompts"></a>',
        "",
        "`prompts` maps names to prompt sets. A prompt set is a list of prompts (strings or "
        "[PromptItem](#promptitem) mappings) or one of the mappings below. A bare list "
        "instead of the mapping means `{default: <list>}`. Steps pick a set with "
        "`prompts: <name>`.",
        "",
        _section("InlinePrompts", InlinePrompts),
        _section(
            "FilePrompts",
            FilePrompts,
            "A `.csv` file (header row), `.jsonl` (one object per line) or `.txt` (one "
            "prompt per line). Other columns become the prompt's `fields`.",
        ),  # fmt: skip
        _section(
            "TemplatePrompts",
            TemplatePrompts,
            "Every combination of the word lists filled into the template, in order; "
            "the words become the prompt's `fields`.",
        ),  # fmt: skip
        _section("PromptItem", PromptItem),
        "## Metrics",
        "",
        _section(
            "metrics: MetricSpec",
            MetricSpec,
            "A metric is a name (`rms`) or a mapping `{name, options, label}`.",
        ),  # fmt: skip
        "Registered metrics:",
        "",
        "| name | options | description |",
        "|---|---|---|",
        *[
            f"| `{m.name}` | {', '.join(f'`{o}`' for o in m.options) or '-'} | {m.description} |"
            for m in sorted(metrics().values(), key=lambda m: m.name)
        ],
        "",
        "## Steps",
        "",
        '<a id="steps"></a>',
        "",
        "`steps` is an ordered list; each step names its `method`, which decides the other "
        "keys. Every step has these keys:",
        "",
        model_table(registry.MethodSpec, skip=("method",)),
        "",
        _section("GenerationOverride", registry.GenerationOverride),
    ]
    for name, cls in sorted(registry.methods().items()):
        line = cls.summary_line or (cls.__doc__ or "").strip().splitlines()[0]
        shared = tuple(registry.MethodSpec.model_fields)
        out += [
            f'<a id="{_anchor(cls)}"></a>',
            "",
            f"### method: `{name}`",
            "",
            line,
            "",
            model_table(cls, skip=tuple(k for k in shared if k != "method")),
            "",
        ]
        if cls.exports:
            out += [f"Results later steps can refer to: {', '.join(f'`{e}`' for e in cls.exports)}.", ""]
        for nested in _nested(cls, seen):
            out.append(_section(nested.__name__, nested))
    out += [
        "## Value types",
        "",
        f"- **site**: {_md(SITE_GRAMMAR)}. Checked against the model's real sites (layer and head "
        "ranges) by `tada validate`; `tada sites MODEL` lists them.",
        '- **steps**: denoising steps: `all`, an index (`3`), a half-open range (`"0:10"`, '
        '`"5:"`) or a list (`[0, 2, 4]`); checked against the step\'s schedule.',
        "- **branch**: classifier-free-guidance branch: `cond`, `uncond` or `both`; `uncond` "
        "needs `guidance > 1`.",
        "",
        _section(
            "Ref",
            Ref,
            "A value taken from an earlier step's results (its summary): "
            "`{from: STEP, key: RESULT}`; `key` defaults to the field's name.",
        ),  # fmt: skip
    ]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the page, or with ``--check`` report whether it is up to date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if the page is stale")
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help="output file")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is out of date; run `python -m interp.experiments.docs`.", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date.")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
