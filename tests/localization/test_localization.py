"""Locating minimal head subsets, their necessity, layer impact and overlaps."""

import numpy as np
import pytest

from interp.localization import layer_impact, locate, overlap_matrix, shared_and_specific
from interp.metrics import get_metric
from tests.localization.conftest import PLANTED


@pytest.mark.parametrize("ranking", ["patching", "attribution"])
def test_located_subset_equals_the_planted_set(planted_model, base, pairs, ranking):
    result = locate(
        planted_model,
        base,
        pairs[:1],
        [0, 1],
        get_metric("latent_distance"),
        ranking=ranking,
        fraction=0.95,
        progress=False,
    )
    assert result.reached
    assert set(result.subset) == PLANTED
    assert result.restored.mean == pytest.approx(1.0, abs=1e-3)
    assert result.necessity.mean == pytest.approx(1.0, abs=1e-3)
    assert result.prefix_effects[0].mean < 0.95  # one planted head is not enough
    assert sum(result.layer_impact.values()) == pytest.approx(1.0)


def test_layer_impact_normalizes_positive_effects():
    assert layer_impact({0: 0.5, 1: 0.25, 2: -0.1}) == {0: 2 / 3, 1: 1 / 3, 2: 0.0}
    assert layer_impact({0: -1.0}) == {0: 0.0}


def test_overlap_matrix_and_shared_heads():
    subsets = {"mood": ["cross.0.head.1", "cross.1.head.3"], "tempo": ["cross.0.head.1"], "vocals": []}
    names, matrix = overlap_matrix(subsets)
    assert names == ["mood", "tempo", "vocals"]
    np.testing.assert_allclose(matrix[0, 1], 0.5)
    assert matrix[0, 0] == 1.0 and matrix[2, 2] == 0.0
    split = shared_and_specific(subsets)
    assert split["shared"] == ["cross.0.head.1"] and split["mood"] == ["cross.1.head.3"]


def test_split_halves_locate_the_same_planted_heads(planted_model, base, pairs):
    from interp.localization import split_stability
    from interp.prompts import PromptPair

    more = [
        pairs[0],
        pairs[0].reversed(),
        PromptPair("a sad piano song", "a happy piano song", "mood", "sad", "happy"),
        PromptPair("a happy organ track", "a sad organ track", "mood", "happy", "sad"),
    ]
    halves = split_stability(
        planted_model, base, more, [0], get_metric("latent_distance"), fraction=0.95, progress=False
    )
    assert set(halves.first.subset) == set(halves.second.subset) == PLANTED
    assert halves.jaccard == 1.0
    assert halves.same_top_head and halves.first.ranking[0] in PLANTED
    # the planted heads lead both rankings; the rest are zero up to rounding, so the
    # correlation over all heads is positive but need not be 1
    assert halves.rank_correlation > 0


def test_stability_rank_correlation_and_top_head():
    from interp.localization import Localization, Stability
    from interp.statistics import Effect

    def located(values: dict[str, float]) -> Localization:
        effects = {k: Effect(v, v, v, 1) for k, v in values.items()}
        return Localization("c", head_effects=effects, ranking=sorted(values, key=lambda k: -values[k]))

    a = located({"cross.0.head.0": 0.9, "cross.0.head.1": 0.5, "cross.1.head.0": 0.1, "cross.1.head.1": 0.0})
    same_order = located(
        {"cross.0.head.0": 0.6, "cross.0.head.1": 0.4, "cross.1.head.0": 0.3, "cross.1.head.1": 0.2}
    )
    reversed_ = located(
        {"cross.0.head.0": 0.0, "cross.0.head.1": 0.1, "cross.1.head.0": 0.5, "cross.1.head.1": 0.9}
    )
    assert Stability(a, same_order).rank_correlation == pytest.approx(1.0)
    assert Stability(a, same_order).same_top_head
    assert Stability(a, reversed_).rank_correlation == pytest.approx(-1.0)
    assert not Stability(a, reversed_).same_top_head


def test_head_grid_places_each_head_and_refuses_other_sites():
    from interp.errors import TadaError
    from interp.plots import head_grid

    grid, layers = head_grid({"cross.1.head.2": 0.5, "cross.0.head.0": 1.0})
    assert layers == [0, 1] and grid.shape == (2, 3)
    assert grid[1, 2] == 0.5 and grid[0, 0] == 1.0 and int(np.isnan(grid).sum()) == 4
    with pytest.raises(TadaError, match="not a single-head site"):
        head_grid({"cross.0.heads": 1.0})
