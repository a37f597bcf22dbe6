"""Running experiments: outputs, determinism, and resuming after kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interp.errors import TadaError
from interp.experiments import Results, run

from .conftest import SUBPROCESS_ENV, spec, write

WORDS = "sad happy fast slow calm loud soft upbeat".split()
N_PROMPTS = 16


def _resume_spec(tmp: Path) -> Path:
    prompts = [f"a {w} violin song" for w in WORDS] + [f"a {w} piano piece" for w in WORDS]
    data = spec(
        name="resume",
        generation={"num_steps": 10, "guidance_scale": 3.0, "duration_s": 4.0, "seeds": [0, 1]},
        prompts={"default": prompts[:N_PROMPTS]},
        steps=[{"name": "gen", "method": "generate", "save_audio": False}],
    )
    return write(tmp / "resume.yaml", data)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An uninterrupted run of the resume spec: (spec path, run directory)."""
    import warnings

    tmp = tmp_path_factory.mktemp("reference")
    path = _resume_spec(tmp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(path, out=tmp / "run", progress=False)
    return path, tmp / "run"


def test_run_writes_every_output(tmp_path: Path, quiet_warnings: None) -> None:
    data = spec(
        prompts={"moods": {"template": "a {mood} violin song", "words": {"mood": ["sad", "happy"]},
                           "concept": "{mood}"}},
        steps=[{"name": "gen", "method": "generate"},
               {"name": "zeroed", "method": "generate",
                "edits": [{"site": "cross.1.head.2", "op": "zero", "steps": "0:2", "branch": "cond"}]}],
        metrics=["rms", "latent_distance"],
    )  # fmt: skip
    out = tmp_path / "run"
    results = run(write(tmp_path / "s.yaml", data), out=out, progress=False)
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"spec.yaml", "results.csv", "summary.json", "index.html"} <= names
    assert {"plots/gen-rms.png", "plots/zeroed-latent_distance.png",
            "audio/zeroed/p0001-a_happy_violin_song-s0.wav"} <= names  # fmt: skip
    assert len([n for n in names if n.startswith("units/")]) == 4
    header = (out / "results.csv").read_text().splitlines()[0]
    assert header == "step,method,unit,concept,prompt,site,steps,branch,seed,metric,value"
    rows = results.rows
    assert len(rows) == 2 * 2 * 2  # steps x prompts x metrics (one seed)
    zeroed = [r for r in rows if r["step"] == "zeroed" and r["metric"] == "latent_distance"]
    assert all(r["value"] < 0 and r["site"] == "cross.1.head.2" and r["branch"] == "cond" for r in zeroed)
    assert {r["concept"] for r in rows} == {"sad", "happy"}
    html = (out / "index.html").read_text()
    assert 'src="plots/gen-rms.png"' in html and 'src="audio/zeroed/p0000-a_sad_violin_song-s0.wav"' in html
    assert str(out) not in html  # relative paths only
    inline = results._repr_html_()
    assert "data:image/png;base64" in inline and "<table" in inline
    assert "zeroed [generate], 2 units" in results.text()
    resolved = (out / "spec.yaml").read_text()
    assert "inline:" in resolved and "a sad violin song" in resolved
    again = run(out / "spec.yaml", out=tmp_path / "from-resolved", progress=False)
    assert (tmp_path / "from-resolved" / "results.csv").read_text() == (out / "results.csv").read_text()
    assert again.summary["steps"][1]["summary"]["units"] == 2


def test_same_spec_twice_gives_identical_tables(reference: tuple[Path, Path], tmp_path: Path) -> None:
    path, first = reference
    run(path, out=tmp_path / "second", progress=False)
    assert (tmp_path / "second" / "results.csv").read_bytes() == (first / "results.csv").read_bytes()
    assert (tmp_path / "second" / "summary.json").read_bytes() == (first / "summary.json").read_bytes()


def test_finished_directory_is_reused(reference: tuple[Path, Path]) -> None:
    path, out = reference
    units = sorted((out / "units").glob("*.json"))
    stamps = [u.stat().st_mtime_ns for u in units]
    table = (out / "results.csv").read_bytes()
    started = time.perf_counter()
    run(path, out=out, progress=False)
    assert [u.stat().st_mtime_ns for u in units] == stamps
    assert (out / "results.csv").read_bytes() == table
    assert time.perf_counter() - started < 5


def _interrupt(path: Path, out: Path, sig: int, after: int) -> subprocess.Popen[str]:
    """Start ``tada run`` in a subprocess and send ``sig`` once ``after`` units are done."""
    # Python leaves SIGINT ignored when it starts ignored (as in a background job of a
    # non-interactive shell, where CI may run us): install the handler a terminal gives.
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from interp.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, "run", str(path), "--out", str(out), "--no-progress"],
        env={**os.environ, **SUBPROCESS_ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    try:
        while len(list((out / "units").glob("*.json"))) < after:
            assert process.poll() is None, "the run ended before it could be interrupted"
            assert time.monotonic() < deadline, "no units finished in time"
            time.sleep(0.01)
    finally:
        process.send_signal(sig)
        process.wait(timeout=60)
    return process


def test_ctrl_c_stops_cleanly(reference: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """A KeyboardInterrupt after the second unit (what Ctrl-C raises in the main thread).

    Raised from inside the run, so it lands at a known point whatever the process's signal
    setup: ``_thread.interrupt_main`` from a timer thread does nothing when SIGINT is
    ignored, as in a shell's background job (test_real_sigint_exits_130_and_resumes sends
    a real signal).
    """
    from interp.cli import main
    from interp.experiments.units import UnitStore

    path, uninterrupted = reference
    out = tmp_path / "interrupted"
    save = UnitStore.save
    saved: list[str] = []

    def save_then_ctrl_c(self: UnitStore, step: str, result: object) -> None:
        save(self, step, result)
        saved.append(step)
        if len(saved) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(UnitStore, "save", save_then_ctrl_c)
    code = main(["run", str(path), "--out", str(out), "--no-progress"])
    monkeypatch.undo()
    stderr = capsys.readouterr().err
    assert code == 130
    assert "interrupted" in stderr and "rerun the same command" in stderr and "Traceback" not in stderr
    assert len(list((out / "units").glob("*.json"))) == 2
    run(path, out=out, progress=False)
    assert (out / "results.csv").read_bytes() == (uninterrupted / "results.csv").read_bytes()


def test_real_sigint_exits_130_and_resumes(reference: tuple[Path, Path], tmp_path: Path) -> None:
    """A real Ctrl-C (SIGINT to a ``tada run`` process) between or inside units."""
    path, uninterrupted = reference
    out = tmp_path / "sigint"
    process = _interrupt(path, out, signal.SIGINT, after=2)
    stderr = process.stderr.read() if process.stderr else ""
    assert process.returncode == 130, stderr
    assert "rerun the same command" in stderr and "Traceback" not in stderr
    assert 2 <= len(list((out / "units").glob("*.json"))) < N_PROMPTS
    run(path, out=out, progress=False)
    assert (out / "results.csv").read_bytes() == (uninterrupted / "results.csv").read_bytes()


def test_resume_after_kill_9_matches_uninterrupted_run(reference: tuple[Path, Path], tmp_path: Path) -> None:
    path, uninterrupted = reference
    out = tmp_path / "killed"
    _interrupt(path, out, signal.SIGKILL, after=3)
    done = sorted((out / "units").glob("*.json"))
    assert 3 <= len(done) < N_PROMPTS, "kill the run mid-way"
    assert not (out / "results.csv").exists()
    with pytest.raises(TadaError, match="no finished run"):
        Results(out)
    # what a torn write would look like: a temp file and a truncated unit file
    (out / "units" / ".gen.p0009.json.abc.tmp").write_text('{"id": "p00')
    done[0].write_text('{"id": "p0000", "rows": [')
    stamps = {u.name: u.stat().st_mtime_ns for u in done[1:]}
    run(path, out=out, progress=False)
    assert (out / "results.csv").read_bytes() == (uninterrupted / "results.csv").read_bytes()
    assert {u.name: u.stat().st_mtime_ns for u in done[1:]} == stamps  # finished units kept
    assert json.loads(done[0].read_text())["id"] == "p0000"  # the broken one was redone
    assert not list((out / "units").glob(".*.tmp"))


def test_changed_spec_recomputes_only_what_changed(reference: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    path, uninterrupted = reference
    out = tmp_path / "changed"
    shutil.copytree(uninterrupted, out)
    data = __import__("yaml").safe_load(path.read_text())
    data["metrics"] = ["rms", "duration_s"]
    changed = write(tmp_path / "changed.yaml", data)
    results = run(changed, out=out, progress=False)
    assert {r["metric"] for r in results.rows} == {"rms", "duration_s"}
    assert len(results.rows) == N_PROMPTS * 2 * 2
