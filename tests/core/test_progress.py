"""Progress events: order, counts against the denoiser's real calls, ETA, the display."""

import io
import pickle
import time
from dataclasses import replace

import pytest

from interp.metrics import get_metric
from interp.patching import Variant, sweep
from interp.progress import Progress, ProgressEvent, expect, reporting, shown
from interp.prompts import PromptPair


def _check_order(events: list[ProgressEvent], steps: int) -> None:
    """Batches open and close in turn; steps count 1..steps inside each batch."""
    open_batch = None
    for event in events:
        if event.kind == "batch_start":
            assert open_batch is None, "a batch started inside another"
            open_batch, expected_step = event, 1
            assert event.step == 0 and event.steps == steps
        elif event.kind == "step":
            assert open_batch is not None, "a denoising step outside any batch"
            assert event.step == expected_step and event.batch_size == open_batch.batch_size
            expected_step += 1
        elif event.kind == "batch_end":
            assert open_batch is not None and expected_step == steps + 1, "batch ended early"
            assert event.generations_done == open_batch.generations_done + open_batch.batch_size
            open_batch = None
    assert open_batch is None


@pytest.mark.parametrize("model", ["tiny-stable-audio", "synthmusic-dit"])
def test_sweep_events_match_denoiser_calls(model: str, tiny_sa, sa_request) -> None:
    """Step events equal the denoiser's forward calls counted by a plain torch hook, the
    announced total equals the samples generated, and events arrive in order."""
    if model == "tiny-stable-audio":
        adapter, base = tiny_sa, sa_request
    else:
        from interp.registry import load_model

        adapter = load_model("synthmusic-dit")
        base = replace(adapter.default_request(["x"], [0]), num_steps=3)
    pairs = [PromptPair("a sad violin song", "a happy trumpet song", "violin")]
    variants = [Variant.of([f"cross.0.head.{h}"], f"h{h}") for h in range(3)]
    calls: list[int] = []
    handle = adapter.denoiser.register_forward_hook(lambda m, a, o: calls.append(1))
    events: list[ProgressEvent] = []
    try:
        with reporting(Progress(events.append)):
            sweep(adapter, base, pairs, [0, 1], variants, get_metric("latent_distance"), batch_size=2,
                  reuse_latents=False)  # fmt: skip
    finally:
        handle.remove()
    steps = [e for e in events if e.kind == "step"]
    assert len(steps) == len(calls) > 0
    assert [e.denoising_steps for e in steps] == list(range(1, len(steps) + 1))
    _check_order(events, base.num_steps)
    # per (pair, seed): a batch of clean + corrupted, then chunks of 2 and 1 variants (+1 control)
    assert events[-1].generations_done == events[-1].generations_total == 2 * (2 + 3 + 2)
    assert [e.batch_size for e in events if e.kind == "batch_start"] == [2, 3, 2] * 2
    assert steps[-1].eta_s == pytest.approx(0.0, abs=1e-9)
    assert all(e.eta_s is not None and e.eta_s >= 0 for e in steps)


def test_eta_from_measured_step_time() -> None:
    """1 s per step at batch 2 is 0.5 s per sample-step; the ETA counts the rest of the
    batch in flight and the announced samples after it."""
    now = [0.0]
    progress = Progress(clock=lambda: now[0])
    progress.expect(10)
    progress.batch_start(2, steps=4)
    assert progress.eta_s() is None  # nothing measured yet
    now[0] += 1.0
    progress.denoising_step()
    # in flight: 2 samples x 3 steps; after: 8 samples x 4 steps; at 0.5 s each
    assert progress.eta_s() == pytest.approx(0.5 * (2 * 3 + 8 * 4))
    for _ in range(3):
        now[0] += 1.0
        progress.denoising_step()
    progress.batch_end()
    assert progress.generations_done == 2 and progress.eta_s() == pytest.approx(0.5 * 8 * 4)


def test_events_are_plain_picklable_values() -> None:
    events: list[ProgressEvent] = []
    with reporting(Progress(events.append)):
        expect(3)
    assert pickle.loads(pickle.dumps(events[0])) == events[0]
    assert events[0].generations_total == 3


def _worker_item(clock: list[float]) -> list[ProgressEvent]:
    """What a Ray worker buffers for one item: a total, then a batch of 2 x 3 steps that
    take 1, 2 and 3 s."""
    events: list[ProgressEvent] = []
    progress = Progress(events.append, clock=lambda: clock[0])
    progress.expect(2)
    progress.batch_start(2, steps=3)
    for seconds in (1.0, 2.0, 3.0):
        clock[0] += seconds
        progress.denoising_step()
    progress.batch_end()
    return events


def test_replayed_events_count_like_events_made_here() -> None:
    """Two items replayed into a unit's reporter give the events and counts that the
    same work reported directly gives, with the step times measured on the worker (the
    driver's clock does not move)."""
    direct: list[ProgressEvent] = []
    now = [0.0]
    here = Progress(direct.append, clock=lambda: now[0])
    here.start_unit("u")
    for _ in range(2):
        here.expect(2)
        here.batch_start(2, steps=3)
        for seconds in (1.0, 2.0, 3.0):
            now[0] += seconds
            here.denoising_step()
        here.batch_end()
    replayed: list[ProgressEvent] = []
    driver = Progress(replayed.append, clock=lambda: 100.0)
    driver.start_unit("u")
    driver.replay(_worker_item([50.0]), worker="host:1")
    driver.replay(_worker_item([7.0]), worker="host:2")

    def counts(events: list[ProgressEvent]) -> list[tuple]:
        return [(e.kind, e.unit, e.generations_done, e.generations_total, e.batch_size, e.step,
                 e.steps, e.denoising_steps) for e in events]  # fmt: skip

    assert counts(replayed) == counts(direct) and len(replayed) == 1 + 2 * 6
    assert driver.seconds_per_sample_step() == here.seconds_per_sample_step() == pytest.approx(12 / 12)
    assert driver.workers == {"host:1", "host:2"} and here.workers == set()


def test_eta_of_replayed_items_uses_the_units_wall_time() -> None:
    """Two items of 6 sample-steps (6 s each on its worker) ran side by side on two
    workers and came back after 6 s of the driver's time: the ETA of one more such item
    counts 0.5 s per sample-step (the wall rate), not the 1 s a worker measured."""
    now = [0.0]
    unit = Progress(clock=lambda: now[0])
    unit.start_unit("u")
    unit.expect(2)  # the items announce 2 samples each
    now[0] = 6.0
    unit.replay(_worker_item([0.0]), worker="host:1")
    unit.replay(_worker_item([0.0]), worker="host:2")
    assert unit.seconds_per_sample_step() == pytest.approx(1.0)
    assert unit.eta_s() == pytest.approx(0.5 * 2 * 3)
    local = Progress(clock=lambda: now[0])  # the same counts made here: the measured rate
    local.expect(6)
    local.batch_start(2, steps=3)
    for _ in range(3):
        now[0] += 2.0
        local.denoising_step()
    local.batch_end()
    assert local.eta_s() == pytest.approx(1.0 * 4 * 3)


def test_each_thread_reports_to_its_own_reporter() -> None:
    """Units side by side in driver threads (each in its own context, as the engine runs
    them) count only their own steps; a thread without a context (a tracing backend's)
    reports to the process's innermost reporter."""
    import contextvars
    import threading

    from interp.progress import denoising_step, generation

    barrier = threading.Barrier(2)
    seen: dict[str, list[ProgressEvent]] = {"a": [], "b": []}

    def unit(name: str, steps: int) -> None:
        with reporting(Progress(seen[name].append)), generation(1, steps):
            barrier.wait()  # both reporters are active before anyone steps
            for _ in range(steps):
                denoising_step()
                time.sleep(0.001)
            barrier.wait()

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(unit, name, steps))
               for name, steps in (("a", 3), ("b", 5))]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [e.step for e in seen["a"] if e.kind == "step"] == [1, 2, 3]
    assert [e.step for e in seen["b"] if e.kind == "step"] == [1, 2, 3, 4, 5]
    outer: list[ProgressEvent] = []
    with reporting(Progress(outer.append)), generation(1, 1):
        backend = threading.Thread(target=denoising_step)  # no context of ours
        backend.start()
        backend.join()
    assert [e.kind for e in outer] == ["batch_start", "step", "batch_end"]


def test_shown_defers_to_an_active_reporter(capsys: pytest.CaptureFixture[str]) -> None:
    """Inside a reporter, library calls show nothing of their own; outside, a display."""
    events: list[ProgressEvent] = []
    with reporting(Progress(events.append)), shown(True, "inner"):
        expect(5)
    assert events[-1].generations_total == 5
    assert "inner" not in capsys.readouterr().err
    with shown(True, "outer"):
        expect(5)
    assert "outer" in capsys.readouterr().err


def test_display_moves_while_a_step_runs() -> None:
    """The line redraws on its timer with a growing elapsed time, with no new event (a
    full-size denoising step can take longer than 30 s)."""
    from interp.progress_display import ProgressDisplay

    stream = io.StringIO()
    display = ProgressDisplay("unit", refresh_s=0.05, file=stream)
    progress = Progress(display)
    progress.expect(4)
    progress.batch_start(2, steps=10)
    progress.denoising_step()
    before = stream.getvalue().count("\r")
    time.sleep(1.3)
    display.close()
    text = stream.getvalue()
    assert text.count("\r") >= before + 5
    assert "step 1/10" in text and "0:01 elapsed" in text


@pytest.mark.slow
def test_ace_step_reports_its_real_steps() -> None:
    """ACE-Step reports steps from its own pipeline callback (the other diffusers families
    share models/pipeline_call.py, covered above through Stable Audio): one step event per
    denoiser call counted by a plain torch hook, inside one batch of the request's size."""
    import warnings

    from interp.adapter import GenerationRequest
    from interp.edits import Read
    from interp.runner import run
    from models.ace_step import AceStepAdapter
    from models.tiny.ace_step import tiny_ace_step

    adapter = AceStepAdapter("tiny-ace-step", tiny_ace_step())
    request = GenerationRequest(prompts=("a sad violin song", "a happy trumpet"), seeds=(0, 1),
                                num_steps=3, guidance_scale=3.0, duration_s=2.0)  # fmt: skip
    site = adapter.catalog.where(attention="cross", component="heads")[0].name
    calls: list[int] = []
    handle = adapter.denoiser.register_forward_hook(lambda m, a, o: calls.append(1))
    events: list[ProgressEvent] = []
    try:
        with reporting(Progress(events.append)), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run(adapter, request, reads=[Read(site)])
    finally:
        handle.remove()
    assert len(calls) == 3
    assert [e.kind for e in events] == ["batch_start", "step", "step", "step", "batch_end"]
    assert events[-1].generations_done == 2 and events[-1].denoising_steps == 3
