"""Identical work items are computed once per run (the run-wide work store).

Ground truth: the denoiser's forward calls, counted with a plain torch forward hook, and
the results of runs that cannot reuse anything (each step alone in its own run).
"""

import csv
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from interp.adapter import GenerationRequest
from interp.distributed import WorkStore
from interp.distributed import executor as executors
from interp.distributed.executor import recording
from interp.experiments import model as models
from interp.experiments import run
from interp.metrics import get_metric
from interp.pairsources import pairs_from
from interp.patching import single_site_variants, sweep

MODEL = "synthmusic-dit"
PAIRS = {"source": "synthmusic", "concepts": ["tempo"], "per_concept": 2}


@contextmanager
def forwards(module: torch.nn.Module) -> Iterator[list[int]]:
    """Count the calls of ``module`` inside the block (a plain torch hook)."""
    count = [0]

    def hook(*_: Any) -> None:
        count[0] += 1

    handle = module.register_forward_hook(hook)
    try:
        yield count
    finally:
        handle.remove()


def _spec(*steps: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "reuse",
        "model": {"name": MODEL},
        "generation": {"num_steps": 2, "guidance_scale": 4.0, "seeds": [0]},
        "steps": list(steps),
    }


LAYERS = {"name": "layers", "method": "patch", "component": "text", "pairs": PAIRS, "batch_size": 4}


def _locate(layer_impact: bool) -> dict[str, Any]:
    return {"name": "heads", "method": "locate", "pairs": PAIRS, "max_heads": 2, "batch_size": 4,
            "layer_impact": layer_impact, "audio": False}  # fmt: skip


def _rows(out: Path, step: str) -> list[dict[str, str]]:
    """The step's rows of results.csv, without the empty columns of other steps."""
    with (out / "results.csv").open(newline="") as handle:
        return [
            {k: v for k, v in row.items() if v != ""} for row in csv.DictReader(handle) if row["step"] == step
        ]


def _counted_run(spec: dict[str, Any], out: Path) -> int:
    adapter = models.load(MODEL)  # the cached model the run uses
    with forwards(adapter.denoiser) as count, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(spec, out=out, progress=False)
    assert not (out / "units" / "work").exists()  # the run's items are removed at its end
    return count[0]


def test_locate_layer_impact_reuses_the_patch_steps_layer_sweep(tmp_path):
    """A `patch` of the text sites and a `locate` with layer impact on the same pairs: the
    shared layer sweep runs once (forwards of both = the patch step's + locate's without
    layer impact), and each step's rows equal those of a run of that step alone."""
    before = executors.computed["reused"]
    both = _counted_run(_spec(LAYERS, _locate(True)), tmp_path / "both")
    reused = executors.computed["reused"] - before
    layers_alone = _counted_run(_spec(LAYERS), tmp_path / "layers")
    locate_alone = _counted_run(_spec(_locate(True)), tmp_path / "locate")
    locate_without_layers = _counted_run(_spec(_locate(False)), tmp_path / "locate-no-layers")
    assert locate_alone > locate_without_layers  # the layer sweep costs forwards of its own
    assert both == layers_alone + locate_without_layers < layers_alone + locate_alone
    assert reused == 2 * 2  # 2 pairs x 1 seed x 2 chunks of the 6 text sites (batch 4)
    assert _rows(tmp_path / "both", "layers") == _rows(tmp_path / "layers", "layers")
    assert _rows(tmp_path / "both", "heads") == _rows(tmp_path / "locate", "heads")
    assert _rows(tmp_path / "both", "heads")


@pytest.fixture(scope="module")
def adapter():
    return models.load(MODEL)


def test_any_change_of_what_determines_an_item_misses_the_store(adapter, tmp_path):
    """The same sweep twice under one store runs once and gives the same rows; another
    seed, number of steps, patched steps or CFG branch runs again."""
    base = GenerationRequest(("-",), (0,), num_steps=2, guidance_scale=4.0)
    pair = pairs_from("synthmusic", ["tempo"], 1, 0)[0]
    metric: Any = get_metric("concept").bind(adapter=adapter)
    variants = single_site_variants(adapter.catalog.where(attention="cross", component="text")[:2])

    def counted(request: GenerationRequest = base, seed: int = 0, **options: Any) -> tuple[int, list[dict]]:
        with forwards(adapter.denoiser) as count:
            result = sweep(adapter, request, [pair], [seed], variants, metric, batch_size=2, progress=False,
                           **options)  # fmt: skip
        return count[0], result.rows

    with recording(WorkStore(tmp_path / "work", salt="model-a")):
        first, rows = counted()
        again, same = counted()
        assert first > 0 and again == 0 and same == rows
        assert counted(seed=1)[0] > 0
        assert counted(replace(base, num_steps=3))[0] > 0
        assert counted(steps="1:")[0] > 0
        assert counted(branch="both")[0] > 0
        assert counted(steps="1:")[0] == 0  # stored too, now
    with recording(WorkStore(tmp_path / "work", salt="model-b")):  # another model: nothing shared
        assert counted()[0] == first
