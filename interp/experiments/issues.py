"""Spec problems: collected all at once, each with its field path and value.

:class:`SpecError` carries every :class:`Issue` found in a spec and prints them as one
paragraph: a header line, one line per problem (``path = value: what is wrong, what is
valid``) and how to check again. :func:`from_validation_error` turns pydantic's errors
into issues with readable paths (``steps[0].edits[1].site``) and did-you-mean hints.
"""

import reprlib
import types
from dataclasses import dataclass
from typing import Annotated, Any, TypeGuard, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError
from pydantic_core import ErrorDetails

from interp.errors import TadaError, did_you_mean

_MISSING: Any = object()
_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = 6
_short.maxdict = 4
_short.maxlevel = 2

#: An error lists at most this many problems, each cut to MAX_LINE characters, so a
#: hostile spec cannot produce a megabyte of error text.
MAX_ISSUES = 12
MAX_LINE = 300


@dataclass(frozen=True)
class Issue:
    """One problem in a spec.

    Attributes:
        path: Dotted field path, e.g. ``'steps[0].edits[1].site'`` (``''``: the file).
        message: What is wrong, what was expected, the valid choices.
        value: The value given (omitted from the message when not applicable).
    """

    path: str
    message: str
    value: Any = _MISSING

    def line(self) -> str:
        """The issue as one line."""
        where = self.path or "spec"
        shown = "" if self.value is _MISSING else f" = {_short.repr(self.value)}"
        message = self.message.strip()
        message = message if message.endswith((".", "?", "!")) else message + "."
        line = f"{_clip(where, 120)}{shown}: {message}"
        return _clip(line, MAX_LINE)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


_TOP_ORDER = ("", "name", "description", "model", "generation", "prompts", "metrics", "output", "steps")


def _order(issue: Issue) -> list[tuple[int, Any]]:
    """Sort key: paths in file order (``steps[2]`` before ``steps[10]``)."""
    key: list[tuple[int, Any]] = []
    for number, part in enumerate(issue.path.replace("[", ".[").split(".")):
        if part.startswith("[") and part.endswith("]") and part[1:-1].isdigit():
            key.append((0, int(part[1:-1])))
        elif number == 0 and part in _TOP_ORDER:
            key.append((0, _TOP_ORDER.index(part)))
        elif part:
            key.append((1, part))
    return key


class SpecError(TadaError, ValueError):
    """An experiment spec has problems; ``issues`` lists every one of them."""

    def __init__(self, issues: list[Issue], source: str | None = None):
        self.issues = sorted(issues, key=_order)
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        """One paragraph: header, one line per issue, how to check again."""
        count = len(self.issues)
        what = f"Experiment spec {_clip(self.source, 200)!r}" if self.source else "Experiment spec"
        lines = [f"{what} is invalid ({count} problem{'s' if count != 1 else ''}):"]
        lines += [f"  - {issue.line()}" for issue in self.issues[:MAX_ISSUES]]
        if count > MAX_ISSUES:
            lines.append(f"  - ... and {count - MAX_ISSUES} more problems (fix these first).")
        target = _clip(self.source, 200) if self.source else "FILE"
        lines.append(f"Fix {'them' if count != 1 else 'it'} and check again with `tada validate {target}`.")
        return "\n".join(lines)


def _unwrap(node: Any) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` layers, returning the base type and all metadata."""
    meta: list[Any] = []
    while get_origin(node) is Annotated:
        base, *extra = get_args(node)
        meta.extend(extra)
        node = base
    return node, meta


def _is_union(node: Any) -> bool:
    return get_origin(node) in (Union, types.UnionType)


def _is_model(node: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(node, type) and issubclass(node, BaseModel)


def _field(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            annotation = info.annotation
            return Annotated[(annotation, *info.metadata)] if info.metadata else annotation
    return _MISSING


def _keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _member_for(node: Any, elem: str) -> Any:
    """The union member a pydantic loc element (tag or type label) points to."""
    for member in get_args(node):
        base, meta = _unwrap(member)
        if any(isinstance(m, Tag) and m.tag == elem for m in meta):
            return member
        if _is_model(base) and base.__name__ == elem:
            return member
    return _MISSING


def walk(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, Any, tuple[Any, ...]]:
    """Follow a pydantic ``loc`` through the spec models.

    Returns:
        The readable path (``'steps[0].edits[1].site'``), the type found at its end
        (``None`` if unknown), and the path into the raw data (union tags and member
        labels removed).
    """
    from interp.experiments import methods as registry
    from interp.experiments.spec import AnyMethod

    path = ""
    data_path: list[Any] = []
    node: Any = root
    for elem in loc:
        node, _ = _unwrap(node)
        if node is AnyMethod and isinstance(elem, str) and elem in registry.registered():
            node = registry.registered()[elem]
            continue
        if _is_union(node) and isinstance(elem, str):
            member = _member_for(node, elem)
            if member is not _MISSING:
                node = member
                continue
            models = [_unwrap(m)[0] for m in get_args(node)]
            fields = [_field(m, elem) for m in models if _is_model(m)]
            fields = [f for f in fields if f is not _MISSING]
            if not fields:
                node = _MISSING  # a member label we cannot map; skip it
                continue
            node = fields[0]
            path += f".{elem}"
            data_path.append(elem)
            continue
        data_path.append(elem)
        if isinstance(elem, int):
            path += f"[{elem}]"
            args = get_args(node)
            origin = get_origin(node)
            node = args[0] if origin in (list, tuple, set, frozenset) and args else _MISSING
            continue
        path += f".{elem}" if path else str(elem)
        if _is_model(node):
            node = _field(node, elem)
        elif get_origin(node) is dict:
            node = get_args(node)[1]
        else:
            node = _MISSING
    return path, (_unwrap(node)[0] if node is not _MISSING else None), tuple(data_path)


def _message(error: ErrorDetails, parent: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    msg = error["msg"]
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        if _is_model(parent):
            valid = _keys(parent)
            return f"unknown key {key!r}.{did_you_mean(key, valid)} Valid keys here: {valid}"
        return f"unknown key {key!r}"
    if kind == "missing":
        if _is_model(parent):
            return f"required key is missing (keys here: {_keys(parent)})"
        return "required key is missing"
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag"))
        from interp.experiments.methods import registered

        names = sorted(registered())
        return f"unknown method {tag!r}.{did_you_mean(tag, names)} Valid methods: {names}"
    if kind == "union_tag_not_found":
        from interp.experiments.methods import registered

        return f"a step needs a 'method' key naming one of {sorted(registered())}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        choices = [c.strip().strip("'\"") for c in expected.replace(" or ", ",").split(",")]
        given = error.get("input")
        hint = did_you_mean(given, choices) if isinstance(given, str) else ""
        return f"{msg}.{hint}"
    if kind == "value_error" and msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    if kind == "string_pattern_mismatch" and error["loc"] and error["loc"][-1] == "name":
        return f"{msg}: use letters, digits, '_' and '-', starting with a letter"
    return msg


def from_validation_error(error: ValidationError, root: type[BaseModel]) -> list[Issue]:
    """Translate pydantic's errors for ``root`` into issues, in the order found."""
    issues: list[Issue] = []
    for item in error.errors():
        loc = tuple(item["loc"])
        kind = item["type"]
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            path = walk(root, loc)[0]
            value = (item.get("ctx") or {}).get("tag", _MISSING) if kind == "union_tag_invalid" else _MISSING
            issues.append(Issue(f"{path}.method" if path else "method", _message(item, None), value))
            continue
        path = walk(root, loc)[0]
        parent = walk(root, loc[:-1])[1] if loc else root
        if kind == "missing" or (kind == "value_error" and isinstance(item.get("input"), dict)):
            value = _MISSING
        else:
            value = item.get("input", _MISSING)
        issues.append(Issue(path, _message(item, parent), value))
    return issues
