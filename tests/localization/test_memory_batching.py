"""batch_size: auto and out-of-memory halving on a real tiny Stable Audio model.

The out-of-memory errors are real ``torch.OutOfMemoryError`` exceptions raised by a plain
forward pre-hook on the real denoiser whenever it sees more rows than a limit: the model
and the tracing are untouched, only allocation failure is planted."""

from contextlib import contextmanager
from dataclasses import replace

import pytest
import torch

from interp.batching import forget_halvings, on_batch_note, resolve_batch_size
from interp.distributed.tasks import GenerationTask
from interp.edits import Read
from interp.memory import free_memory_limit
from interp.metrics import Metric, get_metric
from interp.patching import single_site_variants, sweep
from interp.runner import run


def heads(adapter):
    return [s for s in adapter.catalog.where(attention="cross") if s.component == "head"]


@contextmanager
def memory_for(adapter, samples: int, guided: bool = True):
    """The denoiser raises torch.OutOfMemoryError above ``samples`` samples per call."""
    limit = samples * (2 if guided else 1)

    def refuse(module, args):
        rows = args[0].shape[0]
        if rows > limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory (planted): {rows} rows > {limit}")

    handle = adapter.denoiser.register_forward_pre_hook(refuse)
    forget_halvings()
    try:
        yield
    finally:
        handle.remove()
        forget_halvings()


def _sweep(model, base, pairs, variants, batch_size):
    metric: Metric = get_metric("latent_distance")  # pyright: ignore[reportAssignmentType]
    return sweep(model, base, pairs[:1], [0], variants, metric, batch_size=batch_size, progress=False)


def test_a_halved_sweep_equals_the_sweep_run_at_the_smaller_batch_bit_for_bit(planted_model, base, pairs):
    variants = single_site_variants(heads(planted_model)[:4])
    heard = []
    # 4 variants + control = 5 samples do not fit; 3 do: the chunk runs as 2 + 2 (+ controls)
    with memory_for(planted_model, samples=3), on_batch_note(heard.append):
        with pytest.warns(UserWarning, match="out of memory with a batch of 4 variants; retrying as 2 \\+ 2"):
            halved = _sweep(planted_model, base, pairs, variants, 4)
    assert heard == ["out of memory with a batch of 4 variants; retrying as 2 + 2."]
    smaller = _sweep(planted_model, base, pairs, variants, 2)
    unlimited = _sweep(planted_model, base, pairs, variants, 4)
    assert halved.rows == smaller.rows  # the same batches: the same bits
    for a, b in zip(halved.rows, unlimited.rows, strict=True):  # other batch shapes: rounding only
        assert a["variant"] == b["variant"]
        assert a["value"] == pytest.approx(b["value"], rel=1e-5, abs=1e-6)


def test_auto_batch_equals_the_same_batch_given_as_a_number(planted_model, base, pairs):
    variants = single_site_variants(heads(planted_model)[:3])
    chosen = resolve_batch_size("auto", planted_model, base, len(variants), fixed_rows=1)
    assert chosen == 3  # a tiny model: everything fits, capped by the work
    auto = _sweep(planted_model, base, pairs, variants, "auto")
    assert auto.rows == _sweep(planted_model, base, pairs, variants, chosen).rows
    single = _sweep(planted_model, base, pairs, variants, 1)
    for a, b in zip(auto.rows, single.rows, strict=True):
        assert a["value"] == pytest.approx(b["value"], rel=1e-5, abs=1e-6)


def test_auto_takes_fewer_rows_when_less_memory_is_free(planted_model, base):
    from interp.batching import MEMORY_FRACTION, probe_row_bytes

    row = probe_row_bytes(planted_model, base)
    assert row > 0
    assert resolve_batch_size("auto", planted_model, base, 100, fixed_rows=1) == 8  # the CPU ceiling
    with free_memory_limit(int(3.5 * row / MEMORY_FRACTION)):  # 3 rows, one the control
        assert resolve_batch_size("auto", planted_model, base, 10, fixed_rows=1) == 2
    with free_memory_limit(int(6.5 * row / MEMORY_FRACTION)):  # 5 variants fit: a power of two, 4
        assert resolve_batch_size("auto", planted_model, base, 10, fixed_rows=1) == 4
    with free_memory_limit(row // 10):
        assert resolve_batch_size("auto", planted_model, base, 10, fixed_rows=1) == 1


def test_the_probe_counts_reads_kept_over_every_step(planted_model, base):
    from interp.batching import probe_row_bytes

    read = Read("cross.0.heads", branch="both")
    long = replace(base, num_steps=40)
    one_step = run(planted_model, replace(base, prompts=base.prompts[:1], seeds=base.seeds[:1], num_steps=1),
                   reads=[read]).reads["cross.0.heads"]  # fmt: skip
    per_step = one_step.numel() * one_step.element_size()
    assert probe_row_bytes(planted_model, long, [read]) >= 39 * per_step


def test_a_generation_that_runs_out_of_memory_runs_in_halves_with_reads_in_place(planted_model, base):
    request = replace(base, prompts=("a", "b", "c", "d"), seeds=(0, 1, 2, 3))
    reads = (Read("cross.1.heads", branch="both"),)
    with memory_for(planted_model, samples=2), pytest.warns(UserWarning, match="batch of 4 samples"):
        joined = GenerationTask(request, reads=reads)(planted_model)
    first = run(planted_model, replace(request, prompts=("a", "b"), seeds=(0, 1)), reads=list(reads))
    second = run(planted_model, replace(request, prompts=("c", "d"), seeds=(2, 3)), reads=list(reads))
    assert torch.equal(joined.output.latents, torch.cat([first.output.latents, second.output.latents]))
    audio = [joined.output.audio, first.output.audio, second.output.audio]
    assert audio[0] is not None and audio[1] is not None and audio[2] is not None
    assert torch.equal(audio[0], torch.cat([audio[1], audio[2]]))
    a, b = first.reads["cross.1.heads"], second.reads["cross.1.heads"]
    # rows are branch-major: uncond a b c d, then cond a b c d
    expected = torch.cat([a[:, :2], b[:, :2], a[:, 2:], b[:, 2:]], dim=1)
    assert torch.equal(joined.reads["cross.1.heads"], expected)
