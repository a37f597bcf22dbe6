"""Free memory, peak measurement and out-of-memory detection (interp.memory), and the
batch arithmetic of interp.batching, against hand-computed values."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from interp.batching import MEMORY_FRACTION, OutOfMemory, check_batch_size, fitting_batch, run_halving
from interp.errors import TadaError
from interp.memory import PeakMeter, available_bytes, is_out_of_memory, page_in, process_peak_bytes


def test_fitting_batch_takes_the_largest_batch_under_the_memory_fraction():
    free = 10_000
    # 0.7 * 10_000 = 7000 bytes; rows of 1000 bytes: 7 rows, one of them the control row
    assert MEMORY_FRACTION == 0.7
    assert fitting_batch(1000, free, cap=100, fixed_rows=1) == 6
    assert fitting_batch(1000, free, cap=4, fixed_rows=1) == 4  # capped by the work
    assert fitting_batch(50_000, free, cap=8) == 1  # never below one
    assert fitting_batch(0, free, cap=3) == 3


@pytest.mark.parametrize("bad", [0, -1, 2.5, "big", True, None])
def test_a_bad_batch_size_is_one_clear_error(bad):
    with pytest.raises(TadaError, match="'auto'.*integer >= 1"):
        check_batch_size(bad)


def test_auto_and_integers_pass():
    assert check_batch_size("auto") == "auto"
    assert check_batch_size(3) == 3


def test_available_memory_is_positive_and_below_the_machine_total():
    total = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0]) * 1024
    assert 0 < available_bytes("cpu") <= total


def test_the_peak_meter_sees_a_tensor_allocated_and_freed_inside_the_block():
    size = 200 * 2**20
    with PeakMeter("cpu") as meter:
        x = torch.ones(size // 4)  # touched, so resident
        del x
    if not meter.exact:
        pytest.skip("/proc/self/clear_refs cannot be written here")
    assert 0.9 * size < meter.peak_bytes < 1.5 * size
    with PeakMeter("cpu") as small:
        y = torch.ones(1000)
        del y
    assert small.peak_bytes < 0.1 * size  # the reset forgot the earlier peak
    assert process_peak_bytes() >= size  # ... but the process's own peak keeps it


def _mapped_weights(path) -> torch.nn.Module:
    module = torch.nn.Module()
    module.register_buffer("weight", load_file(path)["weight"])  # memory-mapped, not yet read
    return module


def test_memory_mapped_weights_paged_in_first_are_not_a_blocks_growth(tmp_path):
    size = 128 * 2**20
    path = tmp_path / "weights.safetensors"
    save_file({"weight": torch.ones(size // 4)}, path)
    cold = _mapped_weights(path)
    with PeakMeter("cpu") as meter:
        assert cold.weight.sum().item() == size // 4
    if not meter.exact:
        pytest.skip("this kernel does not let a process reset its peak resident set")
    assert meter.peak_bytes > 0.8 * size  # the first read paged the whole file in
    del cold

    warm = _mapped_weights(path)
    assert page_in([warm, warm]) == size  # each storage once
    with PeakMeter("cpu") as meter:
        assert warm.weight.sum().item() == size // 4
    assert meter.peak_bytes < 0.1 * size


def test_out_of_memory_errors_are_recognized_also_when_wrapped():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    cpu = RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
    assert is_out_of_memory(cpu)
    try:
        try:
            raise cpu
        except RuntimeError as inner:
            raise ValueError("the traced model failed") from inner
    except ValueError as outer:
        assert is_out_of_memory(outer)
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


def test_halving_splits_until_chunks_fit_and_keeps_the_order():
    calls = []

    def run_chunk(items):
        calls.append(tuple(items))
        if len(items) > 2:
            raise torch.OutOfMemoryError("planted: more than 2 items")
        return [i * 10 for i in items]

    heard = []
    from interp.batching import forget_halvings, on_batch_note

    forget_halvings()
    with on_batch_note(heard.append), pytest.warns(UserWarning, match="out of memory with a batch of 5"):
        parts = run_halving(list(range(5)), run_chunk, kind="test-order", what="items")
    assert [x for part in parts for x in part] == [0, 10, 20, 30, 40]
    assert calls[0] == (0, 1, 2, 3, 4) and calls[1] == (0, 1, 2)  # 5 -> 3 + 2 -> (2 + 1) + 2
    assert heard[0] == "out of memory with a batch of 5 items; retrying as 3 + 2."
    # the next chunk of the same kind starts at the size that fitted, without a failed try
    calls.clear()
    run_halving(list(range(4)), run_chunk, kind="test-order")
    assert all(len(c) <= 3 for c in calls)
    forget_halvings()


def test_halving_at_one_item_is_a_clear_error_and_other_errors_pass_through():
    def always(items):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")

    with pytest.raises(OutOfMemory, match="batch of one .*OutOfMemoryError: CUDA out of memory"):
        with pytest.warns(UserWarning):
            run_halving([1, 2], always, kind="test-one")

    def broken(items):
        raise ValueError("not a memory problem")

    with pytest.raises(ValueError, match="not a memory problem"):
        run_halving([1, 2], broken, kind="test-other")
