"""The ``tada`` command line: help that teaches, sites, show, errors, plug-in commands."""

import json
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import interp
from interp import cli
from interp.sites import Site


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", [[], ["validate"], ["plan"], ["run"], ["show"], ["sites"]])
def test_help_has_examples(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main([*command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "tada " in out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(capsys)
    assert code == 2 and "COMMAND" in out


def test_sites_json_lists_every_site(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(capsys, "sites", "tiny-stable-audio", "--json")
    assert code == 0
    records = json.loads(out)
    assert {"name", "module", "attention", "layer", "component", "head", "shape"} <= set(records[0])
    assert all(Site.parse(r["name"]).name == r["name"] for r in records)
    heads = [r for r in records if r["component"] == "head"]
    assert len(heads) == 2 * 2 * 4  # (self, cross) x 2 layers x 4 heads
    assert records == interp.sites_of("tiny-stable-audio")


def test_sites_table_and_filters(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(capsys, "sites", "tiny-stable-audio", "--attention", "cross", "--component", "text")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["name", "attention", "layer"]
    assert [line.split()[0] for line in lines[1:3]] == ["cross.0.text", "cross.1.text"]
    assert "2 sites of tiny-stable-audio" in out


def test_sites_of_full_size_model_without_weights(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(
        capsys, "sites", "stable-audio-open-1.0", "--no-weights", "--json", "--attention", "cross",
        "--component", "head",
    )  # fmt: skip
    assert code == 0 and len(json.loads(out)) == 24 * 24


def test_errors_are_one_message_with_exit_code_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _main(capsys, "sites", "tiny-stable-audoi")
    assert code == 2 and err.startswith("tada: error: Unknown model") and "Traceback" not in err
    assert "tiny-stable-audio" in err
    code, _, err = _main(capsys, "show", str(tmp_path))
    assert code == 2 and "no finished run" in err and "Traceback" not in err
    code, _, err = _main(capsys, "--debug", "sites", "tiny-stable-audoi")
    assert code == 2 and "Traceback" in err


@pytest.mark.filterwarnings("ignore")
def test_show_prints_a_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import yaml

    spec = {
        "name": "cli",
        "model": {"name": "tiny-stable-audio"},
        "generation": {"num_steps": 2, "guidance_scale": 3.0, "duration_s": 4.0},
        "prompts": ["a sad violin song"],
        "steps": [{"name": "gen", "method": "generate"}],
    }
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump(spec))
    code, out, _ = _main(capsys, "validate", str(path))
    assert code == 0 and "valid; 1 step(s): gen (generate)" in out
    code, out, _ = _main(capsys, "run", str(path), "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 0 and "gen [generate], 1 units" in out
    code, out, _ = _main(capsys, "show", str(tmp_path / "run"))
    assert code == 0 and out.startswith("cli  (model tiny-stable-audio, 1 rows)")
    code, out, _ = _main(capsys, "show", str(tmp_path / "run"), "--json")
    assert json.loads(out)["experiment"] == "cli"


def _hello(subparsers: object) -> None:
    parser = subparsers.add_parser("hello", help="say hello")  # type: ignore[attr-defined]
    parser.set_defaults(func=lambda args: print("hello from a plug-in"))


def _broken(subparsers: object) -> None:
    raise RuntimeError("boom")


def test_plugin_commands(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    points = [
        EntryPoint("hello", f"{__name__}:_hello", cli.COMMANDS_GROUP),
        EntryPoint("broken", f"{__name__}:_broken", cli.COMMANDS_GROUP),
    ]
    import interp.plugins

    monkeypatch.setattr(
        interp.plugins, "entry_points", lambda group: points if group == cli.COMMANDS_GROUP else []
    )
    code, out, err = _main(capsys, "hello")
    assert code == 0 and out.strip() == "hello from a plug-in"
    assert "skipped plug-in commands 'broken'" in err and "boom" in err


def test_plugin_commands_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["synthmusic", "--help"])
    out = capsys.readouterr().out
    assert "train" in out and "eval" in out
