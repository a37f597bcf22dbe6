"""The Ray executor on a local 2-CPU Ray instance: byte-identical results, faults, bad input.

One Ray instance serves the whole module. The reference of every comparison is the
local executor's ``results.csv`` for the same spec.
"""

import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
import yaml

from interp.distributed import ExecutorConfig, ExecutorError
from interp.distributed import executor as executors
from interp.experiments import run
from interp.experiments.runlog import read_log
from interp.progress import ProgressEvent

from .specs import reduced_default

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    """The environment for a ``tada`` subprocess, read after ``ray.init`` (which adds the
    local cluster's credentials to it)."""
    return {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance with 2 CPUs; yields its address."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _run(spec, out: Path, **options) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(spec, out=out, progress=False, **options)
    return (out / "results.csv").read_bytes()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, int]:
    """The local executor's table of the reduced default experiment, and how many work
    items it computed."""
    before = executors.computed["items"]
    table = _run(reduced_default(), tmp_path_factory.mktemp("local") / "run")
    return table, executors.computed["items"] - before


def _worker_pids() -> list[int]:
    """Process ids of this machine's tada Ray actors (their title is ray::_Worker...)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if title.startswith(b"ray::_Worker"):
                pids.append(int(entry.name))
    return pids


def _wait_for(condition, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


def _stored_items(out: Path) -> int:
    work = out / "units" / "work"
    return len(list(work.glob("*/*.json"))) if work.is_dir() else 0


Watched = tuple[bytes, dict[str, list[ProgressEvent]], set[int]]


def _run_watched(spec, out: Path, **options) -> Watched:
    """``results.csv`` of a run, the progress events its ``progress=`` callback got, per
    unit (``p0000#1``: unit p0000 of the second step), and the pids of the tada Ray actors
    alive while units ended."""
    events: dict[str, list[ProgressEvent]] = {}
    latest: dict[str | None, str] = {}
    actors: set[int] = set()

    def received(event: ProgressEvent) -> None:
        if event.kind == "unit_start":  # steps run one after the other
            latest[event.unit] = f"{event.unit}#{sum(k.startswith(f'{event.unit}#') for k in events)}"
        events.setdefault(latest.get(event.unit, f"{event.unit}"), []).append(event)
        if event.kind == "unit_end":
            actors.update(_worker_pids())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(spec, out=out, progress=received, **options)
    return (out / "results.csv").read_bytes(), events, actors


def _counts(events: list[ProgressEvent]) -> list[tuple]:
    return [(e.kind, e.generations_done, e.generations_total, e.batch_size, e.step, e.steps,
             e.denoising_steps) for e in events]  # fmt: skip


def test_ray_workers_report_steps_to_the_driver_per_unit_in_order(cluster, tmp_path):
    """tiny.yaml on 2 Ray workers: the driver's progress callback gets, for every unit,
    the step events of the generations its items ran on the actors (as many as the spec
    implies, counted 1, 2, ... in order; the same sequence the local executor gives);
    units overlap, and run.log has one start and one end per unit naming "ray" and the
    actors; results.csv is byte-identical to the local executor's."""
    path = ROOT / "experiments" / "tiny.yaml"
    spec = yaml.safe_load(path.read_text())
    steps, seeds = spec["generation"]["num_steps"], len(spec["generation"]["seeds"])
    words = spec["prompts"]["moods"]["words"]
    prompts = len(words["mood"]) * len(words["instrument"])
    # generate: one unit per prompt, all seeds in one batch; an edited step also runs the
    # unedited reference for latent_distance
    generations = {s["name"]: 2 if s.get("edits") else 1 for s in spec["steps"]}
    local, local_events, _ = _run_watched(path, tmp_path / "local")
    table, events, actors = _run_watched(path, tmp_path / "ray", executor=ExecutorConfig("ray", workers=2))
    assert table == local
    assert len(events) == prompts * len(spec["steps"]) == len(local_events)
    for unit, received in events.items():
        kinds = [e.kind for e in received]
        assert kinds[0] == "unit_start" and kinds[-1] == "unit_end"
        assert all(e.unit == unit.split("#")[0] for e in received)
        assert _counts(received) == _counts(local_events[unit]), unit
    for index, per_unit in enumerate(generations.values()):
        for unit in (f"p{i:04d}#{index}" for i in range(prompts)):
            assert sum(e.kind == "step" for e in events[unit]) == per_unit * steps, unit
    sample_steps = sum(e.batch_size for r in events.values() for e in r if e.kind == "step")
    assert sample_steps == prompts * seeds * steps * sum(generations.values())
    for received in events.values():
        counted = [e.denoising_steps for e in received if e.kind == "step"]
        assert counted == list(range(1, len(counted) + 1)) and counted
        batches = len(counted) // steps
        assert [e.step for e in received if e.kind == "step"] == [*range(1, steps + 1)] * batches
    log = read_log(tmp_path / "ray")
    ran_on: set[int] = set()
    for name, per_unit in generations.items():
        entries = [e for e in log if e["step"] == name]
        starts = [e["unit"] for e in entries if e["event"] == "start"]
        ends = {e["unit"]: e for e in entries if e["event"] == "end"}
        assert sorted(starts) == sorted(ends) == [f"p{i:04d}" for i in range(prompts)]
        assert len(starts) == prompts and all(e["executor"] == "ray" for e in entries)
        for entry in ends.values():
            assert entry["generations"] == per_unit * seeds and entry["denoising_steps"] == per_unit * steps
            workers = {int(w.rsplit(":", 1)[1]) for w in entry["worker"].split(",")}
            # the driver runs items itself only while no actor has loaded the model yet
            assert workers and workers <= actors | {os.getpid()}, (entry, actors)
            ran_on |= workers
    assert ran_on & actors, "no item ran on an actor"
    order = [(e["event"], e["step"], e["unit"]) for e in log]
    overlapped = [order[i] for i in range(1, len(order))
                  if order[i][0] == "start" and order[i - 1][0] == "start"]  # fmt: skip
    assert overlapped, f"no units ran side by side: {order}"


def test_a_worker_killed_mid_run_is_replaced_and_its_item_redone(cluster, reference, tmp_path):
    """The reduced default experiment on 2 workers, one of them killed mid-run: Ray
    replaces it, and the table is the local executor's, from the same work items, each
    taken once (a redone item is Ray's retry, not a second item)."""
    out = tmp_path / "ray"
    before = executors.computed["items"]
    killed: list[int] = []
    replacements: list[int] = []

    def kill_one_worker() -> None:
        # mid-run: both actors are up and taking items (the driver computes the first
        # items itself while the actors start, so stored items alone prove nothing)
        _wait_for(lambda: len(_worker_pids()) >= 2)
        started = _stored_items(out)
        _wait_for(lambda: _stored_items(out) >= started + 1)
        before = set(_worker_pids())
        pid = min(before)
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        _wait_for(lambda: set(_worker_pids()) - before, timeout=60)  # Ray starts a new actor
        replacements.extend(set(_worker_pids()) - before)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    table = _run(reduced_default(), out, executor=ExecutorConfig("ray", workers=2))
    killer.join(timeout=5)
    assert killed and replacements, (killed, replacements)
    assert table == reference[0]
    assert executors.computed["items"] - before == reference[1]


def test_a_killed_driver_resumes_and_computes_only_what_is_missing(cluster, reference, tmp_path, capfd):
    """A driver killed mid-run resumes and computes only the missing items; the resumed
    run asks for more workers than the cluster hosts, so it warns and runs with 2."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(reduced_default()))
    out = tmp_path / "run"
    driver = subprocess.Popen(
        [sys.executable, "-m", "interp.cli", "run", str(spec), "--out", str(out), "--no-progress",
         "--executor", "ray", "--address", cluster, "--workers", "2"],
        env=_env(), stdout=subprocess.DEVNULL, stderr=(tmp_path / "stderr").open("w"),
    )  # fmt: skip
    try:
        _wait_for(lambda: _stored_items(out) >= 3 or driver.poll() is not None, timeout=150)
        assert driver.poll() is None, (tmp_path / "stderr").read_text()[-2000:]
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    units = sorted(p.name for p in (out / "units").glob("*.json"))
    stored = _stored_items(out)
    assert not (out / "results.csv").exists()
    # what the killed driver finished: whole units, and items of unfinished units
    total, before = reference[1], executors.computed["items"]
    capfd.readouterr()
    assert _run(str(spec), out, executor=ExecutorConfig("ray", workers=5)) == reference[0]
    warning = [line for line in capfd.readouterr().err.splitlines() if "warning" in line]
    assert warning == [
        "tada: warning: asked for 5 Ray workers; the cluster can host 2 (each "
        "needs {'num_cpus': 1}), running with 2."
    ]
    redone = executors.computed["items"] - before
    assert stored >= 3 and redone <= total - stored
    if not units:  # no unit had finished: exactly the items not stored ran again
        assert redone == total - stored
    assert not (out / "units" / "work").exists()  # removed once the run is finished


def test_zero_workers_is_refused(tmp_path):
    with pytest.raises(ExecutorError, match="--workers must be at least 1, got 0"):
        run(
            ROOT / "experiments" / "tiny.yaml",
            out=tmp_path / "run",
            progress=False,
            executor=ExecutorConfig("ray", workers=0),
        )
    assert not (tmp_path / "run").exists()


def test_an_unreachable_address_fails_fast_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "interp.cli", "run", str(ROOT / "experiments" / "tiny.yaml"),
         "--out", str(out), "--executor", "ray", "--address", "127.0.0.1:9"],
        env=_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert time.monotonic() - start < 30
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()
    assert len(message) == 1 and "127.0.0.1:9" in message[0], result.stderr
    assert not out.exists()


def test_without_ray_the_error_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ExecutorError, match=r'pip install -e "\.\[ray\]"'):
        run(ROOT / "experiments" / "tiny.yaml", out=tmp_path / "run", progress=False, executor="ray")
    assert not (tmp_path / "run").exists()
