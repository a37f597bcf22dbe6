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


def test_units_side_by_side_keep_their_own_counts_and_log_lines(tmp_path: Path) -> None:
    """Two units of a step overlap (as with several Ray workers): each has its own events,
    counts and wall time, and run.log gets one start and one whole end line per unit,
    with the counts of that unit only and the workers its items ran on."""
    import threading

    from interp.distributed.concurrency import run_side_by_side, waiting
    from interp.experiments.watch import StepWatch
    from interp.progress import Progress, ProgressEvent

    events: list[ProgressEvent] = []
    watch = StepWatch(events.append, "gen", total=2, done=0, log=RunLog(tmp_path, executor="ray"))
    both_started = threading.Barrier(2)

    def worker_item(samples: int, steps: int) -> list[ProgressEvent]:
        made: list[ProgressEvent] = []
        item = Progress(made.append)
        item.batch_start(samples, steps)
        for _ in range(steps):
            item.denoising_step()
        item.batch_end()
        return made

    def unit(name: str, samples: int, steps: int, items: int) -> None:
        with watch.unit("gen", name, f"fp-{name}") as reporter:
            with waiting():  # as run_tasks does while the workers compute
                both_started.wait(timeout=30)
            for index in range(items):
                reporter.replay(worker_item(samples, steps), worker=f"host:{100 + index}")
                with waiting():
                    time.sleep(0.2)  # let the other unit report in between
        watch.finished("gen", name, f"fp-{name}")

    run_side_by_side([lambda: unit("a", 2, 3, 2), lambda: unit("b", 1, 5, 1)], threads=2)
    watch.close()
    assert [e["event"] for e in read_log(tmp_path)][:2] == ["start", "start"]  # they overlapped
    ends = {e["unit"]: e for e in read_log(tmp_path) if e["event"] == "end"}
    assert (ends["a"]["generations"], ends["a"]["denoising_steps"], ends["a"]["batch_size"]) == (4, 6, 2)
    assert (ends["b"]["generations"], ends["b"]["denoising_steps"], ends["b"]["batch_size"]) == (1, 5, 1)
    assert ends["a"]["worker"] == "host:100,host:101" and ends["b"]["worker"] == "host:100"
    assert {e["executor"] for e in read_log(tmp_path)} == {"ray"} and len(read_log(tmp_path)) == 4
    # the summary counts the overlapping time once: from a's start to the last end
    first = summarize(tmp_path).splitlines()[0]
    assert "of wall clock: units ran side by side" in first, first
    walls = sorted(e["wall_s"] for e in ends.values())
    spanned = float(first.split(" s of wall clock")[0].rsplit("(", 1)[1])
    assert walls[-1] - 0.06 <= spanned < 0.99 * sum(walls) - 0.05  # printed to 0.1 s
    for name, steps in (("a", [1, 2, 3] * 2), ("b", [1, 2, 3, 4, 5])):
        own = [e for e in events if e.unit == name]
        assert own[0].kind == "unit_start" and own[-1].kind == "unit_end"
        assert [e.step for e in own if e.kind == "step"] == steps
        assert [e.denoising_steps for e in own if e.kind == "step"] == list(range(1, len(steps) + 1))
    a_end = next(i for i, e in enumerate(events) if (e.unit, e.kind) == ("a", "unit_end"))
    assert any(e.unit == "b" and e.kind == "step" for e in events[:a_end])  # they interleave


def test_the_progress_callback_gets_one_event_at_a_time(tmp_path: Path) -> None:
    """Units side by side replay their workers' events while waiting, outside the
    driver's lock: the step's callback (a display, a user's) is still never entered by
    two threads at once."""
    import contextvars
    import threading

    from interp.experiments.watch import StepWatch
    from interp.progress import Progress, ProgressEvent

    inside, overlaps, seen = [0], [0], []

    def slow_callback(event: ProgressEvent) -> None:
        inside[0] += 1
        overlaps[0] += inside[0] > 1
        time.sleep(0.001)
        seen.append(event.unit)
        inside[0] -= 1

    watch = StepWatch(slow_callback, "gen", total=2, done=0, log=RunLog(tmp_path))
    start = threading.Barrier(2)

    def unit(name: str) -> None:
        made: list[ProgressEvent] = []
        item = Progress(made.append)
        item.batch_start(1, 20)
        for _ in range(20):
            item.denoising_step()
        item.batch_end()
        with watch.unit("gen", name, name) as reporter:
            start.wait(timeout=30)
            reporter.replay(made)
        watch.finished("gen", name, name)

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(unit, n)) for n in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    watch.close()
    assert overlaps[0] == 0 and seen.count("a") == seen.count("b") == 1 + 22 + 1


def test_a_halving_inside_a_unit_is_a_note_line_that_summaries_skip(tmp_path):
    from interp.batching import on_batch_note, run_halving

    log = RunLog(tmp_path)

    def chunk(items):
        if len(items) > 1:
            raise MemoryError("planted")
        return items

    with on_batch_note(lambda message: log.note("patch", "p0-s0", message)), pytest.warns(UserWarning):
        run_halving([1, 2], chunk, kind="test-runlog-note", what="variants")
    notes = [e for e in read_log(tmp_path) if e["event"] == "note"]
    assert [(n["step"], n["unit"], n["message"]) for n in notes] == [
        ("patch", "p0-s0", "out of memory with a batch of 2 variants; retrying as 1 + 1.")
    ]
    assert summarize(tmp_path) == "run.log: no finished units logged."
