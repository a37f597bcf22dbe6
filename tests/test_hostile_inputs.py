"""Hostile input never crashes `tada`: every file of tests/hostile/ validates to exit 0
or 2 with one short paragraph, and signals give a clean exit from main()'s first line."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interp import cli

CORPUS = sorted((Path(__file__).parent / "hostile").glob("*.yaml"))
MAX_OUTPUT = 4096
VALID = ("ok-", "bytes-bom", "model-device-cuda-valid")
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}


def test_corpus_is_large() -> None:
    assert len(CORPUS) >= 60


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_validate_hostile_file(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["validate", str(path)])
    out, err = capsys.readouterr()
    text = out + err
    expected = 0 if path.stem.startswith(VALID) else 2
    assert code == expected, text
    assert len(text.encode()) < MAX_OUTPUT
    assert "Traceback" not in text and "tada: unexpected" not in text
    if expected == 2:
        assert text.startswith("tada: error: ") and "tada validate" in text


def _tada(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "interp.cli", *args], capture_output=True,
                          text=True, env=ENV, timeout=timeout)  # fmt: skip


def test_subprocess_exit_codes() -> None:
    hostile = Path(__file__).parent / "hostile"
    bad = _tada("validate", str(hostile / "yaml-alias-bomb.yaml"), str(hostile / "yaml-deep-lists.yaml"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr) < MAX_OUTPUT
    missing = _tada("show", "/nonexistent/run")
    assert missing.returncode == 2 and "no finished run" in missing.stderr


def test_interrupt_while_loading_plugins_is_clean() -> None:
    """SIGINT during plug-in loading (before any command runs) exits 130, no traceback."""
    code = (
        "import os, signal, sys\n"
        # a user's shell gives tada the default handler; a test runner may pass SIGINT ignored
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})\n"
        "from interp import cli\n"
        "build = cli.build_parser\n"
        "def interrupted():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    return build()\n"
        "cli.build_parser = interrupted\n"
        "sys.exit(cli.main(['validate', 'nothing.yaml']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr and "interrupted" in done.stderr


@pytest.mark.slow
def test_sigterm_during_run_is_clean(tmp_path: Path) -> None:
    """SIGTERM unwinds like Ctrl-C: exit 130, no traceback, no temporary files, resumable."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: t\nmodel: {name: tiny-stable-audio}\ngeneration: {num_steps: 400, duration_s: 1.0}\n"
        "prompts: [a, b, c, d]\nsteps:\n  - {name: gen, method: generate}\n"
    )
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "interp.cli", "run", str(spec), "--out", str(out),
                                "--no-progress"], stderr=subprocess.PIPE, text=True, env=ENV)  # fmt: skip
    deadline = time.time() + 90
    while not (out / "units").is_dir() and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert not [p for p in out.rglob("*.tmp")]
