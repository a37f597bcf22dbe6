"""Broken specs: each gets one clear paragraph naming the field, the value and the fix."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from interp.experiments import SpecError, load_spec

from .conftest import SUBPROCESS_ENV, spec, write

EDIT = {"site": "cross.1.head.2", "op": "zero"}


def step(**changes: Any) -> dict[str, Any]:
    """The generate step with changes."""
    return {"name": "gen", "method": "generate", **changes}


def edits(*items: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A spec whose single step applies ``items``."""
    return spec(steps=[step(edits=list(items))], **changes)


# (id, spec, expected fragments: the path first, then what the message must say)
CASES: list[tuple[str, Any, list[str]]] = [
    ("unknown-top-key", spec(stepz=[]), ["stepz", "unknown key 'stepz'", "Did you mean 'steps'"]),
    (
        "unknown-model-key",
        spec(model={"name": "tiny-stable-audio", "devcie": "cpu"}),
        ["model.devcie", "Did you mean 'device'"],
    ),
    ("unknown-step-key", spec(steps=[step(edit=[EDIT])]), ["steps[0].edit", "Did you mean 'edits'"]),
    ("unknown-edit-key", edits({**EDIT, "sitex": "x"}), ["steps[0].edits[0].sitex", "Valid keys here"]),
    (
        "steps-not-int",
        spec(generation={"num_steps": "four"}),
        ["generation.num_steps", "'four'", "valid integer"],
    ),
    ("steps-zero", spec(generation={"num_steps": 0}), ["generation.num_steps", "greater than or equal to 1"]),
    ("guidance-negative", spec(generation={"guidance_scale": -1}), ["generation.guidance_scale", "-1"]),
    (
        "old-generation-keys",
        spec(generation={"steps": 4, "guidance": 3.0}),
        [
            "generation",
            "'steps' was renamed to 'num_steps'",
            "'guidance' was renamed to 'guidance_scale'",
            "write num_steps: 4, guidance_scale: 3.0",
        ],
    ),
    (
        "old-step-override-key",
        spec(steps=[step(generation={"steps": 2})]),
        ["steps[0].generation", "'steps' was renamed to 'num_steps'"],
    ),
    ("seeds-not-list", spec(generation={"seeds": "0"}), ["generation.seeds", "valid list"]),
    ("seeds-duplicate", spec(generation={"seeds": [1, 1]}), ["generation.seeds", "distinct"]),
    (
        "duration-zero",
        spec(generation={"duration_s": 0}),
        ["generation.duration_s", "greater than or equal to 0.1"],
    ),
    ("device-bad", spec(model={"name": "tiny-stable-audio", "device": "gpu"}), ["model.device", "'gpu'"]),
    (
        "dtype-bad",
        spec(model={"name": "tiny-stable-audio", "dtype": "float64"}),
        ["model.dtype", "'float32', 'float16' or 'bfloat16'"],
    ),
    (
        "model-missing",
        {k: v for k, v in spec().items() if k != "model"},
        ["model", "required key is missing"],
    ),
    (
        "steps-missing",
        {k: v for k, v in spec().items() if k != "steps"},
        ["steps", "required key is missing"],
    ),
    ("steps-empty", spec(steps=[]), ["steps", "at least 1 item"]),
    (
        "method-unknown",
        spec(steps=[{"name": "g", "method": "generat"}]),
        ["steps[0].method", "'generat'", "Did you mean 'generate'", "Valid methods"],
    ),
    ("method-missing", spec(steps=[{"name": "g"}]), ["steps[0].method", "needs a 'method' key"]),
    ("step-name-bad", spec(steps=[step(name="bad name")]), ["steps[0].name", "'bad name'"]),
    ("step-name-duplicate", spec(steps=[step(), step()]), ["steps[1].name", "already used by steps[0]"]),
    (
        "site-malformed",
        edits({**EDIT, "site": "cross-1-head-2"}),
        ["steps[0].edits[0].site", "Malformed site 'cross-1-head-2'", "cross.7.head.3"],
    ),
    (
        "site-component",
        edits({**EDIT, "site": "cross.1.hed.2"}),
        ["steps[0].edits[0].site", "valid components"],
    ),
    (
        "site-layer-range",
        edits({**EDIT, "site": "cross.9.head.0"}),
        ["steps[0].edits[0].site", "No cross-attention layer 9", "layers 0..1"],
    ),
    (
        "site-head-range",
        edits({**EDIT, "site": "cross.1.head.7"}),
        ["steps[0].edits[0].site", "Head 7 out of range", "0..3"],
    ),
    (
        "site-self-text",
        edits({**EDIT, "site": "self.0.text"}),
        ["steps[0].edits[0].site", "Only cross-attention"],
    ),
    (
        "uncond-without-guidance",
        edits({**EDIT, "branch": "uncond"}, generation={"num_steps": 4, "guidance_scale": 1.0}),
        ["steps[0].edits[0].branch", "'uncond'", "guidance is 1.0"],
    ),
    (
        "steps-beyond-schedule",
        edits({**EDIT, "steps": "0:9"}),
        ["steps[0].edits[0].steps", "'0:9'", "beyond the schedule", "4 steps"],
    ),
    ("step-index-beyond", edits({**EDIT, "steps": [1, 7]}), ["steps[0].edits[0].steps", "[7]", "beyond"]),
    (
        "steps-malformed",
        edits({**EDIT, "steps": "a:b"}),
        ["steps[0].edits[0].steps", "'a:b'", "a range like"],
    ),
    (
        "override-shrinks-schedule",
        spec(steps=[step(generation={"num_steps": 2}, edits=[{**EDIT, "steps": 3}])]),
        ["steps[0].edits[0].steps", "2 steps"],
    ),
    ("branch-typo", edits({**EDIT, "branch": "cnd"}), ["steps[0].edits[0].branch", "Did you mean 'cond'"]),
    ("scale-without-factor", edits({**EDIT, "op": "scale"}), ["steps[0].edits[0]", "needs a factor"]),
    ("zero-with-factor", edits({**EDIT, "factor": 2.0}), ["steps[0].edits[0]", "takes no factor"]),
    (
        "negative-without-guidance",
        spec(generation={"guidance_scale": 1.0, "negative_prompt": "noise"}),
        ["generation", "negative_prompt is set"],
    ),
    (
        "prompt-file-missing",
        spec(prompts={"p": {"file": "nowhere.csv"}}),
        ["prompts.p.file", "does not exist"],
    ),
    (
        "prompt-file-suffix",
        spec(prompts={"p": {"file": "prompts.xlsx"}}),
        ["prompts.p.file", "unsupported suffix"],
    ),
    (
        "prompt-file-column",
        spec(prompts={"p": {"file": "wrong.csv"}}),
        ["prompts.p", "no 'prompt' value", "text"],
    ),
    (
        "template-mismatch",
        spec(prompts={"p": {"template": "a {mood} song", "words": {"moods": ["sad"]}}}),
        ["prompts.p", "placeholders ['mood']"],
    ),
    (
        "prompt-set-kind",
        spec(prompts={"p": {"inlin": ["x"]}}),
        ["prompts.p", "'inline', 'file' or 'template'"],
    ),
    (
        "prompt-set-unknown",
        spec(steps=[step(prompts="other")]),
        ["steps[0].prompts", "no prompt set named 'other'"],
    ),
    (
        "prompts-ambiguous",
        spec(prompts={"a": ["x"], "b": ["y"]}),
        ["steps[0].prompts", "several prompt sets"],
    ),
    ("metric-unknown", spec(metrics=["rsm"]), ["metrics[0]", "Did you mean 'rms'"]),
    (
        "metric-option",
        spec(metrics=[{"name": "rms", "options": {"window": 3}}]),
        ["metrics[0]", "no option(s) ['window']"],
    ),
    ("metric-twice", spec(metrics=["rms", "rms"]), ["metrics", "listed twice"]),
    (
        "model-unknown",
        edits(EDIT, model={"name": "tiny-stable-audoi"}),
        ["model.name", "Unknown model", "tiny-stable-audio"],
    ),
    ("top-level-list", ["not", "a", "mapping"], ["must hold a mapping"]),
]


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    (tmp_path / "wrong.csv").write_text("text\na sad violin song\n")
    (tmp_path / "prompts.xlsx").write_text("x")
    return tmp_path


@pytest.mark.parametrize(("data", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_spec_gets_one_clear_paragraph(spec_dir: Path, data: Any, expected: list[str]) -> None:
    path = write(spec_dir / "spec.yaml", data)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert "\n\n" not in message and "Traceback" not in message
    assert message.startswith(f"Experiment spec {str(path)!r} is invalid")
    assert message.rstrip().endswith(f"`tada validate {path}`.")
    for fragment in expected:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"


def test_there_are_dozens_of_cases() -> None:
    assert len(CASES) >= 25


def test_every_problem_is_reported_at_once(spec_dir: Path) -> None:
    data = spec(
        model={"name": "tiny-stable-audio", "devcie": "cpu"},
        metrics=["rms", "lantent_distance"],
        steps=[
            {"name": "a", "method": "generat"},
            step(name="b", edits=[{**EDIT, "site": "cross.9.head.0"}, {**EDIT, "op": "scale"},
                                  {**EDIT, "site": "cross.1.head.1", "steps": "0:9"}]),
            step(name="c", prompts="other", edits=[{**EDIT, "branch": "uncond", "sitex": 1}]),
        ],
    )  # fmt: skip
    with pytest.raises(SpecError) as caught:
        load_spec(write(spec_dir / "s.yaml", data))
    paths = [issue.path for issue in caught.value.issues]
    assert paths == [
        "model.devcie",
        "metrics[1]",
        "steps[0].method",
        "steps[1].edits[0].site",
        "steps[1].edits[1]",
        "steps[1].edits[2].steps",
        "steps[2].edits[0].sitex",
        "steps[2].prompts",
    ]


def test_yaml_problems(spec_dir: Path) -> None:
    cases = {
        "syntax.yaml": ("name: [unclosed\n", "YAML error at line"),
        "dup.yaml": ("name: a\nname: b\n", "duplicate key 'name'"),
    }
    for name, (text, fragment) in cases.items():
        (spec_dir / name).write_text(text)
        with pytest.raises(SpecError, match=fragment):
            load_spec(spec_dir / name)
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(spec_dir / "missing.yaml")


def _tada(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **SUBPROCESS_ENV}
    code = "import sys; from interp.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_validate_reports_without_traceback(spec_dir: Path) -> None:
    syntax = spec_dir / "syntax.yaml"
    syntax.write_text("name: [unclosed\n")
    bad_site = write(spec_dir / "site.yaml", edits({**EDIT, "site": "cross.1.head.9"}))
    unknown = write(spec_dir / "unknown.yaml", spec(stepz=[]))
    good = write(spec_dir / "good.yaml", spec())
    done = _tada("validate", str(unknown), cwd=spec_dir)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("tada: error: Experiment spec") and "unknown key 'stepz'" in done.stderr
    done = _tada("validate", str(syntax), str(bad_site), str(good), cwd=spec_dir)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "YAML error" in done.stderr and "Head 9 out of range" in done.stderr
    assert "2 of 3 specs are invalid" in done.stderr
    assert done.stdout.startswith(f"{good}: valid")
