"""Run directories: marker, refusals, the lock, and retiring a changed spec's stale outputs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from interp.errors import DeviceError, TadaError
from interp.experiments import Results, run
from interp.experiments.rundir import LOCK, MARKER, RunDirError

from .conftest import SUBPROCESS_ENV, spec, write

TWO_STEPS = [{"name": "one", "method": "generate"},
             {"name": "two", "method": "generate", "edits": [{"site": "cross.1.head.2", "op": "zero"}]}]  # fmt: skip


def _small(**changes: object) -> dict[str, object]:
    return spec(
        **{"generation": {"num_steps": 2, "duration_s": 1.0, "seeds": [0]}, "prompts": ["a", "b"], **changes}
    )


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_refuses_a_directory_that_is_not_a_run(tmp_path: Path, quiet_warnings: None) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "results.csv").write_text("my own table\n")
    path = write(tmp_path / "s.yaml", _small())
    with pytest.raises(RunDirError, match="not empty and is not a tada run.*--force"):
        run(path, out=out, progress=False)
    assert (out / "results.csv").read_text() == "my own table\n"
    assert sorted(os.listdir(out)) == ["results.csv"]  # nothing written, not even the lock
    run(path, out=out, progress=False, force=True)
    assert (out / MARKER).is_file() and (out / "results.csv").read_text() != "my own table\n"


@pytest.mark.parametrize("out", ["", "  "])
def test_refuses_an_empty_out(tmp_path: Path, out: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RunDirError, match="empty"):
        run(write(tmp_path / "s.yaml", _small()), out=out, progress=False)
    assert sorted(os.listdir(tmp_path)) == ["s.yaml"]


@pytest.mark.parametrize("output", ["/tmp/elsewhere", "../escape", "a/../../escape"])
def test_spec_output_must_stay_below_the_spec(tmp_path: Path, output: str) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    with pytest.raises(TadaError, match="outside the spec file's directory"):
        run(write(folder / "s.yaml", _small(output=output)), progress=False)
    assert not (tmp_path / "escape").exists()


def test_spec_output_is_relative_to_the_spec(tmp_path: Path, quiet_warnings: None) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    results = run(write(folder / "s.yaml", _small(output="runs/x")), progress=False)
    assert results.path == folder / "runs" / "x" and (folder / "runs" / "x" / MARKER).is_file()


def test_refuses_a_file_and_symlinks_inside(tmp_path: Path, quiet_warnings: None) -> None:
    path = write(tmp_path / "s.yaml", _small())
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="is a file"):
        run(path, out=tmp_path / "file", progress=False)
    with pytest.raises(RunDirError, match="Cannot create the results directory '/proc/tada-run'"):
        run(path, out="/proc/tada-run", progress=False)  # a place nobody may write
    out = tmp_path / "run"
    run(path, out=out, progress=False)
    (out / "audio" / "elsewhere").symlink_to(tmp_path)
    with pytest.raises(RunDirError, match="symbolic links.*audio/elsewhere"):
        run(path, out=out, progress=False)


def test_lock_names_the_owner_and_dies_with_it(tmp_path: Path) -> None:
    """A live holder of the lock makes a second run fail at once; once it is gone
    (here: killed), the directory is free again."""
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from interp.experiments.rundir import claim\n"
         "with claim(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)\n", str(out)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, **SUBPROCESS_ENV},
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        path = write(tmp_path / "s.yaml", _small())
        with pytest.raises(RunDirError, match=f"in use by another `tada run` \\(process {holder.pid} "):
            run(path, out=out, progress=False)
        assert json.loads((out / LOCK).read_text())["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    from interp.experiments.rundir import claim

    with claim(out) as claimed:  # the kernel dropped the dead process's lock
        assert json.loads((out / LOCK).read_text())["pid"] == os.getpid() and claimed.path == out


def test_changed_spec_retires_stale_outputs(tmp_path: Path, quiet_warnings: None) -> None:
    out = tmp_path / "run"
    run(write(tmp_path / "a.yaml", _small(steps=TWO_STEPS)), out=out, progress=False)
    before = _files(out)
    assert {"units/two.p0000.json", "audio/two/p0000-a-s0.wav", "plots/two-rms.png"} <= before
    (out / "audio" / "one" / ".p0000-a-s0.wav.x1.tmp").write_bytes(b"half")  # left by kill -9
    (out / "saes" / "two").mkdir(parents=True)  # a method's own folder for step two
    (out / "saes" / "two" / "weights.bin").write_bytes(b"w")
    results = run(write(tmp_path / "b.yaml", _small(steps=TWO_STEPS[:1], prompts=["a"])), out=out,
                  progress=False)  # fmt: skip
    after = _files(out)
    assert not [f for f in after if "two" in f or "-b-" in f or f.endswith(".tmp")], after
    assert "units/one.p0001.json" not in after and "units/one.p0000.json" in after
    assert {r["step"] for r in results.rows} == {"one"} and {r["prompt"] for r in results.rows} == {"a"}
    assert after == {f for f in before if "two" not in f and "-b-" not in f and "p0001" not in f}


def test_show_tells_a_damaged_run(tmp_path: Path, quiet_warnings: None) -> None:
    out = tmp_path / "run"
    run(write(tmp_path / "s.yaml", _small()), out=out, progress=False)
    table = (out / "results.csv").read_text()
    (out / "results.csv").write_text(table[:-5])
    with pytest.raises(TadaError, match="damaged: results.csv differs"):
        Results(out)
    (out / "results.csv").write_text(table)
    summary = (out / "summary.json").read_text()
    (out / "summary.json").write_text(summary[: len(summary) // 2])
    with pytest.raises(TadaError, match="damaged: summary.json cannot be read"):
        Results(out)
    (out / "summary.json").write_text(summary)
    assert len(Results(out).rows) == 2


def test_cuda_spec_validates_but_fails_at_once_without_cuda(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from interp.experiments import validate

    path = write(tmp_path / "s.yaml", _small(model={"name": "tiny-stable-audio", "device": "cuda"}))
    validate(path)
    with pytest.raises(DeviceError, match="finds none on this machine"):
        run(path, out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_failed_write_names_the_file(tmp_path: Path) -> None:
    import errno

    from interp.experiments.units import atomic_write

    def full(temp: Path) -> None:
        temp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "plots" / "x.png"
    with pytest.raises(OSError, match=f"Cannot write '{target}': the disk is full") as caught:
        atomic_write(target, full)
    assert isinstance(caught.value, TadaError)
    assert list((tmp_path / "plots").iterdir()) == []  # the temporary file is gone


def test_long_names_fit_in_file_names() -> None:
    from interp.experiments.context import _safe
    from interp.experiments.units import Unit

    long = "é" * 300
    assert len(_safe(long).encode()) <= 120 and _safe(long) != _safe(long + "x")
    assert _safe("a sad violin") == "a_sad_violin"
    with pytest.raises(TadaError, match="at most 150"):
        Unit("c-" + "x" * 200)


def test_a_failed_rerun_does_not_pass_for_finished(
    tmp_path: Path, quiet_warnings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old summary is retired when a run starts: a rerun that fails leaves the
    directory 'unfinished', never old results under the new spec.yaml."""
    from interp.experiments import engine

    out = tmp_path / "run"
    run(write(tmp_path / "a.yaml", _small()), out=out, progress=False)

    def fail(*args: object, **kwargs: object) -> None:
        raise TadaError("a method failed")

    monkeypatch.setattr(engine, "_run_step", fail)
    with pytest.raises(TadaError, match="a method failed"):
        run(write(tmp_path / "b.yaml", _small(prompts=["c"])), out=out, progress=False)
    with pytest.raises(TadaError, match="no finished run.*interrupted"):
        Results(out)
