"""Result rows of the per-head significance test and the power estimate of ``locate``."""

import math
from typing import Any

from interp.errors import TadaError
from interp.experiments.units import Row
from interp.localization import Localization

#: Power the ``pairs_needed`` row is computed for.
POWER = 0.9


def significance_rows(result: Localization, head_rows: list[Row], power_effect: float) -> list[Row]:
    """Label the ``head_effect`` rows with ``p``, ``q`` and ``significant``; return the
    concept's extra rows: the significant set's sufficiency and necessity, and how many
    pairs a run needs to find a head of normalized effect ``power_effect``.

    Nothing is added when the heads were not tested (attribution ranking).
    """
    test = result.significance
    if test is None:
        return []
    for row in head_rows:
        assert row.site is not None  # a head_effect row names its head
        row.labels.update(p=test.p[row.site], q=test.q[row.site], significant=row.site in result.significant)
    site = "+".join(result.significant)
    labels: dict[str, Any] = {
        "alpha": test.alpha,
        "min_effect": test.min_effect,
        "size": len(result.significant),
    }
    rows = [
        Row(
            "significant_count",
            float(len(result.significant)),
            concept=result.concept,
            site=site or None,
            labels={**labels, "pairs": test.n, "heads_tested": len(test.p)},
        )
    ]
    for metric, effect in (
        ("significant_restored", result.significant_restored),
        ("significant_necessity", result.significant_necessity),
    ):
        if effect is not None:
            rows.append(
                Row(
                    metric,
                    effect.mean,
                    concept=result.concept,
                    site=site,
                    labels={**labels, "ci_low": effect.ci_low, "ci_high": effect.ci_high},
                )
            )
    if not math.isfinite(test.pooled_sd) or power_effect <= test.min_effect:
        # one pair: no variance to plan from; or an effect the test treats as null
        needed = math.nan
    else:
        try:
            needed = float(test.pairs_needed(power_effect, POWER))
        except TadaError:  # more pairs than pairs_needed searches: no finite size
            needed = math.inf
    rows.append(
        Row(
            "pairs_needed",
            needed,
            concept=result.concept,
            labels={
                "effect": power_effect,
                "power": POWER,
                "alpha": test.alpha,
                "pilot_pairs": test.n,
                "heads_tested": len(test.p),
                "pooled_sd": test.pooled_sd,
            },
        )
    )
    return rows
