"""Reading and writing spec YAML: duplicate keys are errors, output is stable."""

from pathlib import Path
from typing import Any

import yaml

from interp.experiments.issues import Issue, SpecError


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys (PyYAML silently keeps the last)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
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


def read_spec_file(path: Path) -> dict[str, Any]:
    """The mapping in a YAML spec file.

    Raises:
        SpecError: Missing file, YAML syntax error, duplicate key, or not a mapping.
    """
    source = str(path)
    if not path.is_file():
        hint = " (it is a directory)" if path.is_dir() else ""
        raise SpecError([Issue("", f"file {source!r} does not exist{hint}")], source)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = error.problem or str(error)
        raise SpecError([Issue("", f"YAML error{where}: {problem}")], source) from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise SpecError([Issue("", f"cannot read YAML: {error}")], source) from None
    if not isinstance(data, dict):
        raise SpecError(
            [Issue("", f"the file must hold a mapping of keys (name, model, prompts, steps, ...), "
                       f"got {type(data).__name__}")],
            source,
        )
    return data


def dump(data: Any) -> str:
    """Stable, readable YAML (keys in the models' order, no aliases)."""

    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
