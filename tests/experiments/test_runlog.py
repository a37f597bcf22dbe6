"""run.log: one start and one end line per unit, surviving kill -9 and resume."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from interp.experiments import run
from interp.experiments.runlog import LOG_NAME, RunLog, read_log, summarize

from .conftest import SUBPROCESS_ENV, spec, write

PROMPTS = [f"a {w} violin song" for w in "sad happy fast slow calm loud soft upbeat".split()]


def _spec(tmp: Path) -> Path:
    data = spec(
        name="log",
        generation={"num_steps": 6, "guidance_scale": 3.0, "duration_s": 4.0, "seeds": [0, 1]},
        prompts={"default": PROMPTS},
        steps=[{"name": "gen", "method": "generate", "save_audio": False}],
    )
    return write(tmp / "log.yaml", data)


def _ends(out: Path) -> Counter:
    return Counter((e["step"], e["unit"]) for e in read_log(out) if e["event"] == "end")


@pytest.mark.slow
def test_log_survives_kill_9_and_resume(tmp_path: Path, quiet_warnings: None) -> None:
    """SIGKILL mid-run, then resume: every unit has exactly one end line, none is lost,
    and the log's counts match the work (2 seeds x 6 steps per prompt)."""
    path, out = _spec(tmp_path), tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "interp.cli", "run", str(path), "--out", str(out), "--no-progress"],
        env={**os.environ, **SUBPROCESS_ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    try:
        while len(list((out / "units").glob("*.json"))) < 3:
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no units finished in time"
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    killed = _ends(out)
    assert 3 <= len(killed) < len(PROMPTS)
    run(path, out=out, progress=False)
    ends = _ends(out)
    assert set(ends) == {("gen", f"p{i:04d}") for i in range(len(PROMPTS))}
    assert set(ends.values()) == {1}, f"duplicated end lines: {ends}"
    entries = [e for e in read_log(out) if e["event"] == "end"]
    assert all(e["generations"] == 2 and e["denoising_steps"] == 6 and e["batch_size"] == 2
               for e in entries)  # fmt: skip
    assert all(e["executor"] == "local" and e["wall_s"] > 0 and e["peak_memory_mb"] > 0 for e in entries)
    # starts: one per unit, plus at most the one in flight when the kill came
    starts = Counter(e["unit"] for e in read_log(out) if e["event"] == "start")
    assert set(starts) == {u for _, u in ends} and sum(starts.values()) <= len(PROMPTS) + 1
    # a finished run rerun adds nothing
    size = (out / LOG_NAME).stat().st_size
    run(path, out=out, progress=False)
    assert (out / LOG_NAME).stat().st_size == size


def test_torn_last_line_is_skipped_and_sealed(tmp_path: Path) -> None:
    """A line cut short by a kill is ignored, and the next entry starts on a new line."""
    log = tmp_path / LOG_NAME
    whole = json.dumps({"event": "start", "step": "s", "unit": "u0"})
    log.write_text(whole + "\n" + whole[:17])
    assert [e["unit"] for e in read_log(tmp_path)] == ["u0"]
    RunLog(tmp_path).start("s", "u1", "f1")
    assert [e["unit"] for e in read_log(tmp_path)] == ["u0", "u1"]


def test_show_summarizes_the_log(tmp_path: Path, quiet_warnings: None) -> None:
    from interp.cli import main

    out = tmp_path / "run"
    run(write(tmp_path / "s.yaml", spec()), out=out, progress=False)
    text = summarize(out)
    walls = [e["wall_s"] for e in read_log(out) if e["event"] == "end"]
    assert text.startswith(f"run.log: 2 units in {sum(walls):.1f} s; 2 generations")
    assert "slowest units:\n  gen/p0" in text
    assert main(["show", str(out)]) == 0


def test_show_leaves_out_units_of_an_earlier_spec(tmp_path: Path, quiet_warnings: None) -> None:
    """Changing the spec reruns its units into the same directory: the summary counts only
    the entries whose result files are current."""
    out = tmp_path / "run"
    run(write(tmp_path / "a.yaml", spec()), out=out, progress=False)
    run(write(tmp_path / "b.yaml", spec(metrics=["latent_distance"])), out=out, progress=False)
    assert len([e for e in read_log(out) if e["event"] == "end"]) == 4
    text = summarize(out)
    assert text.startswith("run.log: 2 units in ") and "(2 entries of an earlier spec left out.)" in text
