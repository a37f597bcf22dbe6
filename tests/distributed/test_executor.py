"""Executors without Ray: the work store, item order, units side by side, config errors."""

import threading
import time
from dataclasses import dataclass

import pytest

from interp.distributed import (
    ExecutorConfig,
    ExecutorError,
    ModelSettings,
    WorkStore,
    make_executor,
    run_tasks,
)
from interp.distributed import executor as executors
from interp.distributed.concurrency import run_side_by_side, waiting
from interp.distributed.executor import recording

CALLS: list[int] = []


@dataclass(frozen=True)
class Square:
    """A keyed work item that records that it ran."""

    x: int

    def key(self) -> str:
        return f"square-{self.x}"

    def __call__(self, adapter: object) -> int:
        CALLS.append(self.x)
        return self.x * self.x


def test_stored_items_are_reused_and_only_missing_ones_run(tmp_path):
    store = WorkStore(tmp_path / "work")
    CALLS.clear()
    with recording(store):
        assert run_tasks(None, [Square(i) for i in range(4)]) == [0, 1, 4, 9]
    assert CALLS == [0, 1, 2, 3] and store.count() == 4
    store.path("square-2").unlink()  # as if the driver died before this item finished
    CALLS.clear()
    before = executors.computed["items"]
    seen = []
    with recording(store):
        assert run_tasks(None, [Square(i) for i in range(4)], lambda i, r: seen.append(i)) == [0, 1, 4, 9]
    assert CALLS == [2] and executors.computed["items"] - before == 1
    assert sorted(seen) == [0, 1, 2, 3]
    store.remove()
    assert not (tmp_path / "work").exists()


def test_items_with_the_same_key_run_once_per_call_and_store(tmp_path):
    """Within one call, an item whose key repeats runs once; under another salt (another
    model) nothing stored is taken."""
    CALLS.clear()
    with recording(WorkStore(tmp_path / "work", salt="a")):
        seen = []
        assert run_tasks(None, [Square(2), Square(3), Square(2)], lambda i, r: seen.append(i)) == [4, 9, 4]
        assert CALLS == [2, 3] and sorted(seen) == [0, 1, 2]
        assert run_tasks(None, [Square(3)]) == [9] and CALLS == [2, 3]
    with recording(WorkStore(tmp_path / "work", salt="b")):
        assert run_tasks(None, [Square(3)]) == [9] and CALLS == [2, 3, 3]
    assert WorkStore(tmp_path, "a").path("k") != WorkStore(tmp_path, "b").path("k")


def test_without_a_store_nothing_is_written(tmp_path):
    CALLS.clear()
    assert run_tasks(None, [Square(3), Square(1)]) == [9, 1]
    assert CALLS == [3, 1] and not list(tmp_path.iterdir())


def test_units_side_by_side_overlap_only_while_waiting():
    inside, overlaps = [0], [0]
    lock = threading.Lock()

    def unit(i: int):
        def call() -> int:
            with lock:
                inside[0] += 1
                overlaps[0] = max(overlaps[0], inside[0])
            time.sleep(0.02)  # driver code: never two at once
            with lock:
                inside[0] -= 1
            with waiting():
                time.sleep(0.1)  # waiting for work items: overlaps
            return i

        return call

    start = time.perf_counter()
    assert run_side_by_side([unit(i) for i in range(4)], threads=4) == [0, 1, 2, 3]
    assert overlaps[0] == 1
    assert time.perf_counter() - start < 0.4 * 0.9 + 0.1  # the waits overlapped


def test_the_first_failing_unit_is_raised_after_the_others_end():
    ended = []

    def ok() -> str:
        with waiting():
            time.sleep(0.05)
        ended.append("ok")
        return "ok"

    def bad() -> str:
        raise ValueError("unit 2 failed")

    with pytest.raises(ValueError, match="unit 2 failed"):
        run_side_by_side([ok, bad, ok], threads=3)
    assert ended == ["ok", "ok"]


def test_address_or_workers_without_ray_are_refused():
    model = ModelSettings("tiny-stable-audio")
    with pytest.raises(ExecutorError, match="apply to --executor ray only"):
        make_executor(ExecutorConfig("local", workers=2), model)


def test_a_malformed_address_is_refused_before_ray_starts():
    from interp.distributed.ray_pool import _check_reachable

    with pytest.raises(ExecutorError, match="'nohost' is not 'auto'"):
        _check_reachable("nohost")
