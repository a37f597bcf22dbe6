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


def test_tiny_spec_gives_the_same_table_on_two_ray_workers(cluster, tmp_path):
    spec = ROOT / "experiments" / "tiny.yaml"
    local = _run(spec, tmp_path / "local")
    remote = _run(spec, tmp_path / "ray", executor=ExecutorConfig("ray", workers=2))
    assert remote == local


def test_reduced_default_gives_the_same_table_on_two_ray_workers(cluster, reference, tmp_path):
    table, items = reference
    before = executors.computed["items"]
    assert _run(reduced_default(), tmp_path / "ray", executor=ExecutorConfig("ray", workers=2)) == table
    assert executors.computed["items"] - before == items  # the same work items, each once


def test_a_worker_killed_mid_run_is_replaced_and_its_item_redone(cluster, reference, tmp_path):
    out = tmp_path / "ray"
    killed: list[int] = []
    replacements: list[int] = []

    def kill_one_worker() -> None:
        _wait_for(lambda: _stored_items(out) >= 2)  # mid-run: items finished, more to come
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


def test_a_killed_driver_resumes_and_computes_only_what_is_missing(cluster, reference, tmp_path):
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
    assert _run(str(spec), out, executor=ExecutorConfig("ray", workers=2)) == reference[0]
    redone = executors.computed["items"] - before
    assert stored >= 3 and redone <= total - stored
    if not units:  # no unit had finished: exactly the items not stored ran again
        assert redone == total - stored
    assert not list((out / "units" / "work").glob("*/*.json"))  # cleaned up per unit


def test_more_workers_than_the_cluster_hosts_warns_and_runs(cluster, tmp_path, capfd):
    _run(ROOT / "experiments" / "tiny.yaml", tmp_path / "run", executor=ExecutorConfig("ray", workers=5))
    warning = [line for line in capfd.readouterr().err.splitlines() if "warning" in line]
    assert warning == ["tada: warning: asked for 5 Ray workers; the cluster can host 2 (each "
                       "needs {'num_cpus': 1}), running with 2."]
    assert (tmp_path / "run" / "results.csv").is_file()


def test_zero_workers_is_refused(tmp_path):
    with pytest.raises(ExecutorError, match="--workers must be at least 1, got 0"):
        run(ROOT / "experiments" / "tiny.yaml", out=tmp_path / "run", progress=False,
            executor=ExecutorConfig("ray", workers=0))
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
