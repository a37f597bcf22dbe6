"""Time-resolved patching against planted ground truth and plain torch hooks."""

from dataclasses import replace

import pytest
import torch

from interp.errors import SelectionError, TadaError
from interp.metrics import get_metric
from interp.patching import Variant, single_site_variants, sweep
from interp.registry import load_model
from interp.statistics import Effect
from interp.time_patching import TimeMap, time_resolved_patching
from interp.windows import Window, WindowPlan
from tests.helpers.hooks import edited_input, recorded
from tests.localization.conftest import PLANTED

HEAD = "cross.1.head.3"  # planted: with cross.0.head.1, the only path of the prompt
QUIET = "cross.0.head.0"  # output columns zeroed: carries nothing


def test_a_window_of_zero_steps_is_the_corrupted_run_bit_for_bit(planted_model, base, pairs):
    plan = WindowPlan(4, fixed=["2:2", "1:3"], boundaries=[0, 2])
    result = time_resolved_patching(
        planted_model, base, pairs[:1], [0, 1], sorted(PLANTED), get_metric("latent_distance"), windows=plan
    )
    for window in ("0:0", "2:2"):
        rows = [r for r in result.rows if r["window"] == window]
        assert len(rows) == 2 * len(PLANTED)  # two seeds
        for row in rows:
            assert row["value"] == row["corrupted"]  # the same float, bit for bit
        for site in PLANTED:
            assert result.effect(window, site).mean == 0.0
    # the non-empty windows of the same batches do move the run
    assert all(abs(result.effect("1:3", site).mean) > 0.01 for site in PLANTED)


def test_a_window_of_every_step_equals_the_full_patch_bit_for_bit(planted_model, base, pairs):
    metric = get_metric("latent_distance")
    sites = sorted(PLANTED)
    timed = time_resolved_patching(
        planted_model, base, pairs[:1], [0, 1], sites, metric, windows=WindowPlan(4, ["0:2"]), batch_size=1
    )
    full = sweep(planted_model, base, pairs[:1], [0, 1], single_site_variants(sites), metric, batch_size=1)
    full_rows = {(r["seed"], r["variant"]): r for r in full.rows}
    timed_rows = [r for r in timed.rows if r["window"] == "0:4"]
    assert len(timed_rows) == len(full_rows) == 2 * len(sites)
    for row in timed_rows:
        expected = full_rows[(row["seed"], row["site"])]
        assert (row["value"], row["clean"], row["corrupted"]) == (
            expected["value"],
            expected["clean"],
            expected["corrupted"],
        )


def _hook_effect(model, base, pair, seed: int, site: str, steps: set[int]) -> float:
    """Normalized latent-distance effect of patching ``site`` at ``steps``, by plain hooks."""
    from interp.sites import Site

    parsed = Site.parse(site)
    module = model.catalog.module("cross", parsed.layer)
    proj = model.denoiser.get_submodule(module.out_proj)
    columns = slice(parsed.head * module.d_head, (parsed.head + 1) * module.d_head)

    def request(prompt: str):
        return replace(base, prompts=(prompt,), seeds=(seed,))

    with recorded(proj, "input") as clean_heads:
        clean = model.generate(request(pair.clean)).latents
    corrupted = model.generate(request(pair.corrupted)).latents

    def patch(x: torch.Tensor, call: int) -> torch.Tensor:
        if call in steps:  # one call per step; rows [uncond, cond]: patch the cond row
            x[1:, :, columns] = clean_heads[call][1:, :, columns]
        return x

    with edited_input(proj, patch):
        patched = model.generate(request(pair.corrupted)).latents
    return 1 - float((patched - clean).norm() / (corrupted - clean).norm())


@pytest.mark.parametrize("window", ["1:3", "2:4", "0:1"])
def test_a_planted_heads_window_effect_equals_a_plain_hook_patch(planted_model, base, pairs, window):
    plan = WindowPlan(4, fixed=[window], boundaries=[])
    result = time_resolved_patching(
        planted_model, base, pairs[:1], [0], [HEAD, QUIET], get_metric("latent_distance"), windows=plan
    )
    w = Window.parse(window)
    expected = _hook_effect(planted_model, base, pairs[0], 0, HEAD, set(w.steps))
    assert abs(expected) > 1e-3, "the planted head must matter in this window"
    # the hooks ran batches of another shape: equal up to float rounding
    assert result.effect(window, HEAD).mean == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert abs(result.effect(window, QUIET).mean) < 1e-4
    full = _hook_effect(planted_model, base, pairs[0], 0, HEAD, {0, 1, 2, 3})
    assert result.effect("0:4", HEAD).mean == pytest.approx(full, rel=1e-4, abs=1e-5)
    assert abs(expected - full) > 1e-3, "a window is not the full patch"


def test_late_windows_resume_from_the_corrupted_run_and_agree():
    model = load_model("synthmusic-dit")
    from interp.adapter import GenerationRequest
    from interp.prompts import PromptPair

    base = GenerationRequest(("-",), (0,), num_steps=6, guidance_scale=4.0, decode=False)
    pairs = [PromptPair("a slow piano piece", "a fast piano piece", "tempo", "slow", "fast")]
    plan = WindowPlan(6, fixed=["2:4"], boundaries=[3])  # 2:4, 0:0, 0:3, 0:6, 3:6
    sites = [Variant.of(["cross.0.head.2", "cross.0.head.3"], label="heads")]
    calls: list[int] = []
    hook = model.denoiser.register_forward_hook(lambda m, a, o: calls.append(1))
    try:
        common = dict(windows=plan, batch_size=8, progress=False)
        reused = time_resolved_patching(
            model, base, pairs, [0], sites, get_metric("latent_distance"), **common
        )
        n_reused = len(calls)
        calls.clear()
        fresh = time_resolved_patching(
            model, base, pairs, [0], sites, get_metric("latent_distance"), reuse_latents=False, **common
        )
        n_fresh = len(calls)
    finally:
        hook.remove()
    # baseline (6 steps), then batches starting at 0 (0:3, 0:6), 2 (2:4) and 3 (3:6, 0:0)
    assert n_reused == 6 + 6 + 4 + 3
    assert n_fresh == 6 + 6  # every window in one batch from the noise
    for window in ("2:4", "0:3", "0:6", "3:6", "0:0"):
        assert reused.effect(window, "heads").mean == pytest.approx(
            fresh.effect(window, "heads").mean, rel=1e-4, abs=1e-5
        )
    assert reused.effect("0:0", "heads").mean == 0.0
    assert abs(reused.effect("3:6", "heads").mean) > 1e-3, "late windows must matter"


def _map(up_to: dict[int, float], late: dict[int, float], n: int = 10) -> TimeMap:
    plan = WindowPlan(n, boundaries=up_to)
    effects = {(Window(0, k).label, "s"): Effect(v, v, v, 1) for k, v in up_to.items()}
    effects.update({(Window(k, n).label, "s"): Effect(v, v, v, 1) for k, v in late.items()})
    return TimeMap("tempo", plan, ["s"], effects)


def test_fixed_by_is_the_first_boundary_from_which_the_share_stays_reached():
    late = {0: 0.8, 2: 0.5, 4: 0.3, 6: 0.04, 8: 0.0}
    result = _map({0: 0.0, 2: 0.3, 4: 0.75, 6: 0.6, 8: 0.78, 10: 0.8}, late)
    decision = result.decided("s", fraction=0.9)
    # U(4)/F = 0.94 >= 0.9 but U(6)/F = 0.75 falls back: fixed by 8, not 4
    assert decision.step == 8
    assert decision.reached == pytest.approx(0.78 / 0.8)
    assert decision.late == pytest.approx(0.0)
    assert result.decided("s", fraction=0.7).step == 4
    assert result.decided("s", fraction=1.0).step == 10
    line = decision.line("tempo")
    assert line.startswith("tempo: 90% of the effect is fixed by step 8 of 10")
    # R(k)/F = 1, 0.625, 0.375, 0.05, 0: the steps from 2 on still set 62% alone
    assert decision.settable_from == 0
    assert result.decided("s", fraction=0.6).settable_from == 2
    assert "steps 2-9 alone still set 62% of it" in result.decided("s", fraction=0.6).line("tempo")
    assert result.decided("s", fraction=0.3).settable_from == 4


def test_fixed_by_needs_an_effect_to_fix():
    result = _map({0: 0.0, 5: 0.01, 10: 0.02}, {0: 0.02, 5: 0.0})
    decision = result.decided("s")
    assert decision.step is None
    assert "no effect to fix" in decision.line("drums")


def test_bad_windows_and_sites_are_refused_with_clear_errors(planted_model, base, pairs):
    with pytest.raises(SelectionError, match="ends after the last step"):
        WindowPlan(4, fixed=["2:6"])
    with pytest.raises(SelectionError, match="0 <= start <= stop"):
        Window(3, 1)
    with pytest.raises(SelectionError, match="Cannot read the window"):
        Window.parse("3")
    with pytest.raises(SelectionError, match="boundary k"):
        WindowPlan(4, boundaries=[5])
    metric = get_metric("latent_distance")
    with pytest.raises(TadaError, match="No sites to patch over time"):
        time_resolved_patching(planted_model, base, pairs[:1], [0], [], metric)
    with pytest.raises(SelectionError, match="num_steps=4"):
        time_resolved_patching(planted_model, base, pairs[:1], [0], [HEAD], metric, windows=WindowPlan(25))
    with pytest.raises(TadaError, match="one concept"):
        time_resolved_patching(planted_model, base, pairs, [0], [HEAD], metric)


def test_a_plan_of_more_windows_than_max_windows_is_refused_with_the_count():
    from interp.windows import MAX_WINDOWS

    assert len(WindowPlan.even(100, 1).windows()) == 298  # the paper's 100 steps, step by step: taken
    assert len(WindowPlan.even(1000, 3).windows()) == MAX_WINDOWS  # exactly at the limit: taken
    with pytest.raises(SelectionError, match=r"1498 windows over 1000 steps .* window: 10 for about 300"):
        WindowPlan.even(1000, 2)
    with pytest.raises(
        SelectionError, match=f"29998 windows over 10000 steps is more than the {MAX_WINDOWS}"
    ):
        WindowPlan.even(10000, 1)
