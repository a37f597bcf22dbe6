"""Which heads have an effect that is significantly non-zero, and how many pairs it takes.

Model-agnostic statistics over the (prompt pair, seed) units of a patching sweep:

* :func:`unit_differences`: per head, the paired difference each unit gives, "how far
  patching moved the metric", ``patched - corrupted`` (denoising) or ``clean - patched``
  (noising, ablation), divided by the mean clean-corrupted gap so that it reads in
  normalized-effect units. Seeds of one pair are averaged first: the pair is the
  independent unit (seeds of one caption are not independent draws of the concept).
* :func:`sign_flip_pvalues`: a two-sided paired sign-flip permutation test of "mean
  difference = 0" for every head (exact enumeration of all ``2^n`` sign patterns for
  small ``n``, Monte Carlo with enough flips to resolve the multiple-testing level
  otherwise). Why sign-flip and not a bootstrap: see ``docs/localization.md``.
* :func:`bh_qvalues`: Benjamini-Hochberg adjusted p-values (q-values); the heads with
  ``q <= alpha`` are the FDR-controlled set.
* :func:`pairs_needed`: from a pilot's per-pair standard deviation, the number of pairs
  a run needs so that a head with a given normalized effect is found at ``q < alpha``
  with a given power.
"""

import functools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from beartype import beartype
from scipy import stats

from interp.errors import TadaError

#: Largest number of units whose ``2^n`` sign patterns are enumerated exactly.
EXACT_MAX_UNITS = 16


@beartype
def unit_differences(rows: Sequence[Mapping], removal: bool = False) -> dict[str, np.ndarray]:
    """Per variant label, one normalized difference per prompt pair.

    Args:
        rows: Sweep rows (``variant``, ``pair``, ``seed``, ``value``, ``clean``,
            ``corrupted``), as in :attr:`interp.patching.SweepResult.rows`.
        removal: Noising / ablation rows (``clean - value``) instead of denoising
            (``value - corrupted``).

    Returns:
        Label -> array over pairs (in pair order) of the seed-averaged moved amount
        divided by the mean clean-corrupted gap of all units (the denominator of the
        ratio-of-means effect, so the mean of the array equals that effect).

    Raises:
        TadaError: When the mean clean-corrupted gap is zero (the metric cannot tell
            the two prompts apart: nothing can be significant).
    """
    if not rows:
        raise TadaError("No sweep rows to test: the sweep measured no (pair, seed) units.")
    moved: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    gaps: dict[tuple, float] = {}
    for row in rows:
        delta = (row["clean"] - row["value"]) if removal else (row["value"] - row["corrupted"])
        moved[row["variant"]][row["pair"]].append(float(delta))
        gaps[(row["pair"], row["seed"])] = float(row["clean"] - row["corrupted"])
    gap = float(np.mean(list(gaps.values())))
    if abs(gap) <= 1e-12:
        raise TadaError(
            f"The mean clean-corrupted gap of the metric is {gap:.3g}: the metric does not tell "
            f"the clean from the corrupted prompts, so no head can be tested. Use a metric that "
            f"separates them (check the pairs' clean/corrupted values)."
        )
    pairs = sorted(next(iter(moved.values())))
    out = {}
    for label, per_pair in moved.items():
        if sorted(per_pair) != pairs:
            raise TadaError(
                f"Variant {label!r} was measured on pairs {sorted(per_pair)}, others on {pairs}: "
                f"a paired test needs every head measured on the same pairs (rerun the sweep)."
            )
        values = np.array([sum(per_pair[p]) / len(per_pair[p]) for p in pairs]) / gap
        if not np.all(np.isfinite(values)):
            bad = [p for p, v in zip(pairs, values) if not np.isfinite(v)]
            raise TadaError(
                f"Variant {label!r} has non-finite metric values on pair(s) {bad}: the metric "
                f"returned NaN or inf, so its heads cannot be tested. Check the metric."
            )
        out[label] = values
    return out


@functools.lru_cache(maxsize=4)
def _all_signs(n: int) -> np.ndarray:
    """All ``2^n`` sign patterns of ``n`` units as a read-only [2^n, n] array."""
    codes = np.arange(2**n, dtype=np.int64)[:, None]
    signs = (1 - 2 * ((codes >> np.arange(n, dtype=np.int64)) & 1)).astype(np.float64)
    signs.flags.writeable = False
    return signs


def _tail(data: np.ndarray, two_sided: bool, flips: int, seed: int) -> np.ndarray:
    """Per column, the share of sign patterns whose mean reaches the observed mean
    (``|mean|`` when two-sided); exact for ``n <= EXACT_MAX_UNITS``, else Monte Carlo."""
    n = data.shape[0]
    exact = n <= EXACT_MAX_UNITS
    observed = data.mean(axis=0)
    observed = np.abs(observed) if two_sided else observed
    # a tolerance so that patterns equal to the observed one up to rounding count as hits
    tolerance = 1e-9 * np.maximum(1.0, np.abs(data).max(axis=0))
    hits = np.zeros(data.shape[1])
    total = 2**n if exact else flips
    chunk = max(1, 2**20 // max(1, n))
    for start in range(0, total, chunk):
        if exact:
            signs = _all_signs(n)[start : start + chunk]
        else:
            rng = np.random.default_rng([seed, start])
            signs = rng.choice(np.array([-1.0, 1.0]), size=(min(chunk, total - start), n))
        permuted = signs @ data / n
        permuted = np.abs(permuted) if two_sided else permuted
        hits += (permuted >= observed - tolerance).sum(axis=0)
    return hits / total if exact else (1 + hits) / (1 + total)


@beartype
def sign_flip_pvalues(
    differences: Mapping[str, np.ndarray],
    *,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    flips: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Two-sided paired sign-flip permutation p-value of "|mean difference| <= min_effect".

    Under the null a head's patch does not change the metric's distribution, so each
    pair's difference is symmetric about zero and flipping its sign is as likely as
    not. With ``min_effect = 0`` the statistic is ``|mean|`` and the p-value is the share
    of sign patterns whose statistic reaches the observed one (the identity pattern
    included, so ``p > 0``).

    With ``min_effect = d > 0`` the null is an interval, "the effect is no larger than
    ``d``": two one-sided sign-flip tests, of ``mean > d`` on ``x - d`` and of
    ``mean < -d`` on ``x + d``, combined as ``p = min(1, 2 min(p_plus, p_minus))``
    (exact at the boundary ``|mean| = d`` for symmetric differences, conservative inside;
    equal to the two-sided test when ``d = 0``).

    With ``n <= EXACT_MAX_UNITS`` pairs every pattern is enumerated (exact p-values;
    the smallest possible is ``2 / 2^n``). Above that, ``flips`` random patterns
    (shared by all heads; default enough that ``1 / flips`` is ten times finer than
    the Bonferroni level ``alpha / m``), with the usual ``(1 + hits) / (1 + flips)``.

    Args:
        differences: Head -> per-pair differences (all heads with the same pairs).
        alpha: The FDR level the p-values will be used at (sets the default ``flips``).
        min_effect: Smallest normalized effect of interest (``>= 0``).
        flips: Monte Carlo patterns for large ``n``.
        seed: Seed of the Monte Carlo patterns (results are deterministic).
    """
    if not differences:
        return {}
    if not (math.isfinite(min_effect) and min_effect >= 0):
        raise TadaError(f"min_effect must be a finite number >= 0 (a normalized effect), got {min_effect}.")
    names = list(differences)
    data = np.stack([np.asarray(differences[k], dtype=np.float64) for k in names], axis=1)
    if data.ndim != 2 or data.shape[0] == 0:
        raise TadaError("sign_flip_pvalues needs one equal-length, non-empty array per head.")
    if flips is None:
        flips = max(9999, math.ceil(10 * len(names) / alpha))
    if min_effect == 0:
        p = _tail(data, True, flips, seed)
    else:
        plus = _tail(data - min_effect, False, flips, seed)
        minus = _tail(-(data + min_effect), False, flips, seed)
        p = 2 * np.minimum(plus, minus)
    return {k: float(min(1.0, v)) for k, v in zip(names, p)}


@beartype
def bh_qvalues(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Benjamini-Hochberg q-values: ``q_(i) = min_{j >= i} p_(j) m / j``, capped at 1.

    Rejecting the heads with ``q <= alpha`` controls the false discovery rate at
    ``alpha`` for independent or positively dependent tests.
    """
    names = list(pvalues)
    if not names:
        return {}
    p = np.array([pvalues[k] for k in names], dtype=np.float64)
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise TadaError(f"p-values must lie in [0, 1]; got {sorted(p.tolist())[:5]}...")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    q = np.empty(m)
    q[order] = q_sorted
    return {k: float(v) for k, v in zip(names, q)}


@dataclass(frozen=True)
class Significance:
    """Per-head test results of one concept.

    Attributes:
        mean: Head -> mean normalized difference over pairs (the tested effect).
        sd: Head -> standard deviation of the per-pair differences (ddof 1).
        p: Head -> two-sided sign-flip p-value.
        q: Head -> Benjamini-Hochberg q-value across all heads tested.
        alpha: The FDR level.
        n: Number of pairs (independent units).
        min_effect: Smallest normalized effect of interest the heads were tested against
            (0: "any non-zero effect").
        differences: Head -> the per-pair normalized differences tested (for re-analysis).
    """

    mean: dict[str, float]
    sd: dict[str, float]
    p: dict[str, float]
    q: dict[str, float]
    alpha: float
    n: int
    min_effect: float = 0.0
    differences: dict[str, list[float]] = field(default_factory=dict)

    @property
    def significant(self) -> list[str]:
        """Heads with ``q <= alpha``, by increasing p (ties: larger effect first)."""
        chosen = [k for k, v in self.q.items() if v <= self.alpha]
        return sorted(chosen, key=lambda k: (self.p[k], -abs(self.mean[k]), k))

    @property
    def pooled_sd(self) -> float:
        """The pilot's per-pair standard deviation pooled over heads (root mean square)."""
        values = [v for v in self.sd.values() if math.isfinite(v)]
        return float(np.sqrt(np.mean(np.square(values)))) if values else float("nan")

    def pairs_needed(self, effect: float, power: float = 0.9) -> int:
        """Pairs a run needs to find a head of normalized ``effect`` (see :func:`pairs_needed`),
        with the pilot's :attr:`pooled_sd`."""
        return pairs_needed(
            self.pooled_sd, effect, len(self.p), alpha=self.alpha, power=power, min_effect=self.min_effect
        )


@beartype
def head_significance(
    rows: Sequence[Mapping],
    *,
    removal: bool = False,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    flips: int | None = None,
    seed: int = 0,
) -> Significance:
    """Sign-flip test of every head of a single-head sweep, with BH q-values.

    Args:
        rows: Rows of a sweep with one variant per head.
        removal: The sweep is a noising / ablation sweep.
        alpha: FDR level (``0 < alpha < 1``).
        min_effect: Test ``|effect| <= min_effect`` instead of ``effect = 0`` (see
            :func:`sign_flip_pvalues`).
        flips: Monte Carlo patterns (see :func:`sign_flip_pvalues`).
        seed: Seed of the Monte Carlo patterns.
    """
    if not 0 < alpha < 1:
        raise TadaError(f"alpha (the false discovery rate) must be in (0, 1), got {alpha}; 0.05 is usual.")
    diffs = unit_differences(rows, removal=removal)
    p = sign_flip_pvalues(diffs, alpha=alpha, min_effect=min_effect, flips=flips, seed=seed)
    n = len(next(iter(diffs.values())))
    return Significance(
        mean={k: float(v.mean()) for k, v in diffs.items()},
        sd={k: float(v.std(ddof=1)) if v.size > 1 else float("nan") for k, v in diffs.items()},
        p=p,
        q=bh_qvalues(p),
        alpha=alpha,
        n=n,
        min_effect=min_effect,
        differences={k: v.tolist() for k, v in diffs.items()},
    )


@beartype
def pairs_needed(
    sd: float,
    effect: float,
    heads: int,
    *,
    alpha: float = 0.05,
    power: float = 0.9,
    discoveries: int = 1,
    min_effect: float = 0.0,
    max_pairs: int = 100_000,
) -> int:
    """Smallest number of pairs that finds a head of normalized ``effect`` at ``q < alpha``.

    BH rejects a head when its p-value is below ``alpha * R / heads``, with ``R`` the
    number of discoveries; ``discoveries = 1`` (the default) is the conservative case of
    one true effect among ``heads`` (the Bonferroni level). The power of the paired test
    at that level is computed with the noncentral t distribution (the sign-flip test's
    large-sample equivalent), and the answer is at least the smallest ``n`` whose exact
    sign-flip test can reach that level at all (``2 / 2^n <= level``).

    Args:
        sd: Per-pair standard deviation of the normalized difference (from a pilot).
        effect: Normalized effect to detect (e.g. 0.1: a tenth of the gap).
        heads: Number of heads tested (``m``).
        alpha: FDR level.
        power: Wanted probability of finding the head.
        discoveries: Expected number of significant heads.
        min_effect: The test's smallest effect of interest (its null is ``|effect| <=
            min_effect``); only the excess ``|effect| - min_effect`` counts.
        max_pairs: Give up above this (raises).
    """
    if not (
        math.isfinite(effect)
        and math.isfinite(sd)
        and sd >= 0
        and min_effect >= 0
        and abs(effect) > min_effect
    ):
        raise TadaError(
            f"pairs_needed needs a finite sd >= 0 and an effect larger in size than "
            f"min_effect >= 0, got effect={effect}, sd={sd}, min_effect={min_effect}."
        )
    if not (0 < alpha < 1 and 0 < power < 1 and heads >= 1 and 1 <= discoveries <= heads):
        raise TadaError(
            f"pairs_needed: alpha and power must be in (0, 1), heads >= 1 and "
            f"1 <= discoveries <= heads; got alpha={alpha}, power={power}, "
            f"heads={heads}, discoveries={discoveries}."
        )
    level = alpha * discoveries / heads
    floor = max(2, math.ceil(math.log2(2 / level)))
    if sd == 0:
        return floor
    for n in range(floor, max_pairs + 1):
        critical = stats.t.ppf(1 - level / 2, df=n - 1)
        shift = (abs(effect) - min_effect) * math.sqrt(n) / sd
        achieved = stats.nct.sf(critical, n - 1, shift) + stats.nct.cdf(-critical, n - 1, shift)
        if achieved >= power:
            return n
    raise TadaError(
        f"More than {max_pairs} pairs would be needed to find an effect of {effect} "
        f"with per-pair sd {sd}; aim for a larger effect or a less noisy metric."
    )
