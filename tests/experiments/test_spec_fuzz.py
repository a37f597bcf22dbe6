"""Property tests of the spec loader: whatever a document holds, loading it either
succeeds or raises one short :class:`TadaError`, and ``tada validate`` exits 0 or 2."""

import copy
import io
import os
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interp import cli
from interp.errors import TadaError
from interp.experiments import SpecError, load_spec

from .conftest import BASE

MAX_MESSAGE = 4096
#: Fixed examples by default (deterministic suite); TADA_FUZZ_EXAMPLES=N explores N random ones.
_DEEP = os.environ.get("TADA_FUZZ_EXAMPLES")
FUZZ = settings(max_examples=int(_DEEP or 80), deadline=None, derandomize=_DEEP is None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip

scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats() | st.text(max_size=12) | st.sampled_from(["all", "0:2", "cross.1.head.0", "rms", "zero", "cond"])
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
#: Places in a valid spec where a user writes a value.
PATHS = [
    ("name",), ("model",), ("model", "device"), ("model", "threads"), ("model", "dtype"),
    ("generation",), ("generation", "num_steps"), ("generation", "guidance_scale"),
    ("generation", "duration_s"), ("generation", "seeds"), ("generation", "negative_prompt"),
    ("prompts",), ("prompts", "default"), ("prompts", "default", 0), ("metrics",), ("metrics", 0),
    ("output",), ("steps",), ("steps", 0), ("steps", 0, "name"), ("steps", 0, "method"),
    ("steps", 0, "edits"), ("steps", 0, "generation"), ("steps", 0, "metrics"), ("extra",),
]  # fmt: skip


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _check_load(data: Any, base_dir: Path) -> None:
    try:
        load_spec(data, base_dir=base_dir)
    except TadaError as error:
        assert len(str(error)) < MAX_MESSAGE


@FUZZ
@given(path=st.sampled_from(PATHS), value=values)
def test_any_value_anywhere_loads_or_fails_clearly(path: tuple[Any, ...], value: Any, tmp_path: Path) -> None:
    _check_load(_set(BASE, path, value), tmp_path)


@FUZZ
@given(document=st.dictionaries(st.sampled_from([*BASE, "x"]), values, max_size=6))
def test_any_document_loads_or_fails_clearly(document: dict[str, Any], tmp_path: Path) -> None:
    _check_load({**BASE, **document}, tmp_path)


def _validate(path: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["validate", str(path)])
    return code, out.getvalue() + err.getvalue()


_YAML_CHARS = st.sampled_from(
    list("abcnmeps:-[]{},&*!|>'\"#?%@` \n\t0123456789.") + ["\u0661", "\x00", "\ufeff"]
)


@FUZZ
@given(
    data=st.dictionaries(st.sampled_from([*BASE, "x"]), values, max_size=6),
    noise=st.lists(_YAML_CHARS, max_size=40).map("".join),
    cut=st.integers(min_value=0, max_value=400),
)
def test_validate_any_file_exits_0_or_2(data: dict[str, Any], noise: str, cut: int, tmp_path: Path) -> None:
    text = yaml.safe_dump({**BASE, **data}, sort_keys=False, allow_unicode=True)
    text = text[:cut] + noise + text[cut:]  # YAML noise spliced in anywhere
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    code, output = _validate(path)
    assert code in (0, 2), output
    assert len(output.encode()) < MAX_MESSAGE
    assert "Traceback" not in output and "tada: unexpected" not in output


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


def _cyclic() -> dict[str, Any]:
    data: dict[str, Any] = {**BASE}
    data["model"] = data
    return data


@pytest.mark.parametrize(
    ("spec", "message"),
    [({**BASE, "model": _deep(5000)}, "nested deeper than 50"), (_cyclic(), "contains itself")],
    ids=["deep", "cyclic"],
)  # fmt: skip
def test_in_memory_specs_of_any_shape_fail_clearly(spec: Any, message: str, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec(spec, base_dir=tmp_path)
