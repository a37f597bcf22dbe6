"""Statistics of effects: normalized effects with bootstrap intervals, Wilson intervals.

The normalized effect of a patch is ``(m_patched - m_corrupted) / (m_clean -
m_corrupted)``: 1 restores the clean run, 0 does nothing. It is computed as a ratio of
means over (prompt pair, seed) units, with a bootstrap confidence interval over those
units. It does not depend on the sign of the metric, only on its scale.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from interp.errors import TadaError


@dataclass(frozen=True)
class Effect:
    """A normalized effect with its bootstrap 95% confidence interval."""

    mean: float
    ci_low: float
    ci_high: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"effect": self.mean, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}


def normalized_effect(
    patched: Sequence[float] | np.ndarray,
    clean: Sequence[float] | np.ndarray,
    corrupted: Sequence[float] | np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    removal: bool = False,
) -> Effect:
    """Ratio-of-means normalized effect over units, with a percentile bootstrap CI.

    Args:
        patched: Metric of the intervened run, one per (pair, seed) unit.
        clean: Metric of the clean run for the same units.
        corrupted: Metric of the corrupted run for the same units.
        n_boot: Bootstrap resamples (deterministic given ``seed``).
        removal: Measure how much of the gap the intervention *removes* from the clean
            run, ``(clean - patched) / (clean - corrupted)`` (noising, ablation),
            instead of how much it restores, ``(patched - corrupted) / (clean -
            corrupted)`` (denoising).
    """
    p, c, k = (np.asarray(v, dtype=np.float64) for v in (patched, clean, corrupted))
    if not (p.shape == c.shape == k.shape) or p.ndim != 1 or p.size == 0:
        raise TadaError("normalized_effect needs three equal-length, non-empty 1-D sequences.")

    def ratio(idx: np.ndarray) -> float:
        gap = (c[idx] - k[idx]).mean()
        moved = (c[idx] - p[idx]) if removal else (p[idx] - k[idx])
        return float(moved.mean() / gap) if abs(gap) > 1e-12 else float("nan")

    mean = ratio(np.arange(p.size))
    if p.size == 1:
        return Effect(mean, mean, mean, 1)
    rng = np.random.default_rng(seed)
    boots = np.array([ratio(rng.integers(0, p.size, p.size)) for _ in range(n_boot)])
    boots = boots[np.isfinite(boots)]
    low, high = np.percentile(boots, [2.5, 97.5]) if boots.size else (np.nan, np.nan)
    return Effect(mean, float(low), float(high), int(p.size))


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (NaNs for ``n = 0``).

    Args:
        successes: Number of successes.
        n: Number of trials.
        z: Normal quantile (1.96: a 95% interval).
    """
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
