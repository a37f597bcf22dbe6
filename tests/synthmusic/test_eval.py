"""A smoke run of ``synthmusic eval`` and its statistics."""

import argparse
import json

import pytest

from interp.statistics import wilson as wilson_interval
from models.synthmusic.cli import add_commands, main
from models.synthmusic.evaluate import eval_prompts
from models.synthmusic.music import CONCEPTS
from models.synthmusic.pipeline import CHECKPOINT_DIR
from models.synthmusic.scorer import SCORER_DIR


def test_wilson_interval():
    lo, hi = wilson_interval(90, 100)
    assert 0.82 < lo < 0.83 and 0.94 < hi < 0.95
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_eval_prompts_are_deterministic_and_include_held_out():
    a, b = eval_prompts(300), eval_prompts(300)
    assert a == b
    assert any(p.held_out for p in a) and not all(p.held_out for p in a)


def test_add_commands_registers_synthmusic():
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["synthmusic", "train", "unet", "--steps", "5", "--seed", "2"])
    assert (args.kind, args.steps, args.seed) == ("unet", 5, 2)
    args = parser.parse_args(["synthmusic", "eval", "--models", "dit", "--guidance", "2,4"])
    assert args.samples == 400 and args.models == ["dit"] and args.guidance == [2.0, 4.0]
    with pytest.raises(SystemExit):
        parser.parse_args(["synthmusic", "eval", "--models", "gan"])


@pytest.mark.skipif(
    not (CHECKPOINT_DIR / "dit" / "model_index.json").exists()
    or not (SCORER_DIR / "model.safetensors").exists(),
    reason="dit or scorer not shipped",
)
def test_eval_smoke_json(capsys):
    assert (
        main(
            [
                "synthmusic",
                "eval",
                "--samples",
                "6",
                "--models",
                "dit",
                "--guidance",
                "4",
                "--steps",
                "3",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"dit"} and set(out["dit"]) == set(CONCEPTS)
    for stats in out["dit"].values():
        assert set(stats) == {"accuracy", "chance", "ci_low", "ci_high"}
        assert 0.0 <= stats["ci_low"] <= stats["accuracy"] <= stats["ci_high"] <= 1.0
