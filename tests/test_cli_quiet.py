"""The CLI prints only tada's own lines: no third-party bars or warnings unless -v."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
NOISE = re.compile(r"Warning|warn\(|Loading|\bit/s|Writing model|past_key_values|Should have")


def _tada(*args: str) -> subprocess.CompletedProcess[str]:
    # the CLI's own settings only: an in-process main() earlier in the session exports them
    inherited = {"PYTHONWARNINGS", "HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY",
                 "DIFFUSERS_VERBOSITY", "TRANSFORMERS_NO_ADVISORY_WARNINGS"}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in inherited}
    return subprocess.run([sys.executable, "-m", "interp.cli", *args], cwd=ROOT, env={**env, **ENV},
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def _segments(stderr: str) -> list[str]:
    """What a terminal would show: tqdm redraws split on carriage returns, cursor moves dropped."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", stderr)
    return [s.strip() for s in re.split(r"[\r\n]", text) if s.strip()]


def test_tiny_experiment_prints_only_tada_lines(tmp_path: Path) -> None:
    """``tada run experiments/tiny.yaml`` (the README's command) with progress shown."""
    done = _tada("run", "experiments/tiny.yaml", "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    segments = _segments(done.stderr)
    assert segments, "no progress was shown"
    foreign = [s for s in segments if not re.match(r"(baseline|zero_head|unit( p\d{4})?):", s)]
    assert foreign == [], f"third-party output on stderr: {foreign[:5]}"
    assert not NOISE.search(done.stdout + done.stderr)
    assert any(re.match(r"unit p\d{4}: \d+/\? gen, step \d/4 \| ", s) for s in segments)


@pytest.mark.slow
def test_loading_bars_only_with_verbose(tmp_path: Path) -> None:
    """Loading a saved pipeline shows diffusers' and transformers' bars only under -v (so
    the quiet run above is quiet because of tada, not because nothing was printed)."""
    import warnings

    from models.tiny.stable_audio import tiny_stable_audio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tiny_stable_audio().save_pretrained(tmp_path / "sa")
    quiet = _tada("sites", str(tmp_path / "sa"))
    verbose = _tada("-v", "sites", str(tmp_path / "sa"))
    assert quiet.returncode == verbose.returncode == 0
    assert quiet.stderr == ""
    assert "Loading pipeline components" in verbose.stderr and "Loading weights" in verbose.stderr
    assert quiet.stdout == verbose.stdout
