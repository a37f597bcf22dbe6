"""Pruning the broken parts of a spec so the rest can still be checked.

Schema errors and semantic errors are reported together: after pydantic rejects a
spec, the offending pieces are removed (an unknown key, a broken list item, a broken
step), the remainder is validated again, and the semantic checks run on it. Paths of
the issues they find are mapped back to positions in the original file.
"""

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from interp.experiments.issues import Issue, walk

_DELETED = object()
_SEGMENT = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


@dataclass
class Pruned:
    """The valid remainder of a spec and what was removed from it.

    Attributes:
        data: The remaining raw data.
        kept: Original list path -> original indices of the items kept.
        broken_steps: Names of removed steps (references to them are not re-reported).
        broken_prompt_sets: Prompt sets that failed (steps using them skip prompt checks).
        generation_ok: False if the generation settings had errors.
    """

    data: dict[str, Any]
    kept: dict[tuple[Any, ...], list[int]] = field(default_factory=dict)
    broken_steps: set[str] = field(default_factory=set)
    broken_prompt_sets: set[str] = field(default_factory=set)
    generation_ok: bool = True

    def original(self, issue: Issue) -> Issue:
        """The issue with its path mapped back to the original file's positions."""
        parts: list[Any] = []
        text = ""
        for match in _SEGMENT.finditer(issue.path):
            index, key = match.groups()
            if key is not None:
                parts.append(key)
                text += f".{key}" if text else key
            else:
                kept = self.kept.get(tuple(parts))
                i = int(index)
                i = kept[i] if kept is not None and i < len(kept) else i
                parts.append(i)
                text += f"[{i}]"
        return Issue(text, issue.message, issue.value)


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for elem in path:
        data = data[elem]
    return data


def _mark(data: Any, path: tuple[Any, ...]) -> None:
    parent = _get(data, path[:-1])
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    elif isinstance(parent, list) and isinstance(path[-1], int) and path[-1] < len(parent):
        parent[path[-1]] = _DELETED


def _sweep(value: Any, path: tuple[Any, ...], kept: dict[tuple[Any, ...], list[int]]) -> Any:
    if isinstance(value, dict):
        return {k: _sweep(v, (*path, k), kept) for k, v in value.items()}
    if isinstance(value, list):
        indices = [i for i, v in enumerate(value) if v is not _DELETED]
        if len(indices) != len(value):
            kept[path] = indices
        return [_sweep(value[i], (*path, i), kept) for i in indices]
    return value


def _target(root: type[BaseModel], error: ErrorDetails, data: Any) -> tuple[Any, ...] | None:
    """The piece of raw data to remove for one error."""
    loc = tuple(error["loc"])
    data_path = walk(root, loc)[2]
    if error["type"] == "extra_forbidden":
        return data_path
    if error["type"] == "missing":
        data_path = data_path[:-1]
    if len(data_path) == 3 and data_path[0] == "steps":
        return data_path  # a step's own field: drop it (a required one drops the step later)
    # remove the innermost list item containing the problem (an edit, a metric, a step)
    for cut in range(len(data_path), 0, -1):
        if isinstance(data_path[cut - 1], int):
            return data_path[:cut]
    return data_path


def prune(root: type[BaseModel], data: dict[str, Any], error: ValidationError) -> Pruned | None:
    """Remove what ``error`` points at; ``None`` if nothing useful would remain."""
    work = copy.deepcopy(data)
    if isinstance(work.get("prompts"), list):  # a bare list means {default: <list>}
        work["prompts"] = {"default": work["prompts"]}
    result = Pruned(work)
    steps = data.get("steps")
    for item in error.errors():
        target = _target(root, item, work)
        if not target:
            return None
        head = target[0]
        if head in ("steps", "prompts", "model") and len(target) == 1:
            return None
        if head == "prompts":
            name = target[1]
            result.broken_prompt_sets.add(str(name))
            if not isinstance(work["prompts"], dict) or not isinstance(name, str):
                return None
            work["prompts"][name] = ["placeholder"]
            continue
        if head == "generation":
            result.generation_ok = False
        if head == "name" and len(target) == 1:
            work["name"] = "invalid"
            continue
        if head == "steps" and len(target) >= 2 and isinstance(steps, list):
            step = steps[target[1]] if target[1] < len(steps) else None
            if len(target) == 2 and isinstance(step, dict):
                result.broken_steps.add(str(step.get("name")))
        try:
            _mark(work, target)
        except (KeyError, IndexError, TypeError):
            return None
    result.data = _sweep(work, (), result.kept)
    return result


def prune_steps(pruned: Pruned, error: ValidationError) -> Pruned | None:
    """Second pass: drop whole steps that still fail; ``None`` if anything else fails."""
    bad = set()
    for item in error.errors():
        loc = item["loc"]
        if len(loc) < 2 or loc[0] != "steps" or not isinstance(loc[1], int):
            return None
        bad.add(loc[1])
    steps = pruned.data["steps"]
    keep = [i for i in range(len(steps)) if i not in bad]
    if not keep:
        return None
    for i in bad:
        if isinstance(steps[i], dict):
            pruned.broken_steps.add(str(steps[i].get("name")))
    previous = pruned.kept.get(("steps",), list(range(len(steps))))
    pruned.kept[("steps",)] = [previous[i] for i in keep]
    pruned.data = {**pruned.data, "steps": [steps[i] for i in keep]}
    return pruned
