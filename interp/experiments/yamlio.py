"""Reading and writing spec YAML: duplicate keys are errors, output is stable."""

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError

from interp.experiments.issues import Issue, SpecError

#: Deepest nesting of lists and mappings a spec may use.
MAX_DEPTH = 50
#: Most values a spec may hold once YAML aliases are expanded (an "alias bomb" guard).
MAX_VALUES = 200_000


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys (PyYAML silently keeps the last), keys
    that are lists or mappings, and nesting deeper than :data:`MAX_DEPTH`."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ComposerError(
                    None, None, f"nesting deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain word or number, not a list or mapping",
                key_node.start_mark,
            )  # fmt: skip
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # merged keys (<<: *base) may be overridden by the mapping's own
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first at line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node, deep=deep))


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Number of values under ``node`` with aliases expanded (memoized per node)."""
    if id(node) not in sizes:
        sizes[id(node)] = 0  # a recursive alias counts once
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        total = 1
        for child in children:
            total += _size(child, sizes)
            if total > MAX_VALUES:
                break
        sizes[id(node)] = total
    return sizes[id(node)]


def _load(text: str) -> Any:
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _size(node, {}) > MAX_VALUES:
            raise yaml.YAMLError(
                f"the document holds more than {MAX_VALUES} values once its aliases (*name) "
                f"are expanded; write the values out or use fewer aliases"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def check_shape(data: Any) -> None:
    """Refuse an in-memory spec nested deeper than :data:`MAX_DEPTH`, holding more than
    :data:`MAX_VALUES` values, or containing itself (the limits a YAML file gets).

    Raises:
        SpecError: Naming the limit that was crossed.
    """
    count = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    on_path: set[int] = set()
    while stack:
        value, depth = stack.pop()
        if depth < 0:  # leaving a container
            on_path.discard(id(value))
            continue
        count += 1
        problem = None
        if depth > MAX_DEPTH:
            problem = f"the spec is nested deeper than {MAX_DEPTH} levels"
        elif count > MAX_VALUES:
            problem = f"the spec holds more than {MAX_VALUES} values"
        elif isinstance(value, (dict, list, tuple)) and id(value) in on_path:
            problem = "the spec contains itself (a list or mapping that includes itself)"
        if problem:
            raise SpecError([Issue("", problem)])
        if isinstance(value, (dict, list, tuple)):
            on_path.add(id(value))
            stack.append((value, -1))
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def read_spec_file(path: Path) -> dict[str, Any]:
    """The mapping in a YAML spec file.

    Raises:
        SpecError: Missing file, YAML syntax error, duplicate key, or not a mapping.
    """
    source = str(path)
    if path.is_dir():
        specs = sorted(p.name for p in path.glob("*.yaml"))[:3]
        hint = f", e.g. {', '.join(str(path / s) for s in specs)}" if specs else ""
        raise SpecError(
            [Issue("", f"{source!r} is a directory, not a spec file; give a YAML file{hint}")], source
        )
    if not path.is_file():
        raise SpecError([Issue("", f"file {source!r} does not exist")], source)
    try:
        data = _load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = error.problem or str(error)
        raise SpecError([Issue("", f"YAML error{where}: {problem}")], source) from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise SpecError([Issue("", f"cannot read YAML: {error}")], source) from None
    if not isinstance(data, dict):
        raise SpecError(
            [
                Issue(
                    "",
                    f"the file must hold a mapping of keys (name, model, prompts, steps, ...), "
                    f"got {type(data).__name__}",
                )
            ],
            source,
        )
    return data


def dump(data: Any) -> str:
    """Stable, readable YAML (keys in the models' order, no aliases)."""

    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
