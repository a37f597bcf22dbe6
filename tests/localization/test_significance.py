"""Per-head significance: the sign-flip test, BH q-values, the power estimate, and their
calibration on simulated data and on the planted tiny model with injected noise."""

import itertools
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy.stats import false_discovery_control

from interp.errors import TadaError
from interp.significance import (
    bh_qvalues,
    pairs_needed,
    sign_flip_pvalues,
    unit_differences,
)
from tests.localization.conftest import PLANTED


def _exact_pvalue(x: np.ndarray) -> float:
    """Brute force: share of all 2^n sign patterns with |mean| >= the observed |mean|."""
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=x.size)))
    return float(np.mean(np.abs(signs @ x) / x.size >= abs(x.mean()) - 1e-12))


def test_bh_qvalues_equal_scipy_false_discovery_control():
    rng = np.random.default_rng(3)
    for m in (1, 2, 7, 24, 300):
        p = np.concatenate([rng.uniform(size=m - m // 3), rng.uniform(0, 1e-3, size=m // 3)])
        p[: m // 4] = p[0]  # ties
        q = bh_qvalues({f"h{i}": float(v) for i, v in enumerate(p)})
        np.testing.assert_allclose(list(q.values()), false_discovery_control(p, method="bh"), rtol=1e-12)
    with pytest.raises(TadaError, match=r"\[0, 1\]"):
        bh_qvalues({"a": 1.5})


def test_sign_flip_pvalues_equal_exact_enumeration():
    rng = np.random.default_rng(0)
    heads = {f"h{i}": rng.normal(0.5 * (i % 3), 1.0, size=9) for i in range(6)}
    heads["zero"] = np.zeros(9)
    heads["ties"] = np.array([1.0, -1.0, 2.0, -2.0, 1.0, 1.0, 0.0, 3.0, -3.0])
    p = sign_flip_pvalues(heads)
    for name, x in heads.items():
        assert p[name] == pytest.approx(_exact_pvalue(x), abs=1e-12), name
    assert p["zero"] == 1.0
    # a perfectly consistent effect reaches the smallest possible p, 2 / 2^n
    assert sign_flip_pvalues({"a": np.full(9, 0.3)})["a"] == pytest.approx(2 / 2**9)


def test_min_effect_pvalues_equal_two_one_sided_enumerations():
    rng = np.random.default_rng(5)
    heads = {f"h{i}": rng.normal(0.3 * (i - 2), 0.4, size=8) for i in range(5)}
    d = 0.1
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=8)))
    p = sign_flip_pvalues(heads, min_effect=d)
    for name, x in heads.items():
        plus = np.mean(signs @ (x - d) / 8 >= (x - d).mean() - 1e-12)
        minus = np.mean(signs @ (x + d) / 8 <= (x + d).mean() + 1e-12)
        assert p[name] == pytest.approx(min(1.0, 2 * min(plus, minus)), abs=1e-12), name
    # a margin only makes heads harder to call: p never drops
    plain = sign_flip_pvalues(heads)
    assert all(p[k] >= plain[k] - 1e-12 for k in heads)
    assert sign_flip_pvalues(heads, min_effect=0.0) == plain
    with pytest.raises(TadaError, match="min_effect"):
        sign_flip_pvalues(heads, min_effect=-0.1)


def test_min_effect_test_holds_its_level_at_the_boundary():
    """Heads whose effect equals min_effect exactly are null: rejected at most alpha of the time."""
    rng = np.random.default_rng(9)
    reps, d = 400, 0.2
    hits = [
        sign_flip_pvalues({"h": d + 0.5 * rng.normal(size=12)}, min_effect=d)["h"] <= 0.05
        for _ in range(reps)
    ]
    assert np.mean(hits) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / reps)


def test_monte_carlo_pvalues_agree_with_exact_enumeration_and_are_deterministic():
    rng = np.random.default_rng(1)
    heads = {f"h{i}": rng.normal(0.25 * i, 1.0, size=18) for i in range(3)}  # 18 > EXACT_MAX_UNITS
    p = sign_flip_pvalues(heads, flips=20_000)
    for name, x in heads.items():
        exact = _exact_pvalue(x)
        assert abs(p[name] - exact) <= 4 * np.sqrt(exact * (1 - exact) / 20_000) + 1e-4, name
    assert sign_flip_pvalues(heads, flips=20_000) == p


def _rows(moved: np.ndarray, gap: float = 2.0, seeds: int = 1) -> list[dict]:
    """Sweep-like rows: moved[pair, head] on top of corrupted = 0, clean = gap."""
    return [
        {
            "variant": f"h{h}",
            "pair": i,
            "seed": s,
            "value": float(moved[i, h]),
            "clean": gap,
            "corrupted": 0.0,
        }
        for i in range(moved.shape[0])
        for s in range(seeds)
        for h in range(moved.shape[1])
    ]


def test_unit_differences_average_seeds_and_read_in_effect_units():
    moved = np.array([[1.0, 0.0], [0.5, 0.0], [1.5, 0.2]])
    diffs = unit_differences(_rows(moved, gap=2.0, seeds=3))
    np.testing.assert_allclose(diffs["h0"], moved[:, 0] / 2.0)  # three seeds, one unit per pair
    noising = unit_differences(_rows(moved, gap=2.0), removal=True)
    np.testing.assert_allclose(noising["h1"], (2.0 - moved[:, 1]) / 2.0)
    with pytest.raises(TadaError, match="gap"):
        unit_differences(_rows(moved, gap=0.0))
    broken = _rows(moved)
    broken[0]["value"] = float("nan")  # a NaN must not pass as "p = 0, significant"
    with pytest.raises(TadaError, match="non-finite"):
        unit_differences(broken)
    with pytest.raises(TadaError, match="same pairs"):
        unit_differences(_rows(moved)[:-1])


def _simulate(
    rng: np.random.Generator, n: int, m: int, effects: dict[int, float], sd: float, heavy: bool
) -> np.ndarray:
    noise = rng.standard_t(3, size=(n, m)) / np.sqrt(3) if heavy else rng.normal(size=(n, m))
    moved = sd * noise
    for head, effect in effects.items():
        moved[:, head] += effect
    return moved


def _found(moved: np.ndarray, flips: int = 2000) -> set[str]:
    """Heads with q <= 0.05 in a simulated run (the arrays head_significance builds from rows)."""
    q = bh_qvalues(sign_flip_pvalues({f"h{h}": moved[:, h] for h in range(moved.shape[1])}, flips=flips))
    return {k for k, v in q.items() if v <= 0.05}


@pytest.mark.parametrize(("n", "heavy"), [(12, False), (24, True)])
def test_false_discovery_rate_stays_at_or_below_alpha(n, heavy):
    """Over many simulated runs (20 null heads, 4 with effects), the mean false discovery
    proportion is at most 0.05 within three standard errors."""
    rng = np.random.default_rng(n)
    m, reps = 24, 300
    fdp = []
    for _ in range(reps):
        moved = _simulate(rng, n, m, {0: 0.6, 1: 0.4, 2: 0.3, 3: 0.2}, sd=0.5, heavy=heavy)
        found = _found(moved)
        false = len(found - {"h0", "h1", "h2", "h3"})
        fdp.append(false / max(1, len(found)))
    fdr = float(np.mean(fdp))
    assert fdr <= 0.05 + 3 * np.std(fdp) / np.sqrt(reps)


def test_false_discoveries_under_the_complete_null_are_rare():
    """No head has an effect: any discovery is false, so FDR = P(any discovery) <= alpha."""
    rng = np.random.default_rng(7)
    reps = 300
    any_found = [bool(_found(_simulate(rng, 12, 24, {}, 1.0, False))) for _ in range(reps)]
    rate = float(np.mean(any_found))
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / reps)


def test_power_reaches_ninety_percent_with_the_estimated_number_of_pairs():
    """A planted normalized effect of 0.25 with per-pair sd 0.5 among 24 heads: the run size
    pairs_needed() gives finds it in at least 90% of runs (within sampling error)."""
    effect, sd, m = 0.25, 0.5, 24
    n = pairs_needed(sd, effect, m, alpha=0.05, power=0.9)
    assert 70 <= n <= 90  # Bonferroni-level test: ((z_(1-0.05/48) + z_0.9) * 0.5 / 0.25)^2 = 76
    rng = np.random.default_rng(11)
    reps, found = 300, []
    for _ in range(reps):
        moved = _simulate(rng, n, m, {0: effect}, sd, heavy=False)
        found.append("h0" in _found(moved))
    power = float(np.mean(found))
    assert power >= 0.9 - 3 * np.sqrt(0.9 * 0.1 / reps)
    # and with a third of those pairs, it clearly falls short: the estimate is not vacuous
    short = ["h0" in _found(_simulate(rng, n // 3, m, {0: effect}, sd, False)) for _ in range(100)]
    assert np.mean(short) < 0.7


def test_pairs_needed_grows_with_heads_and_noise_and_refuses_nonsense():
    assert pairs_needed(0.5, 0.2, 1024) > pairs_needed(0.5, 0.2, 24)
    assert pairs_needed(1.0, 0.2, 24) > pairs_needed(0.5, 0.2, 24)
    # noiseless: only the sign-flip floor 2 / 2^n <= 0.05 / 24 remains
    assert pairs_needed(0.0, 0.2, 24) == 10
    with pytest.raises(TadaError, match="alpha"):
        pairs_needed(0.5, 0.2, 24, alpha=1.5)
    with pytest.raises(TadaError, match="effect"):
        pairs_needed(0.5, 0.0, 24)
    # against an interval null only the excess over min_effect counts
    assert pairs_needed(0.5, 0.3, 24, min_effect=0.05) == pairs_needed(0.5, 0.25, 24)
    with pytest.raises(TadaError, match="min_effect"):
        pairs_needed(0.5, 0.05, 24, min_effect=0.1)


@dataclass(frozen=True)
class NoisyProjection:
    """How far a generation moved from the corrupted run toward the clean one (its latent
    projection on the clean - corrupted direction, a linear read-out like a classifier's
    logit), plus Gaussian noise of ``scale`` times the clean-corrupted distance: a noisy
    scorer. Deterministic per instance (one generator, calls in a fixed order)."""

    scale: float
    generator: torch.Generator
    name: str = "noisy_projection"
    needs_audio: bool = False

    def __call__(self, output, context):
        def flat(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(x.shape[0], -1).double()

        direction = flat(context.reference().latents) - flat(context.corrupted.latents)
        gap = direction.norm()
        moved = ((flat(output.latents) - flat(context.corrupted.latents)) * direction).sum(1) / gap
        noise = torch.randn(moved.shape[0], generator=self.generator, dtype=torch.float64)
        return moved + self.scale * gap * noise


@pytest.mark.slow
def test_planted_heads_are_the_significant_ones_under_injected_noise(planted_model, base):
    """On the planted tiny model (six heads with exactly no effect), with scorer noise of
    0.05 x the gap on every measurement (so that the null heads' differences are noise,
    not exact zeros), the significant set is exactly the two planted heads, and patching
    it together restores and removes the concept. (Heavier noise is calibrated on
    simulated data above, where hundreds of repetitions are affordable.)

    The pairs are word swaps that both planted heads carry on their own (every pair moves
    the read-out toward the clean run when either head alone is patched, measured without
    noise): heads that act only jointly have no single-head effect for a test to find."""
    from interp.localization import locate
    from interp.prompts import PromptPair

    words = [("slow", "fast"), ("soft", "upbeat"), ("jazz", "metal")]
    pairs = [
        PromptPair(f"a {a} {inst} song", f"a {b} {inst} song", "style", a, b)
        for a, b in words
        for inst in ("violin", "piano", "organ", "flute")
    ]  # 12 pairs
    metric = NoisyProjection(0.05, torch.Generator().manual_seed(0))
    result = locate(
        planted_model,
        base,
        pairs,
        [0],
        metric,
        selection="significant",
        layers=False,
        fraction=0.8,
        progress=False,
    )
    test = result.significance
    assert set(result.significant) == set(result.subset) == PLANTED, test.p
    nulls = [h for h in test.q if h not in PLANTED]
    assert all(test.q[h] > 0.05 for h in nulls)
    assert min(test.p[h] for h in nulls) < 0.9  # the noise reached the null heads
    assert result.restored.mean == pytest.approx(1.0, abs=0.15)
    assert result.necessity.mean == pytest.approx(1.0, abs=0.15)
    assert result.reached and not result.prefix_effects  # no greedy search was run
    # the summary keeps the tested per-pair differences, whose mean is the head's effect
    summary = result.summary()
    assert len(summary["differences"]["cross.0.head.1"]) == len(pairs)
    assert np.mean(summary["differences"]["cross.0.head.1"]) == pytest.approx(
        result.head_effects["cross.0.head.1"].mean
    )


def test_stability_of_significant_sets():
    from interp.localization import Localization, Stability

    a = Localization("c", significant=["cross.0.head.1", "cross.1.head.3"])
    b = Localization("c", significant=["cross.0.head.1"])
    assert Stability(a, b).significant_jaccard == 0.5
    assert np.isnan(Stability(Localization("c"), Localization("c")).significant_jaccard)
